-- Idempotent creates (docs/behaviour.md §3): the key a create was sent with, stored in the same
-- transaction as the student, so a retried request finds it and gets the first answer.
CREATE TABLE idempotency_keys (
    key          text        PRIMARY KEY,
    -- SHA-256 of the request's validated fields: the same key with other fields is refused.
    fingerprint  text        NOT NULL,
    entity_id    uuid        NOT NULL,
    expires_at   timestamptz NOT NULL
);
-- The periodic purge of expired keys.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
