-- The replay ledger of `dispatch dlq replay`: one row per dead letter put back on its topic.
-- See docs/operations-dlq.md. Runs inside the migration runner's transaction.
--
-- Keyed by the dead letter's own event id (record_dead_letters.event_id, no foreign key: the
-- two tables come from different migrations and the record outlives what it names), so that
-- replaying the same dead letter twice publishes once. A forced replay (--force) publishes
-- again and updates the row; the audit log keeps every one.

CREATE TABLE dlq_replays (
    dead_letter_id uuid PRIMARY KEY,
    -- Where the replay was published: a new dead letter from this very record (its source
    -- topic, partition and offset) is the replay failing again.
    topic text NOT NULL CHECK (char_length(topic) BETWEEN 1 AND 249),
    partition integer NOT NULL CHECK (partition >= 0),
    "offset" bigint NOT NULL CHECK ("offset" >= 0),
    replayed_at timestamptz NOT NULL,
    -- An operator principal id (--actor) or `cli:<os user>`, as in the audit log.
    actor text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    replays integer NOT NULL DEFAULT 1 CHECK (replays >= 1),
    audit_id bigint NOT NULL
);

-- `dispatch dlq list` names the dead letter a replay failed again from.
CREATE INDEX dlq_replays_published ON dlq_replays (topic, partition, "offset");
