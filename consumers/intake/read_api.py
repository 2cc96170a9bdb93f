"""The read API: the board's starting picture, incidents, alarms and units from the record.

Reads the tables the sink writes (migration 0012_record.sql). Every endpoint takes the same
bearer token as `POST /v1/alarms` and checks the caller's role with consumers.auth.policy;
each row is filtered again with can_read_incident and stripped of who called with
can_read_reporter, so the SQL's scope and the policy must agree for a row to show. Reads
change nothing and write no audit entry (docs/auth.md: the log records changes). docs/api.md.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response

from consumers.auth import Principal
from consumers.intake import read_queries as q
from consumers.intake.errors import documented, field_error
from consumers.intake.read_models import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AlarmPage,
    Board,
    IncidentAlarmPage,
    IncidentDetail,
    IncidentPage,
    StateFilter,
    TimelinePage,
    UnitPage,
)
from consumers.intake.read_service import Reader
from consumers.intake.record_progress import WAIT_S, RecordProgress
from dispatch.events import (
    INCIDENTS_STATE,
    UNITS_STATUS,
    Category,
    Identifier,
    Priority,
    UtcTimestamp,
)
from dispatch.zone import Zone

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
