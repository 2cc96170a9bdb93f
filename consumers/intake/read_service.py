"""What the read endpoints do: check the role, read the record, filter each row again.

`Reader` holds the SQL's scope per role (a desk its enterprise, a unit its own incidents) and
pages by key; consumers.intake.read_rows checks every row against the policy on its way out.
docs/api.md.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from consumers.auth import Principal, Role
from consumers.auth.policy import (
    can_list_alarms,
    can_list_incidents,
    can_read_board,
    can_search_enterprise,
)
from consumers.intake import read_queries as q
from consumers.intake.cursors import decode_cursor, encode_cursor
from consumers.intake.errors import ApiError, field_error
from consumers.intake.read_models import (
    Alarm,
    AlarmPage,
    AlarmProgress,
    IncidentAlarmPage,
    IncidentDetail,
    IncidentPage,
    TimelinePage,
    Unit,
    UnitPage,
)
from consumers.intake.read_rows import (
    PARTIES,
    Visibility,
    alarm_fields,
    board_incident,
    incident_of,
    page_of,
    position_of,
    progress_of,
    timeline_entry,
    visibility_of,
)
from consumers.intake.record_progress import Progress, RecordProgress
from dispatch.events import UtcTimestamp
from dispatch.zone import Zone

log = logging.getLogger(__name__)

_RECORD_DOWN = "the record (PostgreSQL) is unavailable; nothing could be read"
# What an incident page holds of its alarms and timeline before they continue by cursor.
DETAIL_PAGE = 500
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(UtcTimestamp)
_UNITS: TypeAdapter[list[Unit]] = TypeAdapter(list[Unit])


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
        page, more = page_of(rows, limit)
        as_of = self._now()
        return UnitPage(
            as_of=as_of,
            units=[self._unit(row, as_of) for row in page],
            next_cursor=encode_cursor("u", (page[-1]["unit_id"],)) if more else None,
        )

    def _unit(self, row: asyncpg.Record, as_of: datetime) -> Unit:
        known = self._units.get(row["unit_id"])
        fixed = row["position_at"]
        position = position_of(row, accuracy=True)
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
        page, more = page_of(rows, limit)
        incidents = []
        for row in page:
            parties = PARTIES.validate_json(row["parties"])
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
        parties = PARTIES.validate_json(row["parties"])
        alarm_page, more_alarms = page_of(alarms, DETAIL_PAGE)
        event_page, more_events = page_of(events, DETAIL_PAGE)
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
        page, more = page_of(rows, limit)
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
        page, more = page_of(rows, limit)
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
            visibility_of(principal, row["enterprise_id"], PARTIES.validate_json(row["parties"]))
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
            page, more = page_of(rows, limit)
            parties = {
                row["alarm_id"]: PARTIES.validate_json(row["i_parties"])
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
                    incident=progress_of(row, parties.get(row["alarm_id"]), etas),
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
