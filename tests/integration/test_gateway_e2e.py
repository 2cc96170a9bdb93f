"""The whole way, on the real Kafka and PostgreSQL: a desk raises an alarm over HTTP, the stream
pipeline classifies and routes it, the push gateway puts the job on the unit's websocket, the
unit answers, and the commander's and desks' channels show the incident as far as each may.

Every wait is on a frame or a state change; nothing relies on the order of records across
topics, only on the order of one incident's changes on its own key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx

from consumers.auth import Role, history
from consumers.intake import build_app
from consumers.push import PushGateway, PushTopics
from consumers.push.actions import command_event_id
from consumers.push.protocol import (
    CommandOutcomeFrame,
    ErrorFrame,
    IncidentFrame,
    JobFrame,
    OkFrame,
    ServerFrame,
    UnitStatusFrame,
    WelcomeFrame,
)
from dispatch.events import (
    IncidentState,
    IncidentStateChange,
    PartyState,
    Position,
)
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from dispatch.zone import UnitKind, Zone
from tests.integration.harness import Harness, running_pipeline
from tests.integration.principals import Caller, connection, fresh_store, make_caller
from tests.integration.test_intake_api import serving, started_producer
from tests.integration.test_push_gateway import Client, client, unit_client

SITE = "ent-hengtong"  # the desk's own enterprise, a place of the demo zone
ELSEWHERE = "ent-qixing"  # another enterprise of the zone, with a desk of its own
THEFT = "仓库门口有人偷电动车 / someone is stealing e-bikes at the warehouse gate"
# A hang guard for a whole test, start-up and shut-down of every part included (the parts'
# own waits are bounded too, but starting and stopping a Faust app are not): a hang becomes a
# failure that says where it was.
WHOLE_TEST_S = 300.0


def near(zone: Zone, place_id: str, north_m: float) -> Position:
    """Return a position north_m metres north of a zone place."""
    place = zone.place(place_id)
    return Position(lat=place.position.lat + north_m / 111_320, lon=place.position.lon)


class Board:
    """A commander's or desk's channel, read one incident change at a time."""

    def __init__(self, who: Caller, channel: Client) -> None:
        self.who = who
        self.channel = channel
        self.changes: list[IncidentStateChange] = []

    async def until(self, check: Callable[[IncidentStateChange], bool]) -> IncidentStateChange:
        """Read frames until an incident change satisfies check; return it."""
        while True:
            frame: ServerFrame = await self.channel.frame()
            if isinstance(frame, UnitStatusFrame | CommandOutcomeFrame):
                continue  # the commander's board also shows unit reports and command outcomes
            assert isinstance(frame, IncidentFrame), frame
            self.changes.append(frame.change)
            if check(frame.change):
                return frame.change

    async def send(self, **frame: object) -> ServerFrame:
        """Send a frame and return the gateway's answer (ok or error), skipping board frames."""
        await self.channel.send(**frame)
        while True:
            answer = await self.channel.frame()
            if isinstance(answer, IncidentFrame):
                self.changes.append(answer.change)
            elif isinstance(answer, OkFrame | ErrorFrame):
                return answer


def party_state(change: IncidentStateChange, unit_id: str) -> PartyState | None:
    """Return the state of a unit's party on the incident, or None when it is no party."""
    return next((p.state for p in change.parties if p.unit_id == unit_id), None)


@dataclass
class System:
    """The pipeline, the intake API and the push gateway, with their principals."""

    harness: Harness
    gateway: PushGateway
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    desk: Caller
    other_desk: Caller
    commander: Caller
    first: Caller  # the patrol nearer to the desk's enterprise
    second: Caller  # a patrol further away

    @property
    def zone(self) -> Zone:
        """Return the pipeline's zone."""
        return self.harness.pipeline.zone


@asynccontextmanager
async def running_system(settings: Settings, postgres_url: str) -> AsyncIterator[System]:
    """Start the pipeline, then intake and the gateway on its topics, on a fresh schema."""
    async with asyncio.timeout(WHOLE_TEST_S), AsyncExitStack() as stack:
        h = await stack.enter_async_context(running_pipeline(settings))
        first, second = h.pipeline.zone.units_of_kind(UnitKind.PATROL)[:2]
        await h.report(first.id, near(h.pipeline.zone, SITE, north_m=500))
        await h.report(second.id, near(h.pipeline.zone, SITE, north_m=2500))
        await h.units_known()
        pool = await stack.enter_async_context(fresh_store(postgres_url))
        producer = await stack.enter_async_context(started_producer(settings.bootstrap_servers))
        intake = build_app(settings, producer=producer, pool=pool, topic=h.prefix + "alarms.raw")
        url = await stack.enter_async_context(serving(intake))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60.0))
        gateway = await stack.enter_async_context(
            PushGateway(
                settings,
                pool,
                topics=PushTopics.with_prefix(h.prefix),
                group_id=f"push-{uuid.uuid4().hex[:10]}",
                port=0,
            )
        )
        yield System(
            harness=h,
            gateway=gateway,
            http=http,
            pool=pool,
            desk=await make_caller(pool, Role.DESK, enterprise_id=SITE),
            other_desk=await make_caller(pool, Role.DESK, enterprise_id=ELSEWHERE),
            commander=await make_caller(pool, Role.COMMANDER),
            first=await make_caller(pool, Role.PATROL, unit_id=first.id),
            second=await make_caller(pool, Role.PATROL, unit_id=second.id),
        )


@asynccontextmanager
async def board(system: System, who: Caller, channel: str) -> AsyncIterator[Board]:
    """Open a commander's or desk's channel."""
    async with client(system.gateway, who.secret) as c:
        welcome = await c.expect(WelcomeFrame)
        assert (welcome.channel, welcome.principal_id) == (channel, who.id)
        yield Board(who, c)


async def raise_alarm(system: System, desk: Caller, text: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Raise an alarm as a desk over HTTP; return its id and the incident it opens."""
    response = await system.http.post(
        "/v1/alarms",
        json={"text": text, "idempotency_key": f"e2e-{uuid.uuid4().hex}"},
        headers=desk.headers,
    )
    assert response.status_code == 202, response.text
    alarm_id = uuid.UUID(response.json()["alarm_id"])
    return alarm_id, provisional_incident_id(alarm_id)


async def take_job(unit: Client, incident_id: uuid.UUID) -> JobFrame:
    """Receive the unit's next job, which must be for the incident; acknowledge and accept it."""
    job = await unit.expect(JobFrame)
    assert job.assignment.incident_id == incident_id
    await unit.send(type="ack", seq=job.seq)
    await unit.send(type="respond", seq=job.seq, action="accept", ref=f"accept-{job.seq}")
    ok = await unit.expect(OkFrame)
    assert (ok.of, ok.ref) == ("respond", f"accept-{job.seq}")
    return job


async def test_a_desks_alarm_reaches_the_unit_and_the_boards_see_it_accepted(
    running_stack: Settings, postgres_url: str
) -> None:
    async with (
        running_system(running_stack, postgres_url) as system,
        board(system, system.commander, "commander") as commander,
        board(system, system.desk, "desk") as desk,
        board(system, system.other_desk, "desk") as other_desk,
        unit_client(system.gateway, system.first) as (first, resume),
    ):
        assert (resume.after_seq, resume.last_seq) == (0, 0)
        alarm_id, incident_id = await raise_alarm(system, system.desk, THEFT)

        job = await take_job(first, incident_id)
        assert (job.seq, job.assignment.unit_id) == (1, system.first.unit)
        assert job.assignment.category == "theft"

        def accepted(change: IncidentStateChange) -> bool:
            return change.incident_id == incident_id and change.state is IncidentState.ACCEPTED

        seen = await commander.until(accepted)
        assert party_state(seen, system.first.unit) is PartyState.ACCEPTED
        # The ack reached the lifecycle before the accept (one key): delivery is timed.
        assert seen.timing.delivered_at is not None
        assert seen.timing.accepted_at is not None
        assert seen.enterprise_id == SITE
        own = await desk.until(accepted)
        assert own == seen
        assert {c.enterprise_id for c in desk.changes} == {SITE}
        states = [c.state for c in commander.changes if c.incident_id == incident_id]
        assert states[0] is IncidentState.CLASSIFIED
        assert IncidentState.DISPATCHED in states
        # Its receipt is the desk's to read over HTTP, and not another enterprise's desk's.
        path = f"/v1/alarms/{alarm_id}"
        assert (await system.http.get(path, headers=system.desk.headers)).status_code == 200
        assert (await system.http.get(path, headers=system.other_desk.headers)).status_code == 404

        # The other desk's channel got nothing of it: every change of the first incident was
        # fanned out before this alarm existed, so a leak would be its first frame.
        _, elsewhere = await raise_alarm(system, system.other_desk, THEFT)
        first_seen = await other_desk.until(lambda c: c.incident_id == elsewhere)
        assert other_desk.changes == [first_seen]
        assert first_seen.enterprise_id == ELSEWHERE

        async with connection(system.pool) as conn:
            entries = await history(conn, subject=f"incident:{incident_id}")
        assert [(e.action, e.actor) for e in entries] == [
            ("assignment.ack", system.first.id),
            ("assignment.respond", system.first.id),
        ]


async def test_a_commanders_reassign_sends_the_job_to_the_new_unit_with_the_commander_on_record(
    running_stack: Settings, postgres_url: str
) -> None:
    async with (
        running_system(running_stack, postgres_url) as system,
        board(system, system.commander, "commander") as commander,
        board(system, system.desk, "desk") as desk,
        unit_client(system.gateway, system.first) as (first, _),
        unit_client(system.gateway, system.second) as (second, _),
    ):
        _, incident_id = await raise_alarm(system, system.desk, THEFT)
        await take_job(first, incident_id)
        await commander.until(
            lambda c: c.incident_id == incident_id and c.state is IncidentState.ACCEPTED
        )

        # The first patrol is held up: the commander sends the second one instead.
        reassign_id = uuid.uuid4()
        ok = await commander.send(
            type="command",
            command_id=str(reassign_id),
            action="reassign",
            incident_id=str(incident_id),
            unit_id=system.second.unit,
            from_unit_id=system.first.unit,
            reason="held up at the station square",
            ref="r-1",
        )
        assert isinstance(ok, OkFrame), ok
        assert (ok.of, ok.ref) == ("command", "r-1")
        assert ok.event_id == command_event_id(system.commander.id, reassign_id)

        # The second patrol is pushed the job, and answers it.
        job = await take_job(second, incident_id)
        assert job.assignment.unit_id == system.second.unit
        sent = await commander.until(
            lambda c: (
                c.incident_id == incident_id
                and party_state(c, system.second.unit) is PartyState.ACCEPTED
            )
        )
        assert party_state(sent, system.first.unit) is PartyState.CANCELLED
        by_commander = [c for c in commander.changes if c.actor == system.commander.id]
        assert IncidentState.REDISPATCHED in {c.state for c in by_commander}
        assert any("held up at the station square" in (c.reason or "") for c in by_commander)

        ok = await commander.send(
            type="command",
            command_id=str(uuid.uuid4()),
            action="close",
            incident_id=str(incident_id),
            reason="suspect caught",
            ref="c-1",
        )
        assert isinstance(ok, OkFrame), ok
        resolved = await desk.until(
            lambda c: c.incident_id == incident_id and c.state is IncidentState.RESOLVED
        )
        assert (resolved.actor, resolved.reason) == (system.commander.id, "suspect caught")
        # The route stage applied both commands: nothing went to the dead-letter topic.
        assert system.harness.seen.dead_letters == []

        async with connection(system.pool) as conn:
            entries = await history(conn, subject=f"incident:{incident_id}")
        assert [(e.action, e.actor) for e in entries] == [
            ("assignment.ack", system.first.id),
            ("assignment.respond", system.first.id),
            ("incident.reassign", system.commander.id),
            ("assignment.ack", system.second.id),
            ("assignment.respond", system.second.id),
            ("incident.close", system.commander.id),
        ]
        reassign = entries[2].detail
        assert (reassign["unit_id"], reassign["from_unit_id"]) == (
            system.second.unit,
            system.first.unit,
        )
