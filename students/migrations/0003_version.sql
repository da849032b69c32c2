-- Every commit bumps the version; a write commits only if the version is still the one it
-- loaded (docs/behaviour.md §5.7), so concurrent writes of a student never overwrite each other.
ALTER TABLE students ADD COLUMN version bigint NOT NULL DEFAULT 0;
