-- Receipts of the alarms the intake API accepted, and the idempotency keys that guard them.
-- See docs/intake.md. Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

CREATE TABLE intake_receipts (
    -- Made by intake (uuid4) when the key is first seen; a retry re-sends this same id.
    alarm_id uuid PRIMARY KEY,
    -- Who raised it (the alarm's source_id). Not a foreign key, like audit_log.actor: the
    -- receipt outlives whatever it names.
    principal_id text NOT NULL CHECK (principal_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    -- The client's key (dispatch.events.IdempotencyKey), or NULL when it sent none.
    idempotency_key text CHECK (idempotency_key ~ '^[!-~]{1,128}$'),
    -- SHA-256 of the request's fields, so a key reused for another alarm is refused.
    request_hash bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    enterprise_id text CHECK (enterprise_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    received_at timestamptz NOT NULL,
    -- The RawAlarm exactly as written to alarms.raw.
    raw jsonb NOT NULL,
    -- NULL until Kafka acknowledged the alarm: until then the row is a reservation of the
    -- alarm_id, not a receipt, and nobody is shown it.
    confirmed_at timestamptz,
    -- Keys are scoped per principal. NULLs are distinct in a UNIQUE constraint, so alarms
    -- sent without a key never conflict and each gets its own row.
    CONSTRAINT intake_receipts_principal_key UNIQUE (principal_id, idempotency_key)
);
