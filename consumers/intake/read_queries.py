"""The read API's SQL on the record's tables (migration 0012_record.sql), all parametrised.

Every list is read by key (`(sort key, id) < ($n, $m)`), one row more than the page, so the
caller knows whether a next page exists. A WHERE clause is built from fixed fragments only;
every value a client sent travels as a bind parameter.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# An incident is sorted by when its first alarm was received; the first change's `at` stands
# in for a row written before its timing was known (docs/api.md).
INCIDENT_SORT = "coalesce(received_at, opened_at)"

_INCIDENT_COLUMNS = f"""
    incident_id, state, is_open, priority, category, enterprise_id, grid_id, place_name, lat,
    lon, first_alarm_id, alarm_count, text, reporter_name, reporter_phone, received_at,
    classified_at, dispatched_at, delivered_at, accepted_at, on_scene_at, resolved_at,
    closed_at, updated_at, last_event_id, parties::text AS parties, {INCIDENT_SORT} AS sort_at
"""
_ALARM_COLUMNS = """
    a.alarm_id, a.received_at, a.source_kind, a.source_id, a.enterprise_id, a.text, a.place_id,
    a.place_name, a.lat, a.lon, a.reporter_name, a.reporter_phone, a.classified_at,
    a.incident_id, a.category, a.priority, a.grid_id, a.place_type, a.merged_into
"""
_PROGRESS_COLUMNS = """
    i.incident_id AS i_incident_id, i.state AS i_state, i.is_open AS i_is_open,
    i.priority AS i_priority, i.category AS i_category, i.enterprise_id AS i_enterprise_id,
    i.dispatched_at AS i_dispatched_at, i.accepted_at AS i_accepted_at,
    i.on_scene_at AS i_on_scene_at, i.resolved_at AS i_resolved_at,
    i.closed_at AS i_closed_at, i.updated_at AS i_updated_at, i.parties::text AS i_parties
"""


class _Params:
    """Bind parameters, numbered as they are added."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    """What a list of incidents is filtered by; None is no filter."""

    is_open: bool | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    grid_id: str | None = None
    category: str | None = None
    priority: str | None = None
    enterprise_id: str | None = None
    # Only incidents this unit was a party to (a unit's own view).
    party_unit_id: str | None = None


def _ts(column: str) -> str:
    # The events' own form: UTC, milliseconds, a Z (dispatch.events.UtcTimestamp).
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


# An open incident as the board writes it (read_models.BoardIncident), built by PostgreSQL: a
# board of a thousand incidents is one query, and Python only checks each row's policy and
# splices the texts. Its parties are the change's own, as the sink stored them.
_BOARD_JSON = f"""
json_build_object(
    'incident_id', i.incident_id, 'state', i.state, 'is_open', i.is_open,
    'priority', i.priority, 'category', i.category, 'enterprise_id', i.enterprise_id,
    'grid_id', i.grid_id, 'place_name', i.place_name,
    'position', CASE WHEN i.lat IS NULL OR i.lon IS NULL THEN NULL
        ELSE json_build_object('lat', i.lat, 'lon', i.lon, 'accuracy_m', NULL) END,
    'first_alarm_id', i.first_alarm_id, 'alarm_count', i.alarm_count, 'text', i.text,
    'reporter_name', i.reporter_name, 'reporter_phone', i.reporter_phone,
    'received_at', {_ts("i.received_at")}, 'classified_at', {_ts("i.classified_at")},
    'dispatched_at', {_ts("i.dispatched_at")}, 'delivered_at', {_ts("i.delivered_at")},
    'accepted_at', {_ts("i.accepted_at")}, 'on_scene_at', {_ts("i.on_scene_at")},
    'resolved_at', {_ts("i.resolved_at")}, 'closed_at', {_ts("i.closed_at")},
    'updated_at', {_ts("i.updated_at")}, 'last_event_id', i.last_event_id,
    'parties', i.parties,
    'updated_event_ids', coalesce(
        (SELECT json_agg(e.event_id ORDER BY e.event_id) FROM record_events e
         WHERE e.incident_id = i.incident_id AND e.at = i.updated_at AND e.kind = 'state'),
        json_build_array(i.last_event_id))
)::text
"""  # noqa: S608  # splices this module's own fragments, never input


async def board_json(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Return every open incident, most urgent first, then oldest first: its enterprise, its
    parties (for the policy) and the incident as the board's JSON (`body`)."""
    return await conn.fetch(
        f"SELECT i.incident_id, i.enterprise_id, i.parties::text AS parties, {_BOARD_JSON} AS body "  # noqa: S608
        f"FROM record_incidents i WHERE i.is_open ORDER BY i.priority, {INCIDENT_SORT}, "
        "i.incident_id"
    )


async def incidents(
    conn: asyncpg.Connection,
    query: IncidentQuery,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Return up to limit + 1 incidents matching query, newest first, after the key after."""
    p = _Params()
    where: list[str] = []
    if query.is_open is not None:
        where.append(f"is_open = {p(query.is_open)}")
    for column in ("state", "grid_id", "category", "priority", "enterprise_id"):
        value = getattr(query, column)
        if value is not None:
            where.append(f"{column} = {p(value)}")
    if query.party_unit_id is not None:
        where.append(f"parties @> {p(json.dumps([{'unit_id': query.party_unit_id}]))}::jsonb")
    if query.since is not None:
        where.append(f"{INCIDENT_SORT} >= {p(query.since)}")
    if query.until is not None:
        where.append(f"{INCIDENT_SORT} < {p(query.until)}")
    if after is not None:
        where.append(f"({INCIDENT_SORT}, incident_id) < ({p(after[0])}, {p(after[1])})")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return await conn.fetch(
        f"SELECT {_INCIDENT_COLUMNS} FROM record_incidents {clause} "  # noqa: S608  # values are bind parameters
        f"ORDER BY {INCIDENT_SORT} DESC, incident_id DESC LIMIT {p(limit + 1)}",
        *p.values,
    )


async def incident(conn: asyncpg.Connection, incident_id: uuid.UUID) -> asyncpg.Record | None:
    """Return one incident's row, or None."""
    return await conn.fetchrow(
        f"SELECT {_INCIDENT_COLUMNS} FROM record_incidents WHERE incident_id = $1",  # noqa: S608
        incident_id,
    )


async def incident_alarms(
    conn: asyncpg.Connection,
    incident_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Return up to limit + 1 of an incident's alarms, oldest first, after the key after."""
    p = _Params()
    where = [f"a.incident_id = {p(incident_id)}"]
    if after is not None:
        where.append(f"(a.received_at, a.alarm_id) > ({p(after[0])}, {p(after[1])})")
    return await conn.fetch(
        f"SELECT {_ALARM_COLUMNS} FROM record_alarms a WHERE {' AND '.join(where)} "  # noqa: S608  # values are bind parameters
        f"ORDER BY a.received_at, a.alarm_id LIMIT {p(limit + 1)}",
        *p.values,
    )


async def timeline(
    conn: asyncpg.Connection,
    incident_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Return up to limit + 1 of an incident's events, oldest first, after the key after."""
    p = _Params()
    where = [f"incident_id = {p(incident_id)}"]
    if after is not None:
        where.append(f"(at, event_id) > ({p(after[0])}, {p(after[1])})")
    return await conn.fetch(
        "SELECT event_id, kind, at, actor, unit_id, assignment_id, state, detail::text AS detail "  # noqa: S608  # values are bind parameters
        f"FROM record_events WHERE {' AND '.join(where)} "
        f"ORDER BY at, event_id LIMIT {p(limit + 1)}",
        *p.values,
    )


async def alarms(
    conn: asyncpg.Connection,
    *,
    enterprise_id: str | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Return up to limit + 1 alarms with their incident's row, newest first.

    An alarm's enterprise is its own (the raiser's), or else its incident's: a hotline call
    about an enterprise carries none until it is placed.
    """
    p = _Params()
    where: list[str] = []
    if enterprise_id is not None:
        where.append(f"coalesce(a.enterprise_id, i.enterprise_id) = {p(enterprise_id)}")
    if since is not None:
        where.append(f"a.received_at >= {p(since)}")
    if until is not None:
        where.append(f"a.received_at < {p(until)}")
    if after is not None:
        where.append(f"(a.received_at, a.alarm_id) < ({p(after[0])}, {p(after[1])})")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return await conn.fetch(
        f"SELECT {_ALARM_COLUMNS}, {_PROGRESS_COLUMNS} FROM record_alarms a "  # noqa: S608  # values are bind parameters
        f"LEFT JOIN record_incidents i ON i.incident_id = a.incident_id {clause} "
        f"ORDER BY a.received_at DESC, a.alarm_id DESC LIMIT {p(limit + 1)}",
        *p.values,
    )


async def etas(
    conn: asyncpg.Connection, assignment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Return the routing's ETA (seconds) of each of these jobs that has one."""
    if not assignment_ids:
        return {}
    rows = await conn.fetch(
        "SELECT event_id, (detail->>'eta_s')::float8 AS eta_s FROM record_events "
        "WHERE event_id = ANY($1::uuid[]) AND kind = 'assignment' AND detail ? 'eta_s'",
        list(assignment_ids),
    )
    return {row["event_id"]: row["eta_s"] for row in rows if row["eta_s"] is not None}


async def units(
    conn: asyncpg.Connection, *, after: str | None, limit: int | None
) -> list[asyncpg.Record]:
    """Return units by id after the id after: limit + 1 of them, or all (limit None)."""
    p = _Params()
    clause = f"WHERE unit_id > {p(after)}" if after is not None else ""
    bound = f"LIMIT {p(limit + 1)}" if limit is not None else ""
    return await conn.fetch(
        "SELECT unit_id, status, lat, lon, accuracy_m, position_at, reported_at, presence "  # noqa: S608  # values are bind parameters
        f"FROM record_units {clause} ORDER BY unit_id {bound}",
        *p.values,
    )
