-- Leases shared by the replicas (docs/behaviour.md §5.10): the replica whose lease on
-- 'reconcile' is running does the periodic reconciliation run; the others skip it.
CREATE TABLE leases (
    name    text        PRIMARY KEY,
    holder  text        NOT NULL,
    until   timestamptz NOT NULL
);
