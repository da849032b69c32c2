-- Outbox claims (docs/behaviour.md §5.9): the relay of each replica claims the entries it
-- publishes until `claimed_until`, so replicas share the outbox instead of publishing every
-- entry twice. A relay that dies leaves its claims to the others when they run out.
ALTER TABLE outbox ADD COLUMN claimed_by uuid;
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;
