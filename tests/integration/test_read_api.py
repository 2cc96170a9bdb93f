"""The read API on the real PostgreSQL and Kafka: the board, searches, an incident's history,
a desk's alarms, units; scope by role, who called hidden from whom it must be, paging.

One intake API serves the module on a fresh schema whose record the sink's own writer filled
(tests/integration/record_data.py). The board's check that the sink caught up runs against
fresh, empty topics, so it answers at once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from consumers.auth import Role
from consumers.intake import build_app
from consumers.intake.read_api import ReadSettings
from consumers.intake.read_models import Board
from dispatch.events import (
    INCIDENTS_STATE,
    UNITS_STATUS,
    AssignmentKind,
    Category,
    ClassifiedAlarm,
    Priority,
)
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import Caller, enterprise, fresh_store, make_caller
from tests.integration.record_data import CALLER, PHONE, Made, incident, record, unit_report
from tests.integration.test_intake_api import serving, started_producer

ENT_A, ENT_B = enterprise(), enterprise()
LIMIT = 10_000  # per minute: these tests are about reading, not rates


@dataclass(frozen=True)
class World:
    """The API, its store, the callers and the incidents in the record."""

    http: httpx.AsyncClient
    pool: asyncpg.Pool
    callers: dict[str, Caller]
    # at A open (patrol sent, guard alerted); at A closed; at B open; nowhere open (patrol)
    a_open: Made
    a_closed: Made
    b_open: Made
    away: Made
    reported_at: datetime

    async def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        """GET path as who."""
        return await self.http.get(path, params=params, headers=self.callers[who].headers)


def now_ms() -> datetime:
    at = datetime.now(UTC)
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


@pytest.fixture(scope="module")
async def world(running_stack: Settings, bootstrap: str, postgres_url: str) -> AsyncIterator[World]:
    """Run intake on a fresh record with four incidents and two units."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(
        bootstrap, [TopicDecl(prefix + t.name, 2) for t in (INCIDENTS_STATE, UNITS_STATUS)]
    )
    settings = running_stack.model_copy(update={"rate_limit_per_minute": LIMIT})
    read = ReadSettings(sink_group=f"sink-{uuid.uuid4().hex[:10]}", topic_prefix=prefix)
    async with (
        fresh_store(postgres_url) as pool,
        started_producer(bootstrap) as producer,
        serving(build_app(settings, producer=producer, pool=pool, read=read)) as url,
        httpx.AsyncClient(base_url=url, timeout=60.0) as http,
    ):
        callers = {
            "commander": await make_caller(pool, Role.COMMANDER),
            "desk A": await make_caller(pool, Role.DESK, enterprise_id=ENT_A),
            "desk B": await make_caller(pool, Role.DESK, enterprise_id=ENT_B),
            "patrol": await make_caller(pool, Role.PATROL),
            "guard": await make_caller(pool, Role.GUARD, enterprise_id=ENT_B),
            "unit": await make_caller(pool, Role.UNIT),
            "sensor": await make_caller(pool, Role.SENSOR, enterprise_id=ENT_A),
            "admin": await make_caller(pool, Role.ADMIN),
        }
        patrol, guard = callers["patrol"].unit_id, callers["guard"].unit_id
        assert patrol is not None
        assert guard is not None
        start = now_ms() - timedelta(hours=1)
        a_open = incident(
            start,
            enterprise_id=ENT_A,
            priority=Priority.P1,
            parties=[(patrol, AssignmentKind.ASSIGNMENT), (guard, AssignmentKind.MUTUAL_AID_ALERT)],
        )
        a_closed = incident(start + timedelta(minutes=1), enterprise_id=ENT_A, closed=True)
        b_open = incident(start + timedelta(minutes=2), enterprise_id=ENT_B)
        away = incident(
            start + timedelta(minutes=3),
            category=Category.THEFT,
            grid_id="xh-g01",
            parties=[(patrol, AssignmentKind.ASSIGNMENT)],
        )
        reported_at = now_ms() - timedelta(seconds=30)
        await record(
            pool,
            [
                *a_open.events,
                *a_closed.events,
                *b_open.events,
                *away.events,
                unit_report(patrol, reported_at),
                unit_report(guard, reported_at, 0.01),
            ],
        )
        yield World(http, pool, callers, a_open, a_closed, b_open, away, reported_at)


def ids(body: dict[str, Any], key: str = "incidents") -> list[uuid.UUID]:
    return [uuid.UUID(row["incident_id"]) for row in body[key]]


def refused(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    if field is not None:
        assert [f["field"] for f in response.json()["fields"]] == [field]


# -- the board ----------------------------------------------------------------------------------


async def test_the_board_holds_every_open_incident_and_every_unit(world: World) -> None:
    response = await world.get("commander", "/v1/board")
    assert response.status_code == 200, response.text
    board = response.json()
    assert (board["complete"], board["behind"]) == (True, 0)
    # Written by PostgreSQL and spliced, the board is still the model's shape exactly.
    Board.model_validate_json(response.content)
    # Most urgent first, then oldest first: the P1 at A, then the P2s by time.
    assert ids(board) == [i.incident_id for i in (world.a_open, world.b_open, world.away)]
    first = board["incidents"][0]
    assert first["state"] == "dispatched"
    assert first["last_event_id"] == str(world.a_open.last.event_id)
    assert first["updated_event_ids"] == [str(world.a_open.last.event_id)]
    assert first["updated_at"] == world.a_open.last.model_dump(mode="json")["at"]
    assert (first["reporter_name"], first["reporter_phone"]) == (CALLER, PHONE)
    assert [p["kind"] for p in first["parties"]] == ["assignment", "mutual_aid_alert"]
    units = {u["unit_id"]: u for u in board["units"]}
    patrol = units[world.callers["patrol"].unit_id or ""]
    assert patrol["status"] == "available"
    assert patrol["position"]["accuracy_m"] == 8.0
    assert patrol["position_age_s"] >= 30.0
    as_of = datetime.fromisoformat(board["as_of"])
    assert patrol["position_age_s"] == pytest.approx(
        (as_of - world.reported_at).total_seconds(), abs=0.002
    )


async def test_the_board_writes_each_incident_as_the_incident_page_does(world: World) -> None:
    board = (await world.get("commander", "/v1/board")).json()
    assert board["incidents"]
    for row in board["incidents"]:
        detail = (await world.get("commander", f"/v1/incidents/{row['incident_id']}")).json()
        for name in ("alarms", "alarms_next_cursor", "timeline", "timeline_next_cursor"):
            del detail[name]
        assert row.pop("updated_event_ids") == [row["last_event_id"]]
        assert row == detail


@pytest.mark.parametrize("who", ["desk A", "patrol", "guard", "sensor", "admin"])
async def test_only_the_commander_reads_the_board_and_the_units(world: World, who: str) -> None:
    refused(await world.get(who, "/v1/board"), 403)
    refused(await world.get(who, "/v1/units"), 403)


async def test_units_page_by_id(world: World) -> None:
    first = (await world.get("commander", "/v1/units", limit=1)).json()
    second = (
        await world.get("commander", "/v1/units", limit=1, cursor=first["next_cursor"])
    ).json()
    assert second["next_cursor"] is None
    got = [first["units"][0]["unit_id"], second["units"][0]["unit_id"]]
    assert got == sorted(
        [world.callers["patrol"].unit_id or "", world.callers["guard"].unit_id or ""]
    )


# -- searching incidents ------------------------------------------------------------------------


async def test_the_commander_searches_by_every_filter(world: World) -> None:
    a_open, a_closed, b_open, away = world.a_open, world.a_closed, world.b_open, world.away

    async def found(**params: Any) -> list[uuid.UUID]:
        response = await world.get("commander", "/v1/incidents", **params)
        assert response.status_code == 200, response.text
        return ids(response.json())

    everything = [away, b_open, a_closed, a_open]  # newest first
    assert await found() == [i.incident_id for i in everything]
    assert await found(state="open") == [i.incident_id for i in (away, b_open, a_open)]
    assert await found(state="closed") == [a_closed.incident_id]
    assert await found(state="resolved") == [a_closed.incident_id]
    assert await found(state="dispatched") == [i.incident_id for i in (away, a_open)]
    assert await found(enterprise_id=ENT_A) == [a_closed.incident_id, a_open.incident_id]
    assert await found(category="theft") == [away.incident_id]
    assert await found(grid_id="xh-g01") == [away.incident_id]
    assert await found(priority="P1") == [a_open.incident_id]
    window = {"from": a_closed.received_at.isoformat(), "to": away.received_at.isoformat()}
    assert await found(**window) == [b_open.incident_id, a_closed.incident_id]


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("desk A", ("a_closed", "a_open")),
        ("desk B", ("b_open",)),
        ("patrol", ("away", "a_open")),  # sent to both
        ("guard", ("a_open",)),  # alerted for mutual aid, at another enterprise
        ("unit", ()),
    ],
)
async def test_each_role_finds_only_what_it_may_read(
    world: World, who: str, sees: tuple[str, ...]
) -> None:
    response = await world.get(who, "/v1/incidents")
    assert response.status_code == 200, response.text
    assert ids(response.json()) == [getattr(world, name).incident_id for name in sees]


async def test_who_called_is_shown_only_to_whom_it_may_be(world: World) -> None:
    async def contact(who: str) -> tuple[str | None, str | None]:
        rows = (await world.get(who, "/v1/incidents", enterprise_id=ENT_A, state="open")).json()
        (row,) = rows["incidents"]
        return row["reporter_name"], row["reporter_phone"]

    assert await contact("desk A") == (CALLER, PHONE)
    assert await contact("patrol") == (CALLER, PHONE)  # sent to it
    assert await contact("guard") == (None, None)  # only alerted, from another enterprise


async def test_a_desk_that_names_another_enterprise_is_refused(world: World) -> None:
    refused(await world.get("desk A", "/v1/incidents", enterprise_id=ENT_B), 403, "enterprise_id")
    refused(await world.get("desk A", "/v1/alarms", enterprise_id=ENT_B), 403, "enterprise_id")
    own = await world.get("desk A", "/v1/incidents", enterprise_id=ENT_A)
    assert ids(own.json()) == [world.a_closed.incident_id, world.a_open.incident_id]


@pytest.mark.parametrize("who", ["sensor", "admin"])
async def test_roles_without_incidents_are_refused(world: World, who: str) -> None:
    refused(await world.get(who, "/v1/incidents"), 403)
    refused(await world.get(who, f"/v1/incidents/{world.a_open.incident_id}"), 403)
    refused(await world.get(who, "/v1/alarms"), 403)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"from": "2026-11-26T03:04:05"}, "from"),  # no zone: Beijing time or UTC?
        ({"from": "2026-11-26T03:04:05Z", "to": "2026-11-26T03:04:05Z"}, "to"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"state": "lost"}, "state"),
        ({"priority": "P9"}, "priority"),
        ({"enterprise_id": "no spaces allowed"}, "enterprise_id"),
    ],
)
async def test_a_bad_query_is_refused_naming_the_parameter(
    world: World, params: dict[str, Any], field: str
) -> None:
    refused(await world.get("commander", "/v1/incidents", **params), 422, field)


async def test_a_cursor_of_another_list_is_refused(world: World) -> None:
    page = (await world.get("commander", "/v1/units", limit=1)).json()
    refused(
        await world.get("commander", "/v1/incidents", cursor=page["next_cursor"]), 422, "cursor"
    )


# -- one incident -------------------------------------------------------------------------------


async def test_an_incident_comes_with_its_alarms_and_its_timeline(world: World) -> None:
    made = world.a_open
    response = await world.get("commander", f"/v1/incidents/{made.incident_id}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert [a["alarm_id"] for a in detail["alarms"]] == [str(made.alarm_id)]
    assert detail["alarms"][0]["reporter_name"] == CALLER
    kinds = [entry["kind"] for entry in detail["timeline"]]
    assert sorted(kinds) == sorted(["alarm", "assignment", "assignment", "state", "state"])
    times = [entry["at"] for entry in detail["timeline"]]
    assert times == sorted(times)
    assert (detail["alarms_next_cursor"], detail["timeline_next_cursor"]) == (None, None)


async def test_a_guard_alerted_for_aid_sees_the_history_without_the_caller(world: World) -> None:
    response = await world.get("guard", f"/v1/incidents/{world.a_open.incident_id}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["alarms"][0]["reporter_name"] is None
    assert CALLER not in response.text
    assert PHONE not in response.text
    patrol_job = next(
        e for e in detail["timeline"] if e["unit_id"] == world.callers["patrol"].unit_id
    )
    assert patrol_job["detail"]["reporter_name"] is None
    assert patrol_job["detail"]["eta_s"] == 120.0


@pytest.mark.parametrize("who", ["desk B", "unit"])
async def test_an_incident_the_caller_may_not_read_is_not_found(world: World, who: str) -> None:
    for path in ("", "/alarms", "/timeline"):
        refused(await world.get(who, f"/v1/incidents/{world.a_open.incident_id}{path}"), 404)
    refused(await world.get(who, f"/v1/incidents/{uuid.uuid4()}"), 404)


async def test_a_storm_pages_on_past_the_first_500_alarms(world: World) -> None:
    storm = incident(now_ms() - timedelta(minutes=30), enterprise_id=enterprise())
    alarm = storm.events[1]
    assert isinstance(alarm, ClassifiedAlarm)
    merged = [
        alarm.model_copy(
            update={
                "alarm_id": uuid.uuid4(),
                "merged_into": storm.incident_id,
                "received_at": storm.received_at + timedelta(milliseconds=n + 1),
            }
        )
        for n in range(500)
    ]
    await record(world.pool, [*storm.events, *merged])
    path = f"/v1/incidents/{storm.incident_id}"
    detail = (await world.get("commander", path)).json()
    assert len(detail["alarms"]) == 500
    assert detail["alarms"][0]["alarm_id"] == str(storm.alarm_id)
    rest = (
        await world.get("commander", f"{path}/alarms", cursor=detail["alarms_next_cursor"])
    ).json()
    assert [a["alarm_id"] for a in rest["alarms"]] == [str(merged[-1].alarm_id)]
    assert rest["next_cursor"] is None
    timeline = (await world.get("commander", f"{path}/timeline", limit=2)).json()
    assert len(timeline["timeline"]) == 2
    assert timeline["next_cursor"] is not None


# -- a desk's alarms ----------------------------------------------------------------------------


async def test_a_desk_lists_its_alarms_with_who_is_coming_and_when(world: World) -> None:
    response = await world.get("desk A", "/v1/alarms")
    assert response.status_code == 200, response.text
    alarms = response.json()["alarms"]
    assert [a["alarm_id"] for a in alarms] == [
        str(world.a_closed.alarm_id),
        str(world.a_open.alarm_id),
    ]
    progress = alarms[1]["incident"]
    assert (progress["state"], progress["is_open"]) == ("dispatched", True)
    patrol = world.callers["patrol"].unit_id
    (sent,) = [p for p in progress["parties"] if p["unit_id"] == patrol]
    job = world.a_open.jobs[patrol or ""]
    assert sent["eta_s"] == job.eta_s
    eta_at = job.dispatched_at + timedelta(seconds=job.eta_s or 0)
    assert datetime.fromisoformat(sent["eta_at"]) == eta_at
    assert alarms[0]["incident"]["state"] == "resolved"


async def test_the_commander_lists_every_alarm_and_units_none(world: World) -> None:
    # The module's four incidents, apart from any a test added since.
    window = {
        "from": world.a_open.received_at.isoformat(),
        "to": (world.away.received_at + timedelta(seconds=1)).isoformat(),
    }
    every = (await world.get("commander", "/v1/alarms", **window)).json()["alarms"]
    made = (world.away, world.b_open, world.a_closed, world.a_open)
    assert [uuid.UUID(a["alarm_id"]) for a in every] == [m.alarm_id for m in made]
    for who in ("patrol", "guard", "unit"):
        refused(await world.get(who, "/v1/alarms"), 403)
