"""Paging through the read API while the record grows: no row twice, none skipped, in order.

Rows are added between pages on both sides of the cursor (newer, older, in the middle, and
with the very same time as the last row shown): every row that was there before the first page
shows exactly once, a row added behind the cursor shows on a later page, and one added ahead of
it does not shift anything.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from consumers.auth import Role
from consumers.intake import build_app
from consumers.intake.read_api import ReadSettings
from dispatch.events import AssignmentKind, Category, IncidentState, IncidentStateChange, Priority
from dispatch.settings import Settings
from tests.integration.principals import Caller, enterprise, fresh_store, make_caller
from tests.integration.record_data import Made, incident, job, record
from tests.integration.test_intake_api import serving, started_producer

Key = tuple[str, str]  # (time as the API writes it, id): the lists' sort key
# Rows are added after each of the first pages only, so that the paging ends.
GROWING_PAGES = 3


@dataclass(frozen=True)
class Api:
    """The API on a store of the test's own, and a commander and a desk to read it."""

    http: httpx.AsyncClient
    pool: asyncpg.Pool
    commander: Caller
    desk: Caller


@pytest.fixture
async def api(running_stack: Settings, bootstrap: str, postgres_url: str) -> AsyncIterator[Api]:
    """Run intake on an empty record."""
    settings = running_stack.model_copy(update={"rate_limit_per_minute": 10_000})
    ent = enterprise()
    read = ReadSettings(sink_group=f"sink-{uuid.uuid4().hex[:10]}")
    async with (
        fresh_store(postgres_url) as pool,
        started_producer(bootstrap) as producer,
        serving(build_app(settings, producer=producer, pool=pool, read=read)) as url,
        httpx.AsyncClient(base_url=url, timeout=60.0) as http,
    ):
        commander = await make_caller(pool, Role.COMMANDER)
        desk = await make_caller(pool, Role.DESK, enterprise_id=ent)
        yield Api(http, pool, commander, desk)


async def pages(
    api: Api,
    who: Caller,
    path: str,
    key: Callable[[dict[str, Any]], Key],
    between: Callable[[int, list[dict[str, Any]]], Awaitable[None]],
    **params: Any,
) -> list[Key]:
    """Read every page of a list (limit 3), calling between(n, page) after page n."""
    keys: list[Key] = []
    cursor: str | None = None
    n = 0
    while True:
        query = params | {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = await api.http.get(path, params=query, headers=who.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows = next(value for name, value in body.items() if isinstance(value, list))
        keys += [key(row) for row in rows]
        cursor = body["next_cursor"]
        if cursor is None:
            return keys
        n += 1
        await between(n, rows)


def at_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def stamp(moment: datetime) -> str:
    """Return a time as the API writes it."""
    return at_ms(moment).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def incident_key(row: dict[str, Any]) -> Key:
    return row["received_at"], row["incident_id"]


def made_key(made: Made) -> Key:
    return stamp(made.received_at), str(made.incident_id)


def alarm_key(row: dict[str, Any]) -> Key:
    return row["received_at"], row["alarm_id"]


def assert_whole(keys: list[Key], before: list[Key], descending: bool) -> None:
    """Every row that existed before paging shows once; the whole is in the list's order."""
    assert len(keys) == len(set(keys)), "a row showed twice"
    assert set(before) <= set(keys), "a row was skipped"
    ordered = sorted(keys, reverse=descending)
    assert keys == ordered


async def test_incident_pages_stay_whole_while_incidents_are_added(api: Api) -> None:
    ent = api.desk.enterprise_id
    base = at_ms(datetime.now(UTC)) - timedelta(hours=2)
    first = [incident(base + timedelta(minutes=n), enterprise_id=ent) for n in range(9)]
    await record(api.pool, [e for made in first for e in made.events])
    added: list[tuple[Key, Key]] = []  # (the row added, the cursor when it was added)

    async def grow(n: int, page: list[dict[str, Any]]) -> None:
        if n > GROWING_PAGES:
            return
        last = datetime.fromisoformat(page[-1]["received_at"])
        batch = [
            incident(base + timedelta(hours=1, minutes=n), enterprise_id=ent),  # newer
            incident(base - timedelta(minutes=n), enterprise_id=ent),  # older than all
            incident(last - timedelta(seconds=30), enterprise_id=ent),  # just behind
            incident(last, enterprise_id=ent),  # the same time as the last row shown
        ]
        added.extend((made_key(made), incident_key(page[-1])) for made in batch)
        await record(api.pool, [e for made in batch for e in made.events])

    keys = await pages(api, api.commander, "/v1/incidents", incident_key, grow, enterprise_id=ent)
    assert_whole(keys, [made_key(m) for m in first], descending=True)
    assert len(added) == 4 * GROWING_PAGES
    for row, cursor in added:
        # Newest first: a row sorting below the cursor is still to come; above, already passed.
        assert (row in keys) == (row < cursor), (row, cursor)


async def test_alarm_pages_stay_whole_while_alarms_are_added(api: Api) -> None:
    ent = api.desk.enterprise_id
    base = at_ms(datetime.now(UTC)) - timedelta(hours=3)
    first = [incident(base + timedelta(minutes=n), enterprise_id=ent) for n in range(7)]
    await record(api.pool, [e for made in first for e in made.events])
    added: list[tuple[Key, Key]] = []

    async def grow(n: int, page: list[dict[str, Any]]) -> None:
        if n > GROWING_PAGES:
            return
        last = datetime.fromisoformat(page[-1]["received_at"])
        batch = [
            incident(base - timedelta(minutes=n), enterprise_id=ent),
            incident(last, enterprise_id=ent),
            incident(base + timedelta(hours=2), enterprise_id=ent),
        ]
        added.extend(((stamp(m.received_at), str(m.alarm_id)), alarm_key(page[-1])) for m in batch)
        await record(api.pool, [e for made in batch for e in made.events])

    keys = await pages(api, api.desk, "/v1/alarms", alarm_key, grow)
    before = [(stamp(m.received_at), str(m.alarm_id)) for m in first]
    assert_whole(keys, before, descending=True)
    assert added
    for row, cursor in added:
        assert (row in keys) == (row < cursor), (row, cursor)


async def test_timeline_pages_stay_whole_while_events_are_added(api: Api) -> None:
    base = at_ms(datetime.now(UTC)) - timedelta(minutes=30)
    made = incident(
        base,
        enterprise_id=api.desk.enterprise_id,
        parties=[(f"u-{n}", AssignmentKind.ASSIGNMENT) for n in range(4)],
    )
    await record(api.pool, made.events)
    before = await api.pool.fetch(
        "SELECT at, event_id FROM record_events WHERE incident_id = $1", made.incident_id
    )
    added: list[tuple[Key, Key]] = []

    async def grow(n: int, page: list[dict[str, Any]]) -> None:
        # An escalation at the end, and a job offered at the very time of the page's last row.
        if n > GROWING_PAGES:
            return
        last = datetime.fromisoformat(page[-1]["at"])
        change = made.last.model_copy(
            update={
                "event_id": uuid.uuid4(),
                "state": IncidentState.ESCALATED,
                "at": base + timedelta(minutes=10 + n),
            }
        )
        assert isinstance(change, IncidentStateChange)
        tie = job(made.incident_id, f"u-x{n}", AssignmentKind.ASSIGNMENT, last,
                  Priority.P2, Category.FIGHT, eta_s=60.0)  # fmt: skip
        cursor = event_key(page[-1])
        added.append(((stamp(change.at), str(change.event_id)), cursor))
        added.append(((stamp(tie.dispatched_at), str(tie.assignment_id)), cursor))
        await record(api.pool, [change, tie])

    path = f"/v1/incidents/{made.incident_id}/timeline"
    keys = await pages(api, api.desk, path, event_key, grow)
    assert_whole(keys, [(stamp(r["at"]), str(r["event_id"])) for r in before], descending=False)
    assert added
    for row, cursor in added:
        # Oldest first: a row sorting above the cursor is still to come.
        assert (row in keys) == (row > cursor), (row, cursor)


def event_key(row: dict[str, Any]) -> Key:
    return row["at"], row["event_id"]
