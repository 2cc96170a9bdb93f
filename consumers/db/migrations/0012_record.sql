-- The record: every incident's history, written by the sink (consumers/sink) from the topics.
-- See docs/record.md. Every table written from a topic is keyed by the event's own id (or a
-- key derived from it), so a replayed topic writes nothing twice (INSERT ... ON CONFLICT).
-- Enumerations are text holding the StrEnum values of dispatch/events.
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

-- One row per alarm: from alarms.raw, completed by alarms.classified (whichever comes first
-- inserts the row, the other fills in its part).
CREATE TABLE record_alarms (
    alarm_id uuid PRIMARY KEY,
    received_at timestamptz NOT NULL,
    source_kind text NOT NULL,
    source_id text NOT NULL,
    enterprise_id text,
    text text NOT NULL,
    place_id text,
    place_name text,
    lat double precision,
    lon double precision,
    reporter_name text,
    reporter_phone text,
    classified_at timestamptz,
    incident_id uuid,
    category text,
    priority text,
    grid_id text,
    place_type text,
    merged_into uuid
);
CREATE INDEX record_alarms_enterprise ON record_alarms (enterprise_id, received_at DESC, alarm_id);
CREATE INDEX record_alarms_incident ON record_alarms (incident_id);
CREATE INDEX record_alarms_received ON record_alarms (received_at);

-- The current row of every incident (incidents.state): a change is applied only when its `at`
-- is not older than the row's updated_at, so a change read late never undoes a newer one.
CREATE TABLE record_incidents (
    incident_id uuid PRIMARY KEY,
    state text NOT NULL,
    previous_state text,
    priority text NOT NULL,
    category text NOT NULL,
    enterprise_id text,
    -- The zone's grid at the incident's position, else the grid of its first classified alarm.
    grid_id text,
    place_name text,
    lat double precision,
    lon double precision,
    first_alarm_id uuid,
    text text,
    reporter_name text,
    reporter_phone text,
    alarm_count integer,
    received_at timestamptz,
    classified_at timestamptz,
    dispatched_at timestamptz,
    delivered_at timestamptz,
    accepted_at timestamptz,
    on_scene_at timestamptz,
    resolved_at timestamptz,
    -- When it entered resolved or cancelled (`merged` means an alarm joined it: still open).
    -- Once closed it stays closed.
    closed_at timestamptz,
    is_open boolean NOT NULL,
    -- The applied change's parties, as the event writes them.
    parties jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- The `at` of the first change seen, and of the change applied.
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_event_id uuid NOT NULL
);
CREATE INDEX record_incidents_open ON record_incidents (is_open, priority, received_at);
CREATE INDEX record_incidents_enterprise ON record_incidents (enterprise_id, received_at DESC);
CREATE INDEX record_incidents_grid ON record_incidents (grid_id, received_at);
CREATE INDEX record_incidents_received ON record_incidents (received_at);

-- The append-only timeline of every incident. kind: state, assignment, response, command,
-- command_outcome, alarm, delivery (docs/record.md says which topic each comes from).
CREATE TABLE record_events (
    event_id uuid PRIMARY KEY,
    incident_id uuid NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL,
    actor text,
    unit_id text,
    assignment_id uuid,
    state text,
    -- The whole event as dispatch.events.encode() writes it.
    detail jsonb NOT NULL,
    source_topic text,
    source_partition integer,
    source_offset bigint
);
CREATE INDEX record_events_incident ON record_events (incident_id, at, event_id);

-- The current row per unit (units.status).
CREATE TABLE record_units (
    unit_id text PRIMARY KEY,
    status text NOT NULL,
    lat double precision,
    lon double precision,
    accuracy_m double precision,
    position_at timestamptz,
    -- The latest record of the unit (a presence record included): when it was last heard of.
    reported_at timestamptz NOT NULL,
    -- Whether that latest record was a presence record (the gateway saw it connected).
    presence boolean NOT NULL,
    -- The reported_at of the latest status report (presence records repeat, never change it).
    updated_at timestamptz NOT NULL
);

-- Thinned position history: a fix is kept when it is at least 30 s after the unit's last kept
-- fix or at least 50 m from it (or its status differs); see docs/record.md.
CREATE TABLE record_unit_positions (
    unit_id text NOT NULL,
    at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    status text NOT NULL,
    PRIMARY KEY (unit_id, at)
);

-- Dead letters (alarms.dlq), and the records the sink itself could not store or read
-- (stage 'sink'). key and value hold the original bytes in base64, as the dead letter's JSON
-- writes them: lossless whatever the bytes were (a NUL, not UTF-8), so a replay sends them
-- again exactly.
CREATE TABLE record_dead_letters (
    event_id uuid PRIMARY KEY,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    bundle_index integer,
    key text,
    key_truncated boolean NOT NULL DEFAULT false,
    value text NOT NULL,
    value_truncated boolean NOT NULL,
    reason text NOT NULL,
    errors jsonb NOT NULL DEFAULT '[]'::jsonb,
    stage text NOT NULL,
    failed_at timestamptz NOT NULL
);
CREATE INDEX record_dead_letters_failed ON record_dead_letters (failed_at DESC);
