"""The role matrix over real HTTP and websockets: every role tries every action, and each
(role, action) cell is asserted, refusals and allowed cases alike.

One intake API and one push gateway serve the whole module, on a fresh schema and fresh
topics. Desk A's enterprise has raised one alarm, and a patrol and a guard each have one job
in the outbox; the cases act on those. The record holds an incident at A (the patrol sent, the
guard alerted for mutual aid) and a later one at B; the read API's cases read those, and a
desk edits its requests (another enterprise named, another's incident id, the commander's
cursor) to reach B's. See docs/auth.md for the matrix as the policy states it and
docs/protocol.md, docs/intake.md, docs/api.md for how each service answers a refusal.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from consumers.auth import Role
from consumers.intake import build_app
from consumers.intake.read_api import ReadSettings
from consumers.push import PushGateway, PushTopics
from consumers.push.protocol import (
    CommandOutcomeFrame,
    ErrorCode,
    ErrorFrame,
    IncidentFrame,
    JobFrame,
    OkFrame,
    ResumeFrame,
    UnitStatusFrame,
    WelcomeFrame,
)
from dispatch.events import (
    Assignment,
    AssignmentKind,
)
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import (
    Caller,
    disabled_caller,
    enterprise,
    fresh_store,
    make_caller,
    revoked_caller,
)
from tests.integration.record_data import Made, incident, record
from tests.integration.test_intake_api import serving, started_producer
from tests.integration.test_push_gateway import Client, change_at, job_for, produce

ENT_A = enterprise()
ENT_B = enterprise()
ALARM = {"text": "仓库门口有人打架 / two men fighting at the warehouse gate"}
LIMIT = 10_000  # per minute: the matrix is about roles, not rates


@dataclass(frozen=True)
class World:
    """The running services, everyone's credentials, and the data the cases act on."""

    http: httpx.AsyncClient
    gateway: PushGateway
    producer: AIOKafkaProducer
    topics: PushTopics
    callers: dict[str, Caller | None]  # None: presents no token at all
    alarm_id: uuid.UUID  # raised by desk A at its enterprise
    patrol_job: Assignment
    guard_job: Assignment
    # In the record: at A (patrol sent, guard alerted), and a later one at B.
    at_a: Made
    at_b: Made
    # The commander's cursor after the first incident of its list (B's).
    commander_cursor: str

    @property
    def url(self) -> str:
        """Return the gateway's websocket URL."""
        return f"ws://127.0.0.1:{self.gateway.port}/"


def unknown_token() -> Caller:
    """Return a caller with a well-formed token that was never issued."""
    return Caller("nobody", Role.DESK, uuid.uuid4(), f"dsp_{secrets.token_urlsafe(32)}")


async def everyone(pool: asyncpg.Pool) -> dict[str, Caller | None]:
    """Store one principal of every kind the matrix needs."""
    return {
        "desk A": await make_caller(pool, Role.DESK, enterprise_id=ENT_A),
        "desk B": await make_caller(pool, Role.DESK, enterprise_id=ENT_B),
        "guard": await make_caller(pool, Role.GUARD, enterprise_id=ENT_A),
        "patrol": await make_caller(pool, Role.PATROL),
        "unit": await make_caller(pool, Role.UNIT),
        "sensor": await make_caller(pool, Role.SENSOR, enterprise_id=ENT_A),
        "hotline": await make_caller(pool, Role.SENSOR),
        "commander": await make_caller(pool, Role.COMMANDER),
        "admin": await make_caller(pool, Role.ADMIN),
        "revoked": await revoked_caller(pool),
        "disabled": await disabled_caller(pool),
        "no token": None,
        "bad token": unknown_token(),
    }


async def stored_job(url: str, who: Caller) -> JobFrame:
    """Connect as a unit and wait for its first job: then it is in the outbox."""
    async with connect(url, additional_headers=who.headers, proxy=None) as ws:
        c = Client(ws)
        await c.expect(WelcomeFrame)
        await c.send(type="hello", last_acked_seq=0)
        await c.expect(ResumeFrame)
        return await c.expect(JobFrame)


@pytest.fixture(scope="module")
async def world(running_stack: Settings, bootstrap: str, postgres_url: str) -> AsyncIterator[World]:
    """Run intake and the gateway for the module, with the cast and their data."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    topics = PushTopics.with_prefix(prefix)
    alarms_topic = f"t.alarms.raw.{uuid.uuid4().hex[:12]}"
    await ensure_topics(
        bootstrap, [TopicDecl(name, 2) for name in (*astuple(topics), alarms_topic)]
    )
    settings = running_stack.model_copy(update={"rate_limit_per_minute": LIMIT})
    # No sink runs here: the board does not wait long for one to catch up (it says so).
    read = ReadSettings(
        sink_group=f"g.{uuid.uuid4().hex[:12]}", topic_prefix=prefix, board_wait_s=0.2
    )
    async with (
        fresh_store(postgres_url) as pool,
        started_producer(bootstrap) as producer,
        serving(
            build_app(settings, producer=producer, pool=pool, topic=alarms_topic, read=read)
        ) as url,
        httpx.AsyncClient(base_url=url, timeout=60.0) as http,
        PushGateway(
            settings, pool, topics=topics, group_id=f"g.{uuid.uuid4().hex[:12]}", port=0
        ) as gateway,
    ):
        callers = await everyone(pool)
        desk_a, patrol, guard = (callers[name] for name in ("desk A", "patrol", "guard"))
        assert desk_a is not None
        assert patrol is not None
        assert guard is not None
        raised = await http.post("/v1/alarms", json=ALARM, headers=desk_a.headers)
        assert raised.status_code == 202, raised.text
        jobs = job_for(patrol.unit), job_for(guard.unit)
        await produce(producer, topics.assignments, *jobs)
        ws_url = f"ws://127.0.0.1:{gateway.port}/"
        assert (await stored_job(ws_url, patrol)).assignment == jobs[0]
        assert (await stored_job(ws_url, guard)).assignment == jobs[1]
        at_a, at_b = await recorded(pool, patrol.unit, guard.unit)
        commander = callers["commander"]
        assert commander is not None
        first = await http.get("/v1/incidents", params={"limit": 1}, headers=commander.headers)
        assert [row["incident_id"] for row in first.json()["incidents"]] == [str(at_b.incident_id)]
        yield World(
            http=http,
            gateway=gateway,
            producer=producer,
            topics=topics,
            callers=callers,
            alarm_id=uuid.UUID(raised.json()["alarm_id"]),
            patrol_job=jobs[0],
            guard_job=jobs[1],
            at_a=at_a,
            at_b=at_b,
            commander_cursor=first.json()["next_cursor"],
        )


async def recorded(pool: asyncpg.Pool, patrol: str | None, guard: str | None) -> tuple[Made, Made]:
    """Write an incident at A (the patrol sent, the guard alerted) and a later one at B."""
    assert patrol is not None
    assert guard is not None
    at = datetime.now(UTC) - timedelta(minutes=10)
    parties = [(patrol, AssignmentKind.ASSIGNMENT), (guard, AssignmentKind.MUTUAL_AID_ALERT)]
    at_a = incident(at, enterprise_id=ENT_A, parties=parties)
    at_b = incident(at + timedelta(minutes=1), enterprise_id=ENT_B)
    await record(pool, [*at_a.events, *at_b.events])
    return at_a, at_b


# -- the actions --------------------------------------------------------------------------------

Outcome = int | str
Action = Callable[[World, Caller | None], Awaitable[Outcome]]
Then = Callable[[Client, WelcomeFrame], Awaitable[str]]


def headers_of(who: Caller | None) -> dict[str, str]:
    return who.headers if who is not None else {}


async def raise_own(world: World, who: Caller | None) -> Outcome:
    """Raise an alarm at the caller's own enterprise (or at none)."""
    response = await world.http.post("/v1/alarms", json=ALARM, headers=headers_of(who))
    return response.status_code


async def raise_elsewhere(world: World, who: Caller | None) -> Outcome:
    """Raise an alarm at an enterprise that is nobody's here."""
    body = ALARM | {"enterprise_id": enterprise()}
    response = await world.http.post("/v1/alarms", json=body, headers=headers_of(who))
    return response.status_code


async def read_desk_a_alarm(world: World, who: Caller | None) -> Outcome:
    """Read the receipt of the alarm desk A raised at its enterprise."""
    response = await world.http.get(f"/v1/alarms/{world.alarm_id}", headers=headers_of(who))
    return response.status_code


async def on_channel(world: World, who: Caller | None, first: dict[str, Any], then: Then) -> str:
    """Connect as who and go on with then; a refusal is the outcome ("http 401", "close 4001").

    Without a token the client sends `first` as its first frame, which must be refused.
    """
    try:
        async with connect(world.url, additional_headers=headers_of(who), proxy=None) as ws:
            c = Client(ws)
            if who is None:
                await c.send(**first)
                assert (await c.expect(ErrorFrame)).code == ErrorCode.UNAUTHORIZED
                with pytest.raises(ConnectionClosed) as closed:
                    await c.frame()
                assert closed.value.rcvd is not None
                return f"close {closed.value.rcvd.code}"
            return await then(c, await c.expect(WelcomeFrame))
    except InvalidStatus as refused:
        return f"http {refused.response.status_code}"


async def answer(c: Client) -> str:
    """Return the gateway's answer to the last frame: "ok" or the error code."""
    while True:
        frame = await c.frame()
        if isinstance(frame, OkFrame):
            return "ok"
        if isinstance(frame, ErrorFrame):
            return frame.code.value
        # Jobs of a unit's backlog and board changes may come first.
        assert isinstance(
            frame, JobFrame | IncidentFrame | UnitStatusFrame | CommandOutcomeFrame
        ), frame


def sending(frame: Callable[[World], dict[str, Any]]) -> Action:
    """Return the action of sending one frame (a unit says hello first) and its answer."""

    async def act(world: World, who: Caller | None) -> Outcome:
        async def then(c: Client, welcome: WelcomeFrame) -> str:
            if welcome.channel == "unit":
                await c.send(type="hello", last_acked_seq=0)
                await c.expect(ResumeFrame)
            await c.send(**frame(world))
            return await answer(c)

        return await on_channel(world, who, frame(world), then)

    return act


async def connect_channel(world: World, who: Caller | None) -> Outcome:
    """Open a websocket: the outcome is the channel the role gets."""

    async def then(c: Client, welcome: WelcomeFrame) -> str:
        assert who is not None
        assert welcome.principal_id == who.id
        return welcome.channel.value

    return await on_channel(world, who, {"type": "hello"}, then)


async def open_unit_channel(world: World, who: Caller | None) -> Outcome:
    """Send hello, which starts the unit channel: resume, or an error."""

    async def then(c: Client, _: WelcomeFrame) -> str:
        await c.send(type="hello", last_acked_seq=0)
        frame = await c.frame()
        if isinstance(frame, ResumeFrame):
            return "resume"
        assert isinstance(frame, ErrorFrame), frame
        return frame.code.value

    return await on_channel(world, who, {"type": "hello"}, then)


async def watch_desk_a_incident(world: World, who: Caller | None) -> Outcome:
    """Watch the board while an incident at desk A's enterprise changes: seen or hidden."""

    async def then(c: Client, welcome: WelcomeFrame) -> str:
        if welcome.channel == "unit":
            return "no board"  # a unit channel carries the unit's jobs, never incidents
        assert who is not None
        # One key, so one partition: the feed fans the first out before the marker, which is
        # at the watcher's own enterprise (or none, for the commander) and so always seen.
        watched, marker = change_at(ENT_A), change_at(who.enterprise_id)
        await produce(world.producer, world.topics.incidents_state, watched, marker, key=b"matrix")
        seen: set[uuid.UUID] = set()
        while marker.event_id not in seen:
            frame = await c.frame()
            if isinstance(frame, IncidentFrame):
                seen.add(frame.change.event_id)
        return "sees" if watched.event_id in seen else "hidden"

    return await on_channel(world, who, {"type": "hello"}, then)


ACTIONS: dict[str, Action] = {
    "raise alarm, own enterprise": raise_own,
    "raise alarm, another enterprise": raise_elsewhere,
    "read desk A's alarm": read_desk_a_alarm,
    "connect": connect_channel,
    "open the unit channel": open_unit_channel,
    "accept the patrol's job": sending(
        lambda w: {
            "type": "respond",
            "unit_id": w.patrol_job.unit_id,
            "assignment_id": w.patrol_job.assignment_id,
            "action": "accept",
        }
    ),
    "decline the guard's job": sending(
        lambda w: {
            "type": "respond",
            "unit_id": w.guard_job.unit_id,
            "assignment_id": w.guard_job.assignment_id,
            "action": "decline",
            "reason": "not ours",
        }
    ),
    "report a position": sending(
        lambda _: {"type": "position", "lat": 31.69, "lon": 113.38, "status": "available"}
    ),
    "command": sending(
        lambda _: {
            "type": "command",
            "command_id": uuid.uuid4(),
            "action": "cancel",
            "incident_id": uuid.uuid4(),
        }
    ),
    "watch desk A's incident": watch_desk_a_incident,
}

# What each role gets for each action, in the order of ACTIONS. HTTP answers are statuses; a
# websocket refused at the handshake is "http <status>", one refused at its first frame (no
# token) "close <code>"; otherwise the channel, "resume", "ok", an error code, or what a board
# shows of desk A's incident.
WRONG = "wrong_channel"
NOT_ITS = "unknown_assignment"  # the same answer for another unit's job as for no job
NO_BOARD = "no board"
H401, H403 = "http 401", "http 403"
EXPECTED: dict[str, tuple[Outcome, ...]] = {
    # raise own, raise at another, read A's alarm, connect, hello, accept the patrol's job,
    # decline the guard's job, position, command, watch A's incident
    "desk A": (202, 403, 200, "desk", WRONG, WRONG, WRONG, WRONG, WRONG, "sees"),
    "desk B": (202, 403, 404, "desk", WRONG, WRONG, WRONG, WRONG, WRONG, "hidden"),
    # A guard bound to desk A's enterprise raises only there, and reads only its own alarms.
    "guard": (202, 403, 404, "unit", "resume", NOT_ITS, "ok", "ok", WRONG, NO_BOARD),
    "patrol": (403, 403, 403, "unit", "resume", "ok", NOT_ITS, "ok", WRONG, NO_BOARD),
    "unit": (403, 403, 403, "unit", "resume", NOT_ITS, NOT_ITS, "ok", WRONG, NO_BOARD),
    "sensor": (202, 403, 404, H403, H403, H403, H403, H403, H403, H403),
    # The hotline is a sensor bound to no enterprise: it raises anywhere.
    "hotline": (202, 202, 404, H403, H403, H403, H403, H403, H403, H403),
    # A commander records a unit's answer given by radio (the frame names the unit:
    # docs/protocol.md, "Answers by radio"), but sends no position.
    "commander": (202, 202, 200, "commander", WRONG, "ok", "ok", WRONG, "ok", "sees"),
    "admin": (403, 403, 403, H403, H403, H403, H403, H403, H403, H403),
    "revoked": (401, 401, 401, H401, H401, H401, H401, H401, H401, H401),
    "disabled": (401, 401, 401, H401, H401, H401, H401, H401, H401, H401),
    "no token": (401, 401, 401, *("close 4001",) * 7),
    "bad token": (401, 401, 401, H401, H401, H401, H401, H401, H401, H401),
}
CASES = [
    pytest.param(role, action, outcomes[i], id=f"{role} | {action}")
    for role, outcomes in EXPECTED.items()
    for i, action in enumerate(ACTIONS)
]


def test_the_table_has_a_cell_for_every_role_and_action() -> None:
    assert {len(outcomes) for outcomes in EXPECTED.values()} == {len(ACTIONS)}


@pytest.mark.parametrize(("role", "action", "expected"), CASES)
async def test_role_matrix(world: World, role: str, action: str, expected: Outcome) -> None:
    assert await ACTIONS[action](world, world.callers[role]) == expected


# -- the read API ---------------------------------------------------------------------------------


def rows_named(world: World, rows: list[dict[str, Any]]) -> str:
    """Return which of the record's incidents rows show ("A", "B", "A+B", "none"); "?" for any
    other, which would be a leak."""
    names = {str(world.at_a.incident_id): "A", str(world.at_b.incident_id): "B"}
    shown = sorted({names.get(str(row["incident_id"]), "?") for row in rows})
    return "+".join(shown) or "none"


def reading(path: Callable[[World], str], **params: Any) -> Action:
    """Return the action of a GET: a list's rows by name, else the status."""

    async def act(world: World, who: Caller | None) -> Outcome:
        asked = {k: v(world) if callable(v) else v for k, v in params.items()}
        response = await world.http.get(path(world), params=asked, headers=headers_of(who))
        if response.status_code != 200:
            return response.status_code
        body = response.json()
        for name in ("incidents", "alarms"):
            if name in body and "next_cursor" in body:
                return rows_named(world, body[name])
        return response.status_code

    return act


async def who_called_a(world: World, who: Caller | None) -> Outcome:
    """Open A's incident: whether who called it in is shown, or the status."""
    response = await world.http.get(
        f"/v1/incidents/{world.at_a.incident_id}", headers=headers_of(who)
    )
    if response.status_code != 200:
        return response.status_code
    return "shown" if response.json()["reporter_phone"] is not None else "hidden"


READS: dict[str, Action] = {
    "read the board": reading(lambda _: "/v1/board"),
    "list units": reading(lambda _: "/v1/units"),
    "list incidents": reading(lambda _: "/v1/incidents"),
    "open A's incident": reading(lambda w: f"/v1/incidents/{w.at_a.incident_id}"),
    "read A's timeline": reading(lambda w: f"/v1/incidents/{w.at_a.incident_id}/timeline"),
    "see who called A": who_called_a,
    "open B's incident by its id": reading(lambda w: f"/v1/incidents/{w.at_b.incident_id}"),
    "list alarms": reading(lambda _: "/v1/alarms"),
    "search incidents naming B": reading(lambda _: "/v1/incidents", enterprise_id=ENT_B),
    "search alarms naming B": reading(lambda _: "/v1/alarms", enterprise_id=ENT_B),
    "page on with the commander's cursor": reading(
        lambda _: "/v1/incidents", cursor=lambda w: w.commander_cursor
    ),
}
R401 = (401,) * len(READS)
R403 = (403,) * len(READS)
READ_EXPECTED: dict[str, tuple[Outcome, ...]] = {
    # board, units, list incidents, open A, A's timeline, who called A, open B, list alarms,
    # incidents naming B, alarms naming B, page on after the commander's first (B)
    "desk A": (403, 403, "A", 200, 200, "shown", 404, "A", 403, 403, "A"),
    "desk B": (403, 403, "B", 404, 404, 404, 200, "B", "B", "B", "none"),
    # Alerted for aid at A, so it reads A; not who called, since it may be another's guard.
    "guard": (403, 403, "A", 200, 200, "hidden", 404, 403, "none", 403, "A"),
    "patrol": (403, 403, "A", 200, 200, "shown", 404, 403, "none", 403, "A"),
    "unit": (403, 403, "none", 404, 404, 404, 404, 403, "none", 403, "none"),
    "sensor": R403,
    "hotline": R403,
    "commander": (200, 200, "A+B", 200, 200, "shown", 200, "A+B", "B", "B", "A"),
    "admin": R403,
    "revoked": R401,
    "disabled": R401,
    "no token": R401,
    "bad token": R401,
}
READ_CASES = [
    pytest.param(role, action, outcomes[i], id=f"{role} | {action}")
    for role, outcomes in READ_EXPECTED.items()
    for i, action in enumerate(READS)
]


def test_the_read_table_has_a_cell_for_every_role_and_read() -> None:
    assert set(READ_EXPECTED) == set(EXPECTED)
    assert {len(outcomes) for outcomes in READ_EXPECTED.values()} == {len(READS)}


@pytest.mark.parametrize(("role", "action", "expected"), READ_CASES)
async def test_read_matrix(world: World, role: str, action: str, expected: Outcome) -> None:
    assert await READS[action](world, world.callers[role]) == expected
