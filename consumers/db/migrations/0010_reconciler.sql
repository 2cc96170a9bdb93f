-- The reconciler's ledger: every valid alarm seen on alarms.raw, and what decided it.
-- See docs/reliability.md ("The promise checks itself").
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

CREATE TABLE ledger_alarms (
    alarm_id uuid PRIMARY KEY,
    -- The incident the alarm opens when it merges into none (dispatch.triage): a change of
    -- that incident decides the alarm too (an unplaced alarm's escalation names no alarm).
    own_incident_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    -- Where it was read, and its bytes exactly as written, to publish it again.
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    raw bytea NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    -- Set once a decision of it is known (either table below), whichever came first.
    decided_at timestamptz,
    -- Set when the alarm was overdue: published again, and the commander told.
    republished_at timestamptz,
    last_reported_at timestamptz,
    reports integer NOT NULL DEFAULT 0
);

-- The alarms not yet known decided, oldest first, without a scan of the decided ones.
CREATE INDEX ledger_alarms_undecided ON ledger_alarms (received_at) WHERE decided_at IS NULL;
CREATE INDEX ledger_alarms_own_incident ON ledger_alarms (own_incident_id);
-- The counts the reconciler reports cover a recent window.
CREATE INDEX ledger_alarms_received ON ledger_alarms (received_at);

-- Alarms a change on incidents.state (or a dead letter) named; one row per alarm.
CREATE TABLE ledger_decided_alarms (
    alarm_id uuid PRIMARY KEY,
    decided_at timestamptz NOT NULL,
    how text NOT NULL CHECK (char_length(how) BETWEEN 1 AND 200)
);

-- Incidents that have had a change: they decide the alarm whose own incident they are.
CREATE TABLE ledger_decided_incidents (
    incident_id uuid PRIMARY KEY,
    decided_at timestamptz NOT NULL,
    how text NOT NULL CHECK (char_length(how) BETWEEN 1 AND 200)
);
