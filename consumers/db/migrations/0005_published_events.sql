-- Events the push gateway publishes on a person's behalf (a commander's command, a unit's
-- answer, a unit's change of availability), each recorded together with its audit entry
-- before it goes to Kafka. See docs/protocol.md ("Audit").
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

CREATE TABLE published_events (
    -- The event's own id, derived from what it records (the commander and the client's
    -- command id, the assignment and the action): a resend finds its first record here.
    event_id uuid PRIMARY KEY,
    topic text NOT NULL CHECK (char_length(topic) BETWEEN 1 AND 249),
    event_key text NOT NULL CHECK (char_length(event_key) BETWEEN 1 AND 1024),
    -- The event exactly as published (and published again by a resend).
    event jsonb NOT NULL,
    actor text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- NULL until Kafka acknowledged it (acks=all): recorded but not known to be published.
    published_at timestamptz
);

-- The events recorded but not known to be published, oldest first, without a full scan.
CREATE INDEX published_events_unpublished ON published_events (recorded_at)
    WHERE published_at IS NULL;
