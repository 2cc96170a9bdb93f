-- The websocket gateway's durable per-unit outbox. See docs/protocol.md.
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

-- One counter per unit. The outbox writer locks a unit's row before it stores that unit's
-- jobs and raises last_seq in the same transaction, so a unit's seqs are 1, 2, 3, … without
-- gaps and commit in seq order (a reader never sees seq n + 1 before seq n).
CREATE TABLE unit_sequences (
    unit_id text PRIMARY KEY CHECK (unit_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- Every job (assignment or mutual-aid alert) pushed to a unit, with its per-unit seq.
CREATE TABLE unit_outbox (
    unit_id text NOT NULL REFERENCES unit_sequences (unit_id),
    seq bigint NOT NULL CHECK (seq >= 1),
    -- A replayed Kafka record stores nothing twice: the writer skips a known assignment id.
    assignment_id uuid NOT NULL UNIQUE,
    incident_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('assignment', 'mutual_aid_alert')),
    -- The dispatch.events.Assignment as JSON, as the unit receives it.
    payload jsonb NOT NULL,
    dispatched_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    -- Set once, by the unit's first acknowledgement that covers this job.
    delivered_at timestamptz,
    acked_at timestamptz,
    PRIMARY KEY (unit_id, seq),
    CONSTRAINT unit_outbox_ack_after_delivery CHECK (acked_at IS NULL OR delivered_at IS NOT NULL)
);

-- Acknowledgements are cumulative, so the unacknowledged jobs are each unit's newest ones;
-- this index finds them without reading the unit's whole history.
CREATE INDEX unit_outbox_unacked ON unit_outbox (unit_id, seq) WHERE acked_at IS NULL;
