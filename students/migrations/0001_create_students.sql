-- Students, each with the ids of its courses (docs/behaviour.md §2).
CREATE TABLE students (
    id          uuid        PRIMARY KEY,
    -- Insertion order: lists are stable, oldest first.
    seq         bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    name        text        NOT NULL,
    first_name  text        NOT NULL,
    last_name   text        NOT NULL,
    course_ids  text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT students_full_name_unique UNIQUE (name, first_name, last_name),
    CONSTRAINT students_course_ids_max CHECK (cardinality(course_ids) <= 15)
);

-- "Which students list course c?" (the cross query) uses this index.
CREATE INDEX students_course_ids_idx ON students USING GIN (course_ids);
