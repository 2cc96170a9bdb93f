"""The read API: the board's starting picture, incidents, alarms and units from the record.

Reads the tables the sink writes (migration 0012_record.sql). Every endpoint takes the same
bearer token as `POST /v1/alarms` and checks the caller's role with consumers.auth.policy;
each row is filtered again with can_read_incident and stripped of who called with
can_read_reporter, so the SQL's scope and the policy must agree for a row to show. Reads
change nothing and write no audit entry (docs/auth.md: the log records changes). docs/api.md.
"""

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response
from pydantic import TypeAdapter

from consumers.auth import Principal, Role, can_read_incident
from consumers.auth.policy import (
    can_list_alarms,
    can_list_incidents,
    can_read_board,
    can_read_reporter,
    can_search_enterprise,
)
from consumers.intake import read_queries as q
from consumers.intake.cursors import decode_cursor, encode_cursor
from consumers.intake.errors import ApiError, documented, field_error
from consumers.intake.read_models import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Alarm,
    AlarmPage,
    AlarmProgress,
    Board,
    Incident,
    IncidentAlarmPage,
    IncidentDetail,
    IncidentPage,
    IncidentProgress,
    PartyProgress,
    StateFilter,
    TimelineEntry,
    TimelinePage,
    Unit,
    UnitPage,
)
from consumers.intake.record_progress import WAIT_S, Progress, RecordProgress
from dispatch.events import (
    INCIDENTS_STATE,
    UNITS_STATUS,
    AssignmentKind,
    Category,
    Identifier,
    Party,
    Position,
    Priority,
    UtcTimestamp,
)
from dispatch.zone import Zone

log = logging.getLogger(__name__)

_RECORD_DOWN = "the record (PostgreSQL) is unavailable; nothing could be read"
# What an incident page holds of its alarms and timeline before they continue by cursor.
DETAIL_PAGE = 500
_CONTACT_FIELDS = ("reporter_name", "reporter_phone")
_PARTIES: TypeAdapter[list[Party]] = TypeAdapter(list[Party])
_DETAIL: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(UtcTimestamp)
_UNITS: TypeAdapter[list[Unit]] = TypeAdapter(list[Unit])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page (1-500).")]
Cursor = Annotated[
    str | None, Query(max_length=400, description="`next_cursor` of the previous page.")
]
Since = Annotated[
    UtcTimestamp | None,
    Query(alias="from", description="Received at or after (ISO 8601 with a zone)."),
]
Until = Annotated[
    UtcTimestamp | None, Query(alias="to", description="Received before (ISO 8601 with a zone).")
]
EnterpriseFilter = Annotated[
    Identifier | None,
    Query(description="Only this enterprise's; a desk may name only its own (else 403)."),
]
Caller = Callable[..., Awaitable[Principal]]


@dataclass(frozen=True, slots=True)
class ReadSettings:
    """Where the board checks that the record caught up: the sink's group and the topics."""

    sink_group: str
    topic_prefix: str = ""
    board_wait_s: float = WAIT_S


@dataclass(frozen=True, slots=True)
class Visibility:
    """Whether a principal may see a row, and who called it in."""

    visible: bool
    contact: bool


def visibility_of(
    principal: Principal, enterprise_id: str | None, parties: list[Party]
) -> Visibility:
    """Return what principal may see of an incident at enterprise_id with these parties."""
    units = {p.unit_id for p in parties}
    sent = {p.unit_id for p in parties if p.kind is AssignmentKind.ASSIGNMENT}
    return Visibility(
        visible=can_read_incident(principal, enterprise_id=enterprise_id, unit_ids=units),
        contact=can_read_reporter(principal, enterprise_id=enterprise_id, sent_unit_ids=sent),
    )


def without_contact(value: Any) -> Any:
    """Return value (an event's JSON) with every reporter_name and reporter_phone nulled."""
    if isinstance(value, dict):
        return {
            key: None if key in _CONTACT_FIELDS else without_contact(inner)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [without_contact(inner) for inner in value]
    return value


def _position(row: asyncpg.Record, prefix: str = "", accuracy: bool = False) -> Position | None:
    lat, lon = row[prefix + "lat"], row[prefix + "lon"]
    if lat is None or lon is None:
        return None
    return Position(lat=lat, lon=lon, accuracy_m=row["accuracy_m"] if accuracy else None)


def incident_of(row: asyncpg.Record, parties: list[Party], *, contact: bool) -> Incident:
    """Return the Incident of a record_incidents row."""
    return Incident(
        incident_id=row["incident_id"],
        state=row["state"],
        is_open=row["is_open"],
        priority=row["priority"],
        category=row["category"],
        enterprise_id=row["enterprise_id"],
        grid_id=row["grid_id"],
        place_name=row["place_name"],
        position=_position(row),
        first_alarm_id=row["first_alarm_id"],
        alarm_count=row["alarm_count"],
        text=row["text"],
        reporter_name=row["reporter_name"] if contact else None,
        reporter_phone=row["reporter_phone"] if contact else None,
        received_at=row["received_at"],
        classified_at=row["classified_at"],
        dispatched_at=row["dispatched_at"],
        delivered_at=row["delivered_at"],
        accepted_at=row["accepted_at"],
        on_scene_at=row["on_scene_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        updated_at=row["updated_at"],
        last_event_id=row["last_event_id"],
        parties=parties,
    )


def alarm_fields(row: asyncpg.Record, *, contact: bool) -> dict[str, Any]:
    """Return the fields of an Alarm from a record_alarms row."""
    return {
        "alarm_id": row["alarm_id"],
        "received_at": row["received_at"],
        "source_kind": row["source_kind"],
        "source_id": row["source_id"],
        "enterprise_id": row["enterprise_id"],
        "text": row["text"],
        "place_id": row["place_id"],
        "place_name": row["place_name"],
        "position": _position(row),
        "reporter_name": row["reporter_name"] if contact else None,
        "reporter_phone": row["reporter_phone"] if contact else None,
        "classified_at": row["classified_at"],
        "incident_id": row["incident_id"],
        "category": row["category"],
        "priority": row["priority"],
        "grid_id": row["grid_id"],
        "place_type": row["place_type"],
        "merged_into": row["merged_into"],
    }


def timeline_entry(row: asyncpg.Record, *, contact: bool) -> TimelineEntry:
    """Return a TimelineEntry from a record_events row."""
    detail = _DETAIL.validate_json(row["detail"])
    return TimelineEntry(
        event_id=row["event_id"],
        kind=row["kind"],
        at=row["at"],
        actor=row["actor"],
        unit_id=row["unit_id"],
        assignment_id=row["assignment_id"],
        state=row["state"],
        detail=detail if contact else without_contact(detail),
    )


def board_incident(principal: Principal, row: asyncpg.Record) -> str | None:
    """Return an open incident's board JSON as principal may see it, or None."""
    parties = json.loads(row["parties"])
    units = {p["unit_id"] for p in parties}
    sent = {p["unit_id"] for p in parties if p["kind"] == AssignmentKind.ASSIGNMENT}
    where = row["enterprise_id"]
    if not can_read_incident(principal, enterprise_id=where, unit_ids=units):
        return None
    body: str = row["body"]
    if can_read_reporter(principal, enterprise_id=where, sent_unit_ids=sent):
        return body
    hidden = json.loads(body) | dict.fromkeys(_CONTACT_FIELDS)
    return json.dumps(hidden, ensure_ascii=False)


def _page_of(rows: list[asyncpg.Record], limit: int) -> tuple[list[asyncpg.Record], bool]:
    return rows[:limit], len(rows) > limit


class Reader:
    """What the read endpoints do: check the role, read the record, filter each row again."""

    def __init__(
        self,
        *,
        connection: Callable[[str], Any],
        zone: Zone,
        now: Callable[[], datetime],
        progress: RecordProgress,
    ) -> None:
        self._connection = connection
        self._units = {unit.id: unit for unit in zone.units}
        self._now = now
        self.progress = progress

    def _record(self) -> Any:
        return self._connection(_RECORD_DOWN)

    # -- the board and units --------------------------------------------------------------

    async def board(self, principal: Principal) -> bytes:
        """Return the Board's JSON: every open incident and every unit, once the record has
        caught up with the topics (or the wait ran out: `complete` says which)."""
        if not can_read_board(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not read the board")
        progress: Progress = await self.progress.caught_up()
        async with self._record() as conn, conn.transaction(readonly=True):
            # One snapshot for both tables (repeatable read), so units and incidents agree.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = await q.board_json(conn)
            unit_rows = await q.units(conn, after=None, limit=None)
        as_of = self._now()
        incidents = [text for row in rows if (text := board_incident(principal, row))]
        units = [self._unit(row, as_of) for row in unit_rows]
        # Spliced: the incidents were written as JSON by PostgreSQL in BoardIncident's shape
        # (tests check it against the model), and a thousand of them need no second pass.
        return b"".join(
            (
                b'{"as_of":',
                _TIMESTAMP.dump_json(as_of),
                b',"complete":',
                b"true" if progress.complete else b"false",
                b',"behind":',
                b"null" if progress.behind is None else str(progress.behind).encode(),
                b',"incidents":[',
                ",".join(incidents).encode(),
                b'],"units":',
                _UNITS.dump_json(units),
                b"}",
            )
        )

    async def units(self, principal: Principal, *, limit: int, cursor: str | None) -> UnitPage:
        """Return a page of units by id."""
        if not can_read_board(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not read units")
        after = decode_cursor("u", cursor, (str,))[0] if cursor else None
        async with self._record() as conn:
            rows = await q.units(conn, after=after, limit=limit)
        page, more = _page_of(rows, limit)
        as_of = self._now()
        return UnitPage(
            as_of=as_of,
            units=[self._unit(row, as_of) for row in page],
            next_cursor=encode_cursor("u", (page[-1]["unit_id"],)) if more else None,
        )

    def _unit(self, row: asyncpg.Record, as_of: datetime) -> Unit:
        known = self._units.get(row["unit_id"])
        fixed = row["position_at"]
        position = _position(row, accuracy=True)
        return Unit(
            unit_id=row["unit_id"],
            name=known.name if known else None,
            kind=str(known.kind) if known else None,
            status=row["status"],
            position=position,
            position_at=fixed,
            position_age_s=(
                round((as_of - fixed).total_seconds(), 3) if fixed and position else None
            ),
            presence=row["presence"],
            reported_at=row["reported_at"],
        )

    # -- incidents ------------------------------------------------------------------------

    async def incidents(
        self, principal: Principal, query: q.IncidentQuery, *, limit: int, cursor: str | None
    ) -> IncidentPage:
        """Return a page of the incidents principal may see, newest first."""
        scoped = self._scope(principal, query)
        after = decode_cursor("i", cursor, (datetime, uuid.UUID)) if cursor else None
        async with self._record() as conn:
            rows = await q.incidents(conn, scoped, after=after, limit=limit)
        page, more = _page_of(rows, limit)
        incidents = []
        for row in page:
            parties = _PARTIES.validate_json(row["parties"])
            seen = visibility_of(principal, row["enterprise_id"], parties)
            if seen.visible:
                incidents.append(incident_of(row, parties, contact=seen.contact))
            else:
                # The SQL scope and the policy disagree: a bug, never shown.
                log.error(
                    "read API: incident %s outside %s's scope", row["incident_id"], principal.id
                )
        last = page[-1] if page else None
        next_cursor = (
            encode_cursor("i", (last["sort_at"], last["incident_id"])) if more and last else None
        )
        return IncidentPage(incidents=incidents, next_cursor=next_cursor)

    def _scope(self, principal: Principal, query: q.IncidentQuery) -> q.IncidentQuery:
        if not can_list_incidents(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not read incidents")
        self._check_enterprise(principal, query.enterprise_id)
        if principal.role is Role.DESK:
            return _replace(query, enterprise_id=principal.enterprise_id)
        if principal.role is Role.COMMANDER:
            return query
        return _replace(query, party_unit_id=principal.unit_id)

    @staticmethod
    def _check_enterprise(principal: Principal, enterprise_id: str | None) -> None:
        if enterprise_id is not None and not can_search_enterprise(
            principal, enterprise_id=enterprise_id
        ):
            raise field_error(
                403,
                "this principal reads only its own enterprise's incidents and alarms",
                "enterprise_id",
                f"must be {principal.enterprise_id!r} or omitted",
            )

    async def incident(self, principal: Principal, incident_id: uuid.UUID) -> IncidentDetail:
        """Return an incident with the first page of its alarms and of its timeline."""
        async with self._record() as conn:
            row, seen = await self._visible_incident(conn, principal, incident_id)
            alarms = await q.incident_alarms(conn, incident_id, after=None, limit=DETAIL_PAGE)
            events = await q.timeline(conn, incident_id, after=None, limit=DETAIL_PAGE)
        parties = _PARTIES.validate_json(row["parties"])
        alarm_page, more_alarms = _page_of(alarms, DETAIL_PAGE)
        event_page, more_events = _page_of(events, DETAIL_PAGE)
        incident = incident_of(row, parties, contact=seen.contact)
        return IncidentDetail(
            **dict(incident),
            alarms=[Alarm(**alarm_fields(a, contact=seen.contact)) for a in alarm_page],
            alarms_next_cursor=_alarm_cursor(alarm_page) if more_alarms else None,
            timeline=[timeline_entry(e, contact=seen.contact) for e in event_page],
            timeline_next_cursor=_event_cursor(event_page) if more_events else None,
        )

    async def incident_alarms(
        self, principal: Principal, incident_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> IncidentAlarmPage:
        """Return a page of an incident's alarms, oldest first."""
        after = decode_cursor("ia", cursor, (datetime, uuid.UUID)) if cursor else None
        async with self._record() as conn:
            _, seen = await self._visible_incident(conn, principal, incident_id)
            rows = await q.incident_alarms(conn, incident_id, after=after, limit=limit)
        page, more = _page_of(rows, limit)
        return IncidentAlarmPage(
            alarms=[Alarm(**alarm_fields(a, contact=seen.contact)) for a in page],
            next_cursor=_alarm_cursor(page) if more else None,
        )

    async def timeline(
        self, principal: Principal, incident_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> TimelinePage:
        """Return a page of an incident's timeline, oldest first."""
        after = decode_cursor("t", cursor, (datetime, uuid.UUID)) if cursor else None
        async with self._record() as conn:
            _, seen = await self._visible_incident(conn, principal, incident_id)
            rows = await q.timeline(conn, incident_id, after=after, limit=limit)
        page, more = _page_of(rows, limit)
        return TimelinePage(
            timeline=[timeline_entry(e, contact=seen.contact) for e in page],
            next_cursor=_event_cursor(page) if more else None,
        )

    async def _visible_incident(
        self, conn: asyncpg.Connection, principal: Principal, incident_id: uuid.UUID
    ) -> tuple[asyncpg.Record, Visibility]:
        if not can_list_incidents(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not read incidents")
        row = await q.incident(conn, incident_id)
        seen = (
            visibility_of(principal, row["enterprise_id"], _PARTIES.validate_json(row["parties"]))
            if row is not None
            else None
        )
        # The same answer for "no such incident" and "not yours", so ids leak nothing.
        if row is None or seen is None or not seen.visible:
            raise ApiError(404, "no such incident")
        return row, seen

    # -- alarms ---------------------------------------------------------------------------

    async def alarms(
        self,
        principal: Principal,
        *,
        enterprise_id: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> AlarmPage:
        """Return a page of the alarms principal may list, with their progress, newest first."""
        if not can_list_alarms(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not list alarms")
        self._check_enterprise(principal, enterprise_id)
        if principal.role is Role.DESK:
            enterprise_id = principal.enterprise_id
        after = decode_cursor("a", cursor, (datetime, uuid.UUID)) if cursor else None
        async with self._record() as conn:
            rows = await q.alarms(
                conn,
                enterprise_id=enterprise_id,
                since=since,
                until=until,
                after=after,
                limit=limit,
            )
            page, more = _page_of(rows, limit)
            parties = {
                row["alarm_id"]: _PARTIES.validate_json(row["i_parties"])
                for row in page
                if row["i_incident_id"] is not None
            }
            etas = await q.etas(
                conn, [p.assignment_id for ps in parties.values() for p in ps if p.assignment_id]
            )
        alarms = []
        for row in page:
            where = row["enterprise_id"] or row["i_enterprise_id"]
            seen = visibility_of(principal, where, [])
            if not seen.visible:
                log.error("read API: alarm %s outside %s's scope", row["alarm_id"], principal.id)
                continue
            alarms.append(
                AlarmProgress(
                    **alarm_fields(row, contact=seen.contact),
                    incident=_progress(row, parties.get(row["alarm_id"]), etas),
                )
            )
        return AlarmPage(alarms=alarms, next_cursor=_alarm_cursor(page, "a") if more else None)


def _replace(query: q.IncidentQuery, **changes: Any) -> q.IncidentQuery:
    fields = {name: getattr(query, name) for name in query.__slots__}
    return q.IncidentQuery(**(fields | changes))


def _alarm_cursor(page: list[asyncpg.Record], tag: str = "ia") -> str:
    return encode_cursor(tag, (page[-1]["received_at"], page[-1]["alarm_id"]))


def _event_cursor(page: list[asyncpg.Record]) -> str:
    return encode_cursor("t", (page[-1]["at"], page[-1]["event_id"]))


def _progress(
    row: asyncpg.Record, parties: list[Party] | None, etas: dict[uuid.UUID, float]
) -> IncidentProgress | None:
    if row["i_incident_id"] is None or parties is None:
        return None
    return IncidentProgress(
        incident_id=row["i_incident_id"],
        state=row["i_state"],
        is_open=row["i_is_open"],
        priority=row["i_priority"],
        category=row["i_category"],
        dispatched_at=row["i_dispatched_at"],
        accepted_at=row["i_accepted_at"],
        on_scene_at=row["i_on_scene_at"],
        resolved_at=row["i_resolved_at"],
        closed_at=row["i_closed_at"],
        updated_at=row["i_updated_at"],
        parties=[_with_eta(party, etas) for party in parties],
    )


def _with_eta(party: Party, etas: dict[uuid.UUID, float]) -> PartyProgress:
    eta = etas.get(party.assignment_id) if party.assignment_id else None
    at = (
        party.dispatched_at + timedelta(seconds=eta)
        if eta is not None and party.dispatched_at is not None
        else None
    )
    return PartyProgress(**dict(party), eta_s=eta, eta_at=at)


_MEANINGS = {
    403: "The caller's role may not read this, or it names another enterprise.",
    404: "No such incident, or not one the caller may see (the same answer for both).",
    422: "A query parameter is invalid (`fields` names it), or the cursor is not one of this list.",
    503: "PostgreSQL (the record) is unavailable.",
}


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses = documented(*statuses)
    for status in statuses:
        if status in _MEANINGS:
            responses[status] = responses[status] | {"description": _MEANINGS[status]}
    return responses


def _json(model: IncidentPage | AlarmPage | bytes) -> Response:
    # Validated as it was built; FastAPI would validate it all again on the way out.
    body = model if isinstance(model, bytes) else model.model_dump_json()
    return Response(body, media_type="application/json")


def install_read_api(
    app: FastAPI,
    *,
    caller: Caller,
    connection: Callable[[str], Any],
    zone: Zone,
    now: Callable[[], datetime],
    bootstrap: str,
    read: ReadSettings,
) -> Reader:
    """Add the read endpoints to app (docs/api.md)."""
    progress = RecordProgress(
        bootstrap=bootstrap,
        group_id=read.sink_group,
        topics=[read.topic_prefix + INCIDENTS_STATE.name, read.topic_prefix + UNITS_STATUS.name],
        wait_s=read.board_wait_s,
    )
    reader = Reader(connection=connection, zone=zone, now=now, progress=progress)
    _close_on_shutdown(app, progress)
    authed = Depends(caller)

    @app.get("/v1/board", response_model=Board, responses=_documented(401, 403, 429, 503))
    async def read_board(principal: Annotated[Principal, authed]) -> Response:
        """Return the commander's starting picture: every open incident and every unit.

        Connect the commander channel first and keep its frames, then apply them on this
        snapshot as docs/protocol.md says: no change is missed or shown twice.
        """
        return _json(await reader.board(principal))

    @app.get("/v1/units", responses=_documented(401, 403, 422, 429, 503))
    async def read_units(
        principal: Annotated[Principal, authed], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> UnitPage:
        """Return units with their status, last position and its age, by unit id."""
        return await reader.units(principal, limit=limit, cursor=cursor)

    @app.get(
        "/v1/incidents", response_model=IncidentPage, responses=_documented(401, 403, 422, 429, 503)
    )
    async def list_incidents(
        principal: Annotated[Principal, authed],
        since: Since = None,
        until: Until = None,
        state: Annotated[StateFilter | None, Query(description="open, closed or one state")] = None,
        grid_id: Annotated[Identifier | None, Query()] = None,
        category: Annotated[Category | None, Query()] = None,
        priority: Annotated[Priority | None, Query()] = None,
        enterprise_id: EnterpriseFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response:
        """Return the incidents the caller may see, newest first (commander: all; desk: its
        enterprise's; a unit: those it was sent or alerted to)."""
        _check_range(since, until)
        query = q.IncidentQuery(
            is_open=_openness(state),
            state=None if state in (None, StateFilter.OPEN, StateFilter.CLOSED) else str(state),
            since=since,
            until=until,
            grid_id=grid_id,
            category=category.value if category else None,
            priority=priority.value if priority else None,
            enterprise_id=enterprise_id,
        )
        return _json(await reader.incidents(principal, query, limit=limit, cursor=cursor))

    @app.get("/v1/incidents/{incident_id}", responses=_documented(401, 403, 404, 422, 429, 503))
    async def read_incident(
        incident_id: uuid.UUID, principal: Annotated[Principal, authed]
    ) -> IncidentDetail:
        """Return an incident with its alarms and its timeline (oldest first, 500 of each;
        the rest by the cursors)."""
        return await reader.incident(principal, incident_id)

    @app.get(
        "/v1/incidents/{incident_id}/alarms", responses=_documented(401, 403, 404, 422, 429, 503)
    )
    async def read_incident_alarms(
        incident_id: uuid.UUID,
        principal: Annotated[Principal, authed],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> IncidentAlarmPage:
        """Return a page of the alarms merged into an incident, oldest first."""
        return await reader.incident_alarms(principal, incident_id, limit=limit, cursor=cursor)

    @app.get(
        "/v1/incidents/{incident_id}/timeline", responses=_documented(401, 403, 404, 422, 429, 503)
    )
    async def read_timeline(
        incident_id: uuid.UUID,
        principal: Annotated[Principal, authed],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> TimelinePage:
        """Return a page of an incident's timeline, oldest first."""
        return await reader.timeline(principal, incident_id, limit=limit, cursor=cursor)

    @app.get("/v1/alarms", response_model=AlarmPage, responses=_documented(401, 403, 422, 429, 503))
    async def list_alarms(
        principal: Annotated[Principal, authed],
        since: Since = None,
        until: Until = None,
        enterprise_id: EnterpriseFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response:
        """Return alarms with their incident's progress, newest first (desk: its enterprise's;
        commander: all)."""
        _check_range(since, until)
        page = await reader.alarms(
            principal,
            enterprise_id=enterprise_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        return _json(page)

    return reader


def _openness(state: StateFilter | None) -> bool | None:
    if state is StateFilter.OPEN:
        return True
    if state is StateFilter.CLOSED:
        return False
    return None


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise field_error(422, "invalid request: to", "to", "must be after from")


def _close_on_shutdown(app: FastAPI, progress: RecordProgress) -> None:
    # Starlette keeps one lifespan: the board's Kafka clients stop when it ends.
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            try:
                yield state
            finally:
                await progress.close()

    app.router.lifespan_context = lifespan
