"""A commander's board, started from `GET /v1/board` and its live channel, equals the truth.

On the real Kafka and PostgreSQL, with the sink, the push gateway and intake running on
fresh topics: incidents change all along (several changes at one instant among them, as a
reassign makes); a commander connects while they change, starts its board as
docs/protocol.md says (channel first, frames kept, snapshot, then one rule), disconnects,
misses changes, and connects again while more come. Each time, for every incident on the
snapshot, the frames it applies are exactly the changes after the ones the snapshot holds,
none twice and none missing; and at the end the board shows exactly the incidents that are
open, each at its last change.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from consumers.auth import Role
from consumers.intake import build_app
from consumers.intake.read_api import ReadSettings
from consumers.push import PushGateway, PushTopics
from consumers.push.protocol import IncidentFrame, WelcomeFrame
from consumers.sink.reading import catalog_topics
from consumers.sink.service import Sink
from dispatch.events import (
    TOPICS,
    Category,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Priority,
    encode,
    key_of,
)
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import Caller, fresh_store, make_caller
from tests.integration.test_intake_api import serving, started_producer
from tests.integration.test_push_gateway import Client, client

WHOLE_TEST_S = 300.0  # a hang guard, not a performance bound
INCIDENTS = 24
CLOSED = frozenset({IncidentState.RESOLVED, IncidentState.CANCELLED})
# Each incident's life; "reassign" is two changes at one instant (stood down, sent again).
LIFE = (
    "classified",
    "dispatched",
    "reassign",
    "accepted",
    "en_route",
    "on_scene",
    "resolved",
)


@dataclass
class Script:
    """Every change of every incident, in the order each is produced."""

    base: datetime
    changes: dict[uuid.UUID, list[IncidentStateChange]] = field(default_factory=dict)

    def make(self, n: int) -> list[list[IncidentStateChange]]:
        """Return incident n's steps, each the changes one decision writes together; every
        third incident stops at on_scene (stays open)."""
        incident_id = uuid.uuid4()
        start = self.base + timedelta(seconds=10 * n)
        steps: list[list[IncidentStateChange]] = []
        for step_no, step in enumerate(LIFE if n % 3 else LIFE[:-1]):
            at = start + timedelta(seconds=step_no)
            states = (
                [IncidentState.REDISPATCHED, IncidentState.DISPATCHED]
                if step == "reassign"
                else [IncidentState(step)]
            )
            steps.append([change(incident_id, state, at, start) for state in states])
        self.changes[incident_id] = [c for step in steps for c in step]
        return steps

    def truth(self, produced: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """Return the open incidents and each one's last change, over the changes produced."""
        board: dict[uuid.UUID, uuid.UUID] = {}
        for incident_id, changes in self.changes.items():
            done = [c for c in changes if c.event_id in produced]
            if done and done[-1].state not in CLOSED:
                board[incident_id] = done[-1].event_id
        return board

    def last_produced(self, produced: set[uuid.UUID]) -> list[uuid.UUID]:
        """Return each incident's last change among those produced."""
        lasts = []
        for changes in self.changes.values():
            done = [c.event_id for c in changes if c.event_id in produced]
            lasts += done[-1:]
        return lasts

    def position(self, incident_id: uuid.UUID, event_id: uuid.UUID) -> int:
        """Return where a change is in its incident's order."""
        return [c.event_id for c in self.changes[incident_id]].index(event_id)


def flat(steps: Sequence[Sequence[IncidentStateChange]]) -> list[IncidentStateChange]:
    return [c for step in steps for c in step]


def change(
    incident_id: uuid.UUID, state: IncidentState, at: datetime, received: datetime
) -> IncidentStateChange:
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=incident_id,
        state=state,
        actor="system",
        at=at,
        priority=Priority.P2,
        category=Category.FIGHT,
        enterprise_id="ent-hengtong",
        timing=IncidentTiming(received_at=received),
    )


@dataclass
class Board:
    """A board as docs/protocol.md builds it: a snapshot, then frames by one rule."""

    # incident id -> (the time shown, the changes held at that time, the change shown)
    shown: dict[uuid.UUID, tuple[datetime, set[uuid.UUID], uuid.UUID]] = field(default_factory=dict)
    # On the snapshot: incident id -> the ids it held; then every frame applied, in order.
    snapshot: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    applied: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    # Every change that came on the channel, applied or dropped.
    received: set[uuid.UUID] = field(default_factory=set)

    def load(self, snapshot: dict[str, Any]) -> None:
        """Show the snapshot of GET /v1/board."""
        assert snapshot["complete"] is True, snapshot["behind"]
        for row in snapshot["incidents"]:
            incident_id = uuid.UUID(row["incident_id"])
            held = [uuid.UUID(i) for i in row["updated_event_ids"]]
            assert uuid.UUID(row["last_event_id"]) in held
            at = datetime.fromisoformat(row["updated_at"])
            self.shown[incident_id] = (at, set(held), uuid.UUID(row["last_event_id"]))
            self.snapshot[incident_id] = held

    def apply(self, frame: IncidentStateChange) -> None:
        """Apply one incident frame by the rule, or drop it."""
        self.received.add(frame.event_id)
        current = self.shown.get(frame.incident_id)
        if current is not None:
            at, held, _ = current
            if frame.at < at or (frame.at == at and frame.event_id in held):
                return
            held = {frame.event_id} if frame.at > at else held | {frame.event_id}
        else:
            held = {frame.event_id}
        self.applied.setdefault(frame.incident_id, []).append(frame.event_id)
        self.shown[frame.incident_id] = (frame.at, held, frame.event_id)
        if frame.state in CLOSED:
            del self.shown[frame.incident_id]

    def open_board(self) -> dict[uuid.UUID, uuid.UUID]:
        """Return the incidents shown and the change each shows."""
        return {incident_id: shown[2] for incident_id, shown in self.shown.items()}


@dataclass
class World:
    """The running parts and the commander."""

    gateway: PushGateway
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    topic: str
    commander: Caller
    produced: set[uuid.UUID] = field(default_factory=set)

    async def produce(self, changes: Sequence[IncidentStateChange]) -> None:
        """Write changes in order, one at a time as the route stage would over time."""
        for each in changes:
            await self.producer.send_and_wait(self.topic, encode(each), key=key_of(each))
            self.produced.add(each.event_id)


@asynccontextmanager
async def running(settings: Settings, bootstrap: str, postgres_url: str) -> AsyncIterator[World]:
    """Start the sink, the gateway and intake on fresh topics and a fresh schema."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(bootstrap, [TopicDecl(prefix + name, 2) for name in TOPICS])
    sink_group = f"sink-{uuid.uuid4().hex[:10]}"
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(fresh_store(postgres_url))
        sink = Sink(
            bootstrap=bootstrap,
            pool=pool,
            zone=None,
            topics=catalog_topics(prefix),
            group_id=sink_group,
        )
        await sink.start()
        stack.push_async_callback(sink.stop)
        gateway = await stack.enter_async_context(
            PushGateway(
                settings,
                pool,
                topics=PushTopics.with_prefix(prefix),
                group_id=f"push-{uuid.uuid4().hex[:10]}",
                port=0,
            )
        )
        producer = await stack.enter_async_context(started_producer(bootstrap))
        read = ReadSettings(sink_group=sink_group, topic_prefix=prefix)
        app = build_app(settings, producer=producer, pool=pool, read=read)
        url = await stack.enter_async_context(serving(app))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60.0))
        kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await kafka.start()
        stack.push_async_callback(kafka.stop)
        commander = await make_caller(pool, Role.COMMANDER)
        yield World(gateway, http, kafka, prefix + "incidents.state", commander)


@dataclass(frozen=True)
class Visit:
    """What one connection sees produced: before its snapshot (so the channel shows changes the
    snapshot holds too), during it (a race), and after it (only the channel has them)."""

    overlap: Sequence[IncidentStateChange]
    racing: Sequence[IncidentStateChange]
    after: Sequence[IncidentStateChange]


async def watch(world: World, script: Script, visit: Visit) -> Board:
    """Connect, start the board as docs/protocol.md says while changes are produced, and follow
    the channel until every change produced has come; return the board."""
    board = Board()
    async with client(world.gateway, world.commander.secret) as c:
        await c.expect(WelcomeFrame)
        kept: asyncio.Queue[IncidentStateChange] = asyncio.Queue()
        reader = asyncio.create_task(keep(c, kept))
        await world.produce(visit.overlap)
        writer = asyncio.create_task(world.produce(visit.racing))
        try:
            response = await world.http.get("/v1/board", headers=world.commander.headers)
            assert response.status_code == 200, response.text
            board.load(response.json())
            await writer
            await world.produce(visit.after)
            # Each incident's last change produced comes on the channel (after every earlier
            # one of its partition) unless the snapshot holds it already.
            lasts = set(script.last_produced(world.produced))
            while not all(
                e in board.received or any(e in held for held in board.snapshot.values())
                for e in lasts
            ):
                board.apply(await kept.get())
            while not kept.empty():
                board.apply(kept.get_nowait())
        finally:
            writer.cancel()
            reader.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)
    # Published before the request, the overlap is in the snapshot (complete) and on the
    # channel: every one of its changes came, and none of an incident on the snapshot applied.
    applied = {e for ids in board.applied.values() for e in ids}
    assert {c.event_id for c in visit.overlap} <= board.received
    on_snapshot = [c for c in visit.overlap if c.incident_id in board.snapshot]
    assert on_snapshot
    assert not {c.event_id for c in on_snapshot} & applied
    # Published after the snapshot was read, the rest came and was applied, every change.
    assert {c.event_id for c in visit.after} <= applied
    return board


async def keep(c: Client, kept: asyncio.Queue[IncidentStateChange]) -> None:
    """Keep every incident frame of the channel, in order."""
    while True:
        frame = await c.frame()
        if isinstance(frame, IncidentFrame):
            kept.put_nowait(frame.change)


def check_no_gap_no_duplicate(board: Board, script: Script) -> None:
    """For every incident on the snapshot, the frames applied are exactly the changes after
    the ones it held, in order; no change is applied twice."""
    for incident_id, held in board.snapshot.items():
        order = [c.event_id for c in script.changes[incident_id]]
        upto = max(script.position(incident_id, event_id) for event_id in held)
        applied = board.applied.get(incident_id, [])
        assert applied == order[upto + 1 : upto + 1 + len(applied)], incident_id
    everything = [e for ids in board.applied.values() for e in ids]
    assert len(everything) == len(set(everything))


async def test_a_board_started_from_the_snapshot_follows_without_a_gap_or_a_duplicate(
    running_stack: Settings, bootstrap: str, postgres_url: str
) -> None:
    script = Script(base=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    lives = [script.make(n) for n in range(INCIDENTS)]
    # Round robin over the incidents' steps, each incident in its own order; a reassign's two
    # changes go out together, as the route stage writes them.
    steps = [life[i] for i in range(len(LIFE)) for life in lives if i < len(life)]
    part = len(steps) // 8
    phases = [flat(steps[n * part : (n + 1) * part]) for n in range(7)]
    phases.append(flat(steps[7 * part :]))
    order = flat(steps)
    async with (
        asyncio.timeout(WHOLE_TEST_S),
        running(running_stack, bootstrap, postgres_url) as world,
    ):
        await world.produce(phases[0])
        first = await watch(world, script, Visit(*phases[1:4]))
        check_no_gap_no_duplicate(first, script)
        assert first.open_board() == script.truth(world.produced)
        # Disconnected while changes go on; then connected again while more come.
        await world.produce(phases[4])
        again = await watch(world, script, Visit(*phases[5:8]))
        check_no_gap_no_duplicate(again, script)
        assert again.open_board() == script.truth(world.produced)
        assert world.produced == {c.event_id for c in order}
        # The open incidents are every third one, each at on_scene.
        assert len(again.open_board()) == len([n for n in range(INCIDENTS) if n % 3 == 0])
