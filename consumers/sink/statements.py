"""The writer's SQL: each batch is COPYed into session temp tables, then moved into the record
by one idempotent statement per table.

Why COPY: binary COPY encodes a row per tuple, while an array parameter makes asyncpg ask
every element whether it is itself an array (an ABC isinstance check per value): COPY took half
the writer's CPU per row (docs/benchmarks.md, "Sink"). The temp tables live as long as the
connection and are emptied at each commit; the statement that makes them is a no-op once they
exist. The row tuples of consumers/sink/rows.py and units.py are in the column order below.
Rules in docs/record.md.
"""

from __future__ import annotations

# Made in the writer's transaction when missing (a rolled-back first batch takes them along,
# and the next one makes them again). LIKE copies the record tables' columns and NOT NULLs.
TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS sink_events (LIKE record_events) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sink_alarms (LIKE record_alarms) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sink_incidents (incident_id uuid, state text,
    previous_state text, priority text, category text, enterprise_id text, grid_id text,
    place_name text, lat float8, lon float8, first_alarm_id uuid, text text,
    reporter_name text, reporter_phone text, alarm_count integer, received_at timestamptz,
    classified_at timestamptz, dispatched_at timestamptz, delivered_at timestamptz,
    accepted_at timestamptz, on_scene_at timestamptz, resolved_at timestamptz,
    closed_at timestamptz, is_open boolean, detail jsonb, opened_at timestamptz,
    updated_at timestamptz, last_event_id uuid) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sink_units (unit_id text, status text, lat float8, lon float8,
    accuracy_m float8, fix_at timestamptz, reported_at timestamptz, presence boolean,
    status_at timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sink_fixes (LIKE record_unit_positions) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sink_dead_letters (LIKE record_dead_letters)
    ON COMMIT DELETE ROWS;
"""

INSERT_EVENTS = """
INSERT INTO record_events SELECT * FROM sink_events ON CONFLICT (event_id) DO NOTHING
"""

# One statement for every alarm row of a batch, in alarm_id order: alarms.raw (keyed by source)
# and alarms.classified (keyed by incident) put one alarm in different partitions, so with
# two sinks in the group two transactions write the same alarm rows. A raw and a classified
# statement each, or rows in read order, took those rows' locks in opposite orders and
# PostgreSQL found a deadlock (a second each, then the batch again); in one order a sink at
# most waits for the other's commit. A raw row (classified_at null) never changes a stored
# row; a classified one completes it (or makes it, when read first), a replay changes
# nothing, and an alarm sent back into a new incident (its old one had closed) moves to it.
# The raw and classified records of one alarm in the same batch come as one row
# (rows.classified_over_raw), as this statement may touch a row once.
UPSERT_ALARMS = """
INSERT INTO record_alarms AS r SELECT * FROM sink_alarms ORDER BY alarm_id
ON CONFLICT (alarm_id) DO UPDATE SET
    place_id = coalesce(excluded.place_id, r.place_id),
    place_name = coalesce(excluded.place_name, r.place_name),
    lat = excluded.lat, lon = excluded.lon, classified_at = excluded.classified_at,
    incident_id = excluded.incident_id, category = excluded.category,
    priority = excluded.priority, grid_id = excluded.grid_id,
    place_type = excluded.place_type, merged_into = excluded.merged_into
WHERE excluded.classified_at IS NOT NULL AND (r.classified_at IS NULL
    OR (excluded.classified_at >= r.classified_at
        AND (excluded.classified_at, excluded.incident_id, excluded.priority)
            IS DISTINCT FROM (r.classified_at, r.incident_id, r.priority)))
"""
# An incident nothing else placed in a grid takes its first alarm's, whichever came first.
GRID_FROM_ALARMS = """
UPDATE record_incidents i SET grid_id = a.grid_id
FROM sink_alarms c JOIN record_alarms a USING (alarm_id)
WHERE c.classified_at IS NOT NULL AND a.alarm_id = i.first_alarm_id AND i.grid_id IS NULL
    AND a.grid_id IS NOT NULL
"""

# A change is applied when it is not older than the row: one read late never undoes a newer
# one, and the same change read again (a replay) changes nothing. A milestone once known stays.
UPSERT_INCIDENTS = """
INSERT INTO record_incidents AS r (incident_id, state, previous_state, priority, category,
    enterprise_id, grid_id, place_name, lat, lon, first_alarm_id, text, reporter_name,
    reporter_phone, alarm_count, received_at, classified_at, dispatched_at, delivered_at,
    accepted_at, on_scene_at, resolved_at, closed_at, is_open, parties, opened_at, updated_at,
    last_event_id)
SELECT incident_id, state, previous_state, priority, category, enterprise_id,
    coalesce(grid_id, (SELECT a.grid_id FROM record_alarms a
        WHERE a.alarm_id = x.first_alarm_id)),
    place_name, lat, lon, first_alarm_id, text, reporter_name, reporter_phone, alarm_count,
    received_at, classified_at, dispatched_at, delivered_at, accepted_at, on_scene_at,
    resolved_at, closed_at, is_open, coalesce(detail -> 'parties', '[]'::jsonb),
    opened_at, updated_at, last_event_id
FROM sink_incidents x
ON CONFLICT (incident_id) DO UPDATE SET
    state = excluded.state, previous_state = excluded.previous_state,
    priority = excluded.priority, category = excluded.category,
    grid_id = coalesce(r.grid_id, excluded.grid_id),
    enterprise_id = coalesce(excluded.enterprise_id, r.enterprise_id),
    place_name = coalesce(excluded.place_name, r.place_name),
    lat = coalesce(excluded.lat, r.lat), lon = coalesce(excluded.lon, r.lon),
    first_alarm_id = coalesce(excluded.first_alarm_id, r.first_alarm_id),
    text = coalesce(excluded.text, r.text),
    reporter_name = coalesce(excluded.reporter_name, r.reporter_name),
    reporter_phone = coalesce(excluded.reporter_phone, r.reporter_phone),
    alarm_count = coalesce(excluded.alarm_count, r.alarm_count),
    received_at = coalesce(excluded.received_at, r.received_at),
    classified_at = coalesce(excluded.classified_at, r.classified_at),
    dispatched_at = coalesce(excluded.dispatched_at, r.dispatched_at),
    delivered_at = coalesce(excluded.delivered_at, r.delivered_at),
    accepted_at = coalesce(excluded.accepted_at, r.accepted_at),
    on_scene_at = coalesce(excluded.on_scene_at, r.on_scene_at),
    resolved_at = coalesce(excluded.resolved_at, r.resolved_at),
    closed_at = coalesce(r.closed_at, excluded.closed_at),
    is_open = r.closed_at IS NULL AND excluded.is_open,
    parties = excluded.parties,
    opened_at = least(r.opened_at, excluded.opened_at),
    updated_at = excluded.updated_at,
    last_event_id = excluded.last_event_id
WHERE excluded.updated_at >= r.updated_at AND excluded.last_event_id <> r.last_event_id
"""

# The batch's folded rows per unit (units.unit_rows) are in sink_units: status_at null means
# the batch held no status report (only presence records, which never change a status), fix_at
# null no fix.
INSERT_UNITS = """
INSERT INTO record_units (unit_id, status, lat, lon, accuracy_m, position_at, reported_at,
    presence, updated_at)
SELECT unit_id, status, lat, lon, accuracy_m, fix_at, reported_at, presence,
    coalesce(status_at, reported_at)
FROM sink_units
ON CONFLICT (unit_id) DO NOTHING
"""
# A status changes only by a newer status report, a position only by a newer fix, presence
# by the newest record of any kind; a replay matches no row.
UPDATE_UNITS = """
UPDATE record_units r SET
    status = CASE WHEN x.status_at >= r.updated_at THEN x.status ELSE r.status END,
    updated_at = CASE WHEN x.status_at >= r.updated_at THEN x.status_at ELSE r.updated_at END,
    lat = CASE WHEN x.fix_at >= coalesce(r.position_at, '-infinity') THEN x.lat ELSE r.lat END,
    lon = CASE WHEN x.fix_at >= coalesce(r.position_at, '-infinity') THEN x.lon ELSE r.lon END,
    accuracy_m = CASE WHEN x.fix_at >= coalesce(r.position_at, '-infinity')
        THEN x.accuracy_m ELSE r.accuracy_m END,
    position_at = greatest(r.position_at, x.fix_at),
    presence = CASE WHEN x.reported_at >= r.reported_at THEN x.presence ELSE r.presence END,
    reported_at = greatest(r.reported_at, x.reported_at)
FROM sink_units x
WHERE r.unit_id = x.unit_id
    AND (x.status_at > r.updated_at OR x.fix_at > coalesce(r.position_at, '-infinity')
        OR x.reported_at > r.reported_at
        OR (x.status_at = r.updated_at AND x.status <> r.status))
"""

LAST_KEPT_FIXES = """
SELECT DISTINCT ON (unit_id) unit_id, at, lat, lon, status FROM record_unit_positions
WHERE unit_id = ANY($1::text[]) ORDER BY unit_id, at DESC
"""
INSERT_FIXES = """
INSERT INTO record_unit_positions SELECT * FROM sink_fixes ON CONFLICT (unit_id, at) DO NOTHING
"""

INSERT_DEAD_LETTERS = """
INSERT INTO record_dead_letters SELECT * FROM sink_dead_letters ON CONFLICT (event_id) DO NOTHING
"""
