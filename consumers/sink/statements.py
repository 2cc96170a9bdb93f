"""The writer's SQL: one statement per table over arrays (`unnest`), each idempotent.

The parameters are columns in the order of the row tuples of consumers/sink/rows.py and
units.py. Rules in docs/record.md.
"""

from __future__ import annotations

INSERT_EVENTS = """
INSERT INTO record_events (event_id, incident_id, kind, at, actor, unit_id, assignment_id,
    state, detail, source_topic, source_partition, source_offset)
SELECT event_id, incident_id, kind, at, actor, unit_id, assignment_id, state, detail::jsonb,
    source_topic, source_partition, source_offset
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
    $7::uuid[], $8::text[], $9::text[], $10::text[], $11::integer[], $12::bigint[])
    AS x (event_id, incident_id, kind, at, actor, unit_id, assignment_id, state, detail,
    source_topic, source_partition, source_offset)
ON CONFLICT (event_id) DO NOTHING
"""

_ALARMS = """
INSERT INTO record_alarms AS r (alarm_id, received_at, source_kind, source_id, enterprise_id,
    text, place_id, place_name, lat, lon, reporter_name, reporter_phone, classified_at,
    incident_id, category, priority, grid_id, place_type, merged_into)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
    $6::text[], $7::text[], $8::text[], $9::float8[], $10::float8[], $11::text[], $12::text[],
    $13::timestamptz[], $14::uuid[], $15::text[], $16::text[], $17::text[], $18::text[],
    $19::uuid[])
"""
INSERT_RAW_ALARMS = _ALARMS + "ON CONFLICT (alarm_id) DO NOTHING"
# The classified record completes the row (or makes it, when read first); a replay changes
# nothing; an alarm sent back into a new incident (its old one had closed) moves to it.
UPSERT_CLASSIFIED_ALARMS = (
    _ALARMS
    + """
ON CONFLICT (alarm_id) DO UPDATE SET
    place_id = coalesce(excluded.place_id, r.place_id),
    place_name = coalesce(excluded.place_name, r.place_name),
    lat = excluded.lat, lon = excluded.lon, classified_at = excluded.classified_at,
    incident_id = excluded.incident_id, category = excluded.category,
    priority = excluded.priority, grid_id = excluded.grid_id,
    place_type = excluded.place_type, merged_into = excluded.merged_into
WHERE r.classified_at IS NULL OR (excluded.classified_at >= r.classified_at
    AND (excluded.classified_at, excluded.incident_id, excluded.priority)
        IS DISTINCT FROM (r.classified_at, r.incident_id, r.priority))
"""
)
# An incident nothing else placed in a grid takes its first alarm's, whichever came first.
GRID_FROM_ALARMS = """
UPDATE record_incidents i SET grid_id = a.grid_id FROM record_alarms a
WHERE a.alarm_id = ANY($1::uuid[]) AND a.alarm_id = i.first_alarm_id
    AND i.grid_id IS NULL AND a.grid_id IS NOT NULL
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
    resolved_at, closed_at, is_open, coalesce(detail::jsonb -> 'parties', '[]'::jsonb),
    opened_at, updated_at, last_event_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::float8[], $10::float8[], $11::uuid[], $12::text[], $13::text[],
    $14::text[], $15::integer[], $16::timestamptz[], $17::timestamptz[], $18::timestamptz[],
    $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[],
    $23::timestamptz[], $24::boolean[], $25::text[], $26::timestamptz[], $27::timestamptz[],
    $28::uuid[])
    AS x (incident_id, state, previous_state, priority, category, enterprise_id, grid_id,
    place_name, lat, lon, first_alarm_id, text, reporter_name, reporter_phone, alarm_count,
    received_at, classified_at, dispatched_at, delivered_at, accepted_at, on_scene_at,
    resolved_at, closed_at, is_open, detail, opened_at, updated_at, last_event_id)
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

# The batch's folded rows per unit (units.unit_rows): status_at null means the batch held no
# status report (only presence records, which never change a status), fix_at null no fix.
_UNITS = """
unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::timestamptz[],
    $7::timestamptz[], $8::boolean[], $9::timestamptz[])
    AS x (unit_id, status, lat, lon, accuracy_m, fix_at, reported_at, presence, status_at)
"""
INSERT_UNITS = f"""
INSERT INTO record_units (unit_id, status, lat, lon, accuracy_m, position_at, reported_at,
    presence, updated_at)
SELECT unit_id, status, lat, lon, accuracy_m, fix_at, reported_at, presence,
    coalesce(status_at, reported_at)
FROM {_UNITS}
ON CONFLICT (unit_id) DO NOTHING
"""  # noqa: S608  # the f-string splices this module's own constant, never input
# A status changes only by a newer status report, a position only by a newer fix, presence
# by the newest record of any kind; a replay matches no row.
UPDATE_UNITS = f"""
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
FROM {_UNITS}
WHERE r.unit_id = x.unit_id
    AND (x.status_at > r.updated_at OR x.fix_at > coalesce(r.position_at, '-infinity')
        OR x.reported_at > r.reported_at
        OR (x.status_at = r.updated_at AND x.status <> r.status))
"""  # noqa: S608  # the f-string splices this module's own constant, never input

LAST_KEPT_FIXES = """
SELECT DISTINCT ON (unit_id) unit_id, at, lat, lon, status FROM record_unit_positions
WHERE unit_id = ANY($1::text[]) ORDER BY unit_id, at DESC
"""
INSERT_FIXES = """
INSERT INTO record_unit_positions (unit_id, at, lat, lon, status)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::text[])
ON CONFLICT (unit_id, at) DO NOTHING
"""

INSERT_DEAD_LETTERS = """
INSERT INTO record_dead_letters (event_id, source_topic, source_partition, source_offset,
    bundle_index, key, key_truncated, value, value_truncated, reason, errors, stage, failed_at)
SELECT event_id, source_topic, source_partition, source_offset, bundle_index, key,
    key_truncated, value, value_truncated, reason, errors::jsonb, stage, failed_at
FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::bigint[], $5::integer[], $6::text[],
    $7::boolean[], $8::text[], $9::boolean[], $10::text[], $11::text[], $12::text[],
    $13::timestamptz[])
    AS x (event_id, source_topic, source_partition, source_offset, bundle_index, key,
    key_truncated, value, value_truncated, reason, errors, stage, failed_at)
ON CONFLICT (event_id) DO NOTHING
"""
