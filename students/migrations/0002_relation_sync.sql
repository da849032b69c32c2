-- The relation sync (docs/behaviour.md §5): per-pair logical clocks, and the outbox of changes to publish.

-- For every course this student is or was linked with: the clock of the newest change of the
-- pair known here (see nis_core::links).
ALTER TABLE students ADD COLUMN link_clocks jsonb NOT NULL DEFAULT '{}';

-- Changes recorded in the same transaction as the write that made them; the relay publishes
-- them in order and deletes what JetStream acknowledged.
CREATE TABLE outbox (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid        NOT NULL UNIQUE,
    subject     text        NOT NULL,
    payload     bytea       NOT NULL,
    request_id  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
