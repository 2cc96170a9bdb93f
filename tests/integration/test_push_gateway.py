"""The push gateway on the real Kafka and PostgreSQL, with real websocket clients.

Each test has fresh topics (a prefix), a fresh schema, a fresh consumer group and its own
unit ids. Assignments are produced to Kafka as the route stage does (key unit_id).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from consumers.auth import Role, history, revoke_token
from consumers.push import PushGateway, PushTopics
from consumers.push.actions import command_event_id, response_event_id
from consumers.push.protocol import (
    ErrorCode,
    ErrorFrame,
    IncidentFrame,
    JobFrame,
    OkFrame,
    PushClose,
    ResumeFrame,
    ServerFrame,
    UnitStatusFrame,
    WelcomeFrame,
    parse_server_frame,
)
from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    CommanderAction,
    CommanderCommand,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Position,
    Priority,
    ResponseAction,
    ResponseEvent,
    UnitStatus,
    decode,
    encode,
    key_of,
)
from dispatch.settings import Settings
from infra.kafka import KafkaBroker
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import (
    ACTOR,
    Caller,
    connection,
    enterprise,
    fresh_store,
    make_caller,
)

WAIT_S = 30.0  # a hang guard, not a performance bound
F = TypeVar("F", bound=ServerFrame)
M = TypeVar("M", bound=EventModel)


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool whose connections use a fresh, migrated schema."""
    async with fresh_store(postgres_url) as store:
        yield store


@pytest.fixture
async def topics(bootstrap: str) -> PushTopics:
    """Create the gateway's topics under a fresh prefix, two partitions each."""
    names = PushTopics.with_prefix(f"t{uuid.uuid4().hex[:10]}.")
    await ensure_topics(bootstrap, [TopicDecl(name, 2) for name in astuple(names)])
    return names


@pytest.fixture
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """Yield a producer that writes as the route stage does (acks=all, idempotent)."""
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


@asynccontextmanager
async def gateway(
    settings: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    group_id: str,
    **overrides: Any,
) -> AsyncIterator[PushGateway]:
    """Run a gateway on a free port with some settings changed."""
    changed = settings.model_copy(update=overrides)
    async with PushGateway(changed, pool, topics=topics, group_id=group_id, port=0) as running:
        yield running


def job_for(
    unit_id: str, kind: AssignmentKind = AssignmentKind.ASSIGNMENT, summary: str = "P2 fight"
) -> Assignment:
    """Return a fresh assignment for a unit, dispatched now."""
    now = datetime.now(UTC)
    return Assignment(
        assignment_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        unit_id=unit_id,
        kind=kind,
        role=AssignmentRole.PRIMARY
        if kind is AssignmentKind.ASSIGNMENT
        else AssignmentRole.MUTUAL_AID,
        attempt=1,
        priority=Priority.P2,
        category=Category.FIGHT,
        position=Position(lat=31.70, lon=113.40),
        dispatched_at=now,
        ack_deadline=now + timedelta(minutes=1),
        summary=summary,
    )


async def produce(
    producer: AIOKafkaProducer, topic: str, *events: EventModel, key: bytes | None = None
) -> None:
    """Write events in order, keyed as the catalog says (or all by key), and wait for acks."""
    sent = [await producer.send(topic, encode(e), key=key or key_of(e)) for e in events]
    await asyncio.gather(*sent)


async def read_keyed(bootstrap: str, topic: str, model: type[M]) -> list[tuple[bytes, M]]:
    """Read everything a topic holds now, partition after partition, with the keys."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[tuple[bytes, M]] = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        async with asyncio.timeout(WAIT_S):
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                batch = await consumer.getmany(timeout_ms=200)
                seen += [
                    (r.key or b"", decode(model, r.value or b""))
                    for rs in batch.values()
                    for r in rs
                ]
    finally:
        await consumer.stop()
    return seen


async def read_all(bootstrap: str, topic: str, model: type[M]) -> list[M]:
    """Read everything a topic holds now, partition after partition."""
    return [event for _, event in await read_keyed(bootstrap, topic, model)]


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until check() is true (polling: the database has no event to wait on)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still not true after {WAIT_S} s")


class Client:
    """A websocket client that speaks the protocol's frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, **frame: Any) -> None:
        """Send one frame."""
        await self.ws.send(json.dumps(frame, default=str))

    async def frame(self, within_s: float = WAIT_S) -> ServerFrame:
        """Receive and parse the next frame."""
        return parse_server_frame(await asyncio.wait_for(self.ws.recv(), within_s))

    async def expect(self, kind: type[F]) -> F:
        """Receive the next frame, which must be of kind."""
        frame = await self.frame()
        assert isinstance(frame, kind), frame
        return frame

    async def jobs(self, count: int) -> list[JobFrame]:
        """Receive the next count frames, which must all be jobs."""
        return [await self.expect(JobFrame) for _ in range(count)]

    async def nothing_more(self, within_s: float = 1.0) -> None:
        """Check that no frame arrives within within_s."""
        with pytest.raises(TimeoutError):
            await self.frame(within_s)


def url(gw: PushGateway) -> str:
    return f"ws://127.0.0.1:{gw.port}/"


@asynccontextmanager
async def client(gw: PushGateway, secret: str | None, **options: Any) -> AsyncIterator[Client]:
    """Connect with the secret in the Authorization header (None: without a header)."""
    headers = {"Authorization": f"Bearer {secret}"} if secret is not None else None
    async with connect(url(gw), additional_headers=headers, proxy=None, **options) as ws:
        yield Client(ws)


@asynccontextmanager
async def unit_client(
    gw: PushGateway, who: Caller, last_acked_seq: int | None = 0, **options: Any
) -> AsyncIterator[tuple[Client, ResumeFrame]]:
    """Connect as a unit, say hello, and return the client and the gateway's resume frame."""
    async with client(gw, who.secret, **options) as c:
        welcome = await c.expect(WelcomeFrame)
        assert (welcome.channel, welcome.unit_id) == ("unit", who.unit)
        hello: dict[str, Any] = {"type": "hello"}
        if last_acked_seq is not None:
            hello["last_acked_seq"] = last_acked_seq
        await c.send(**hello)
        yield c, await c.expect(ResumeFrame)


async def outbox(pool: asyncpg.Pool, unit_id: str) -> list[asyncpg.Record]:
    """Return a unit's outbox rows in seq order."""
    return await pool.fetch(
        "SELECT seq, assignment_id, kind, delivered_at, acked_at FROM unit_outbox "
        "WHERE unit_id = $1 ORDER BY seq",
        unit_id,
    )


def ids(jobs: list[JobFrame]) -> list[uuid.UUID]:
    return [job.assignment.assignment_id for job in jobs]


def seqs(jobs: list[JobFrame]) -> list[int]:
    return [job.seq for job in jobs]


# -- delivery, acknowledgement, resume ----------------------------------------------------------


async def test_jobs_reach_their_unit_in_order_numbered_from_one(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    other = await make_caller(pool, Role.GUARD)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        unit_client(gw, unit) as (c, resume),
    ):
        assert (resume.after_seq, resume.last_seq) == (0, 0)
        kinds = [AssignmentKind.ASSIGNMENT, AssignmentKind.MUTUAL_AID_ALERT] * 3
        sent = [job_for(unit.unit, kind) for kind in kinds[:5]]
        await produce(producer, topics.assignments, job_for(other.unit), *sent)
        jobs = await c.jobs(5)
        assert seqs(jobs) == [1, 2, 3, 4, 5]
        assert [job.assignment for job in jobs] == sent
        await c.nothing_more()
    rows = await outbox(pool, unit.unit)
    assert [(r["seq"], r["assignment_id"], r["kind"]) for r in rows] == [
        (i + 1, a.assignment_id, a.kind.value) for i, a in enumerate(sent)
    ]
    assert [r["seq"] for r in await outbox(pool, other.unit)] == [1]


async def test_an_ack_stamps_delivery_and_publishes_the_ack_event_once(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    sent = [job_for(unit.unit) for _ in range(3)]
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        unit_client(gw, unit) as (c, _),
    ):
        await produce(producer, topics.assignments, *sent)
        await c.jobs(3)
        await c.send(type="ack", seq=5, ref="too-far")
        refused = await c.expect(ErrorFrame)
        assert (refused.code, refused.ref) == (ErrorCode.ACK_AHEAD, "too-far")
        await c.send(type="ack", seq=2)

        async def two_stamped() -> bool:
            return [r["acked_at"] is not None for r in await outbox(pool, unit.unit)] == [
                True,
                True,
                False,
            ]

        await eventually(two_stamped)
        first = await outbox(pool, unit.unit)
        await c.send(type="ack", seq=2)  # again: changes and publishes nothing
        await c.send(type="ack", seq=3)
        await eventually(lambda: stamped(pool, unit.unit, 3))
        rows = await outbox(pool, unit.unit)
    assert [r["delivered_at"] for r in rows[:2]] == [r["delivered_at"] for r in first[:2]]
    assert all(r["delivered_at"] == r["acked_at"] for r in rows)
    # Every ack event is published before its job is stamped: all of them are on the topic.
    published = await read_all(bootstrap, topics.responses, ResponseEvent)
    events = {e.assignment_id: e for e in published}
    assert len(published) == len(events) == 3  # the repeated ack published nothing
    acked_at = {r["assignment_id"]: r["acked_at"] for r in rows}
    for job in sent:
        event = events[job.assignment_id]
        assert (event.action, event.occurred_at) == (
            ResponseAction.ACK,
            acked_at[job.assignment_id],
        )
        assert event.event_id == response_event_id(job.assignment_id, ResponseAction.ACK)
        assert (event.incident_id, event.unit_id, event.actor) == (
            job.incident_id,
            unit.unit,
            unit.id,
        )
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"incident:{sent[0].incident_id}")
    assert [(e.action, e.actor) for e in entries] == [("assignment.ack", unit.id)]


async def stamped(pool: asyncpg.Pool, unit_id: str, count: int) -> bool:
    """Tell whether the unit's first count jobs are acknowledged."""
    rows = await outbox(pool, unit_id)
    return sum(r["acked_at"] is not None for r in rows) == count


async def test_a_unit_that_reconnects_misses_nothing_and_gets_nothing_twice(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    sent = [job_for(unit.unit) for _ in range(12)]
    shown: list[JobFrame] = []  # what the device shows: each seq once, in order
    async with gateway(running_stack, pool, topics, group_id) as gw:
        async with unit_client(gw, unit) as (c, _):
            await produce(producer, topics.assignments, *sent[:6])
            shown += await c.jobs(4)
            await c.send(type="ack", seq=4)
            # Gone mid-stream: jobs 5 and 6 may be on the wire, unacknowledged.
        await produce(producer, topics.assignments, *sent[6:10])
        await eventually(lambda: count_rows(pool, unit.unit, 10))
        async with unit_client(gw, unit, last_acked_seq=4) as (c, resume):
            assert (resume.after_seq, resume.last_seq) == (4, 10)
            shown += await c.jobs(6)
            await produce(producer, topics.assignments, sent[10])
            shown += await c.jobs(1)
            await c.send(type="ack", seq=11)
            await eventually(lambda: stamped(pool, unit.unit, 11))
        # A client that lost its own record resumes from what the gateway recorded.
        async with unit_client(gw, unit, last_acked_seq=None) as (c, resume):
            assert (resume.after_seq, resume.last_seq) == (11, 11)
            await produce(producer, topics.assignments, sent[11])
            shown += await c.jobs(1)
            await c.nothing_more()
    assert seqs(shown) == list(range(1, 13))
    assert ids(shown) == [a.assignment_id for a in sent]


async def count_rows(pool: asyncpg.Pool, unit_id: str, count: int) -> bool:
    """Tell whether the unit's outbox holds count rows."""
    return len(await outbox(pool, unit_id)) == count


async def test_a_gateway_restart_loses_nothing_and_a_replay_repeats_nothing(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.GUARD)
    sent = [job_for(unit.unit) for _ in range(8)]
    async with (
        gateway(running_stack, pool, topics, group_id) as first,
        unit_client(first, unit) as (c, _),
    ):
        await produce(producer, topics.assignments, *sent[:3])
        shown = await c.jobs(3)
        await c.send(type="ack", seq=2)
        await eventually(lambda: stamped(pool, unit.unit, 2))
        await first.stop()
        with pytest.raises(ConnectionClosed) as closed:
            await c.frame()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    # Dispatched while no gateway runs; and the first three replayed, as after a crash.
    await produce(producer, topics.assignments, *sent[3:7], *sent[:3])
    # A new consumer group has no committed offsets: it replays the whole topic, which must
    # change nothing that the first gateway stored.
    async with (
        gateway(running_stack, pool, topics, f"{group_id}-again") as second,
        unit_client(second, unit, last_acked_seq=2) as (c, resume),
    ):
        assert resume.after_seq == 2
        resumed = await c.jobs(5)
        await produce(producer, topics.assignments, sent[7])
        resumed += await c.jobs(1)
        await c.nothing_more()
    assert seqs(shown[:2] + resumed) == list(range(1, 9))
    assert ids(shown[:2] + resumed) == [a.assignment_id for a in sent]
    rows = await outbox(pool, unit.unit)
    assert [(r["seq"], r["assignment_id"]) for r in rows] == [
        (i + 1, a.assignment_id) for i, a in enumerate(sent)
    ]


# -- answers, positions, roles ------------------------------------------------------------------


async def test_a_unit_answers_its_own_jobs_and_no_other_units(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    owner = await make_caller(pool, Role.PATROL)
    intruder = await make_caller(pool, Role.PATROL)
    job = job_for(owner.unit)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        unit_client(gw, owner) as (mine, _),
        unit_client(gw, intruder) as (theirs, _),
    ):
        await produce(producer, topics.assignments, job)
        assert ids(await mine.jobs(1)) == [job.assignment_id]
        for reference in ({"assignment_id": job.assignment_id}, {"seq": 1}):
            await theirs.send(type="respond", action="accept", ref="steal", **reference)
            refused = await theirs.expect(ErrorFrame)
            assert (refused.code, refused.ref) == (ErrorCode.UNKNOWN_ASSIGNMENT, "steal")
        await mine.send(type="respond", seq=1, action="decline", ref="d")
        bad = await mine.expect(ErrorFrame)
        assert (bad.code, bad.ref) == (ErrorCode.BAD_FRAME, "d")
        assert [e.field for e in bad.errors] == ["reason"]
        accept_id = response_event_id(job.assignment_id, ResponseAction.ACCEPT)
        for _ in range(2):  # sent twice: the same event
            await mine.send(type="respond", seq=1, action="accept", ref="a")
            ok = await mine.expect(OkFrame)
            assert (ok.of, ok.ref, ok.event_id) == ("respond", "a", accept_id)
        await mine.send(type="respond", assignment_id=job.assignment_id, action="en_route")
        en_route = await mine.expect(OkFrame)
    events = await read_all(bootstrap, topics.responses, ResponseEvent)
    # Nothing of the intruder's: every event on the topic is the owner's.
    assert {(e.unit_id, e.actor) for e in events} == {(owner.unit, owner.id)}
    # The resend found its answer recorded and on Kafka already: published and audited once.
    assert [(e.event_id, e.action) for e in events] == [
        (accept_id, ResponseAction.ACCEPT),
        (en_route.event_id, ResponseAction.EN_ROUTE),
    ]
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"incident:{job.incident_id}")
    assert [(e.action, e.actor, e.detail["action"]) for e in entries] == [
        ("assignment.respond", owner.id, "accept"),
        ("assignment.respond", owner.id, "en_route"),
    ]


async def test_position_reports_reach_units_status_and_the_commander_within_the_rate(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.UNIT)
    commander = await make_caller(pool, Role.COMMANDER)
    async with (
        gateway(running_stack, pool, topics, group_id, rate_limit_per_minute=3) as gw,
        client(gw, commander.secret) as board,
        unit_client(gw, unit) as (c, _),
    ):
        assert (await board.expect(WelcomeFrame)).channel == "commander"
        oks = []
        for status, ref in (("available", "p1"), ("busy", "p2"), ("busy", "p3")):
            await c.send(
                type="position", lat=31.69, lon=113.38, accuracy_m=8, status=status, ref=ref
            )
            oks.append(await c.expect(OkFrame))
        assert [(ok.of, ok.ref) for ok in oks] == [("position", f"p{i}") for i in (1, 2, 3)]
        await c.send(type="position", lat=31.69, lon=113.38, status="busy", ref="p4")
        limited = await c.expect(ErrorFrame)
        assert (limited.code, limited.ref) == (ErrorCode.RATE_LIMITED, "p4")
        assert (limited.retry_after_s or 0) > 0
        seen = [await board.expect(UnitStatusFrame) for _ in range(3)]
        assert [s.status.event_id for s in seen] == [ok.event_id for ok in oks]
    reports = await read_all(bootstrap, topics.units_status, UnitStatus)
    assert [r.event_id for r in reports] == [ok.event_id for ok in oks]
    first = reports[0]
    assert (first.unit_id, first.status, first.position) == (
        unit.unit,
        "available",
        Position(lat=31.69, lon=113.38, accuracy_m=8),
    )
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"unit:{unit.unit}")
    # A move is telemetry; only the changes of availability are audited.
    assert [(e.action, e.actor, e.detail["status"]) for e in entries] == [
        ("unit.status", unit.id, "available"),
        ("unit.status", unit.id, "busy"),
    ]


async def test_unknown_revoked_and_channel_less_principals_are_refused(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    revoked = await make_caller(pool, Role.PATROL)
    sensor = await make_caller(pool, Role.SENSOR)
    admin = await make_caller(pool, Role.ADMIN)
    async with connection(pool) as conn:
        await revoke_token(conn, token_id=revoked.token_id, actor=ACTOR)
    async with gateway(running_stack, pool, topics, group_id) as gw:
        for header, status in (
            ("Bearer dsp_unknown", 401),
            (f"Bearer {revoked.secret}", 401),
            (f"Basic {unit.secret}", 401),
            (f"Bearer {sensor.secret}", 403),
            (f"Bearer {admin.secret}", 403),
        ):
            with pytest.raises(InvalidStatus) as refused:
                await connect(url(gw), additional_headers={"Authorization": header}, proxy=None)
            assert refused.value.response.status_code == status, header
        # Without a header the first frame must authenticate.
        for first in ({"type": "hello"}, {"type": "auth", "token": revoked.secret}):
            async with client(gw, None) as c:
                await c.send(**first)
                assert (await c.expect(ErrorFrame)).code == ErrorCode.UNAUTHORIZED
                with pytest.raises(ConnectionClosed) as closed:
                    await c.frame()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == PushClose.UNAUTHORIZED
        async with client(gw, None) as c:
            await c.send(type="auth", token=unit.secret)
            assert (await c.expect(WelcomeFrame)).unit_id == unit.unit
            await c.send(type="hello", last_acked_seq=0)
            assert await c.expect(ResumeFrame) == ResumeFrame(after_seq=0, last_seq=0)


# -- slow clients -------------------------------------------------------------------------------


def cramped_socket(port: int) -> socket.socket:
    """Return a socket connected to port with the smallest receive buffer the kernel allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_slow_client_is_dropped_while_the_others_keep_receiving(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    slow = await make_caller(pool, Role.PATROL)
    fast = await make_caller(pool, Role.PATROL)
    bulky = "大" * 200  # 600 bytes of summary per job: the slow client's buffers fill sooner
    slow_jobs = [job_for(slow.unit, summary=bulky) for _ in range(400)]
    fast_jobs = [job_for(fast.unit) for _ in range(40)]
    async with gateway(running_stack, pool, topics, group_id, push_queue_limit=4) as gw:
        # The slow client stops reading after its hello; the library stops reading the socket
        # once one frame waits (max_queue=1), so the gateway's writes back up.
        async with (
            unit_client(
                gw, slow, sock=cramped_socket(gw.port), max_queue=1, ping_interval=None
            ) as (stuck, _),
            unit_client(gw, fast) as (c, _),
        ):
            mixed = [j for pair in zip(slow_jobs[::10], fast_jobs, strict=True) for j in pair]
            rest = [j for i, j in enumerate(slow_jobs) if i % 10]
            await produce(producer, topics.assignments, *mixed, *rest)
            assert ids(await c.jobs(40)) == [a.assignment_id for a in fast_jobs]

            # Its socket is full now; jobs keep coming for it until it is dropped.
            async def dropped() -> bool:
                slow_jobs.append(job_for(slow.unit))
                await produce(producer, topics.assignments, slow_jobs[-1])
                await asyncio.sleep(0.1)
                return gw.hub.drops[PushClose.TOO_SLOW] == 1

            await eventually(dropped)
            got = await jobs_until_closed(stuck)
            assert 0 < len(got) < len(slow_jobs)
            assert seqs(got) == list(range(1, len(got) + 1))
            # The others were not held up: the fast client still gets its jobs at once.
            late = job_for(fast.unit)
            await produce(producer, topics.assignments, late)
            assert ids(await c.jobs(1)) == [late.assignment_id]
        await eventually(lambda: count_rows(pool, slow.unit, len(slow_jobs)))
        # It reconnects and resumes from what it has.
        async with unit_client(gw, slow, last_acked_seq=len(got)) as (again, resume):
            assert (resume.after_seq, resume.last_seq) == (len(got), len(slow_jobs))
            got += await again.jobs(len(slow_jobs) - len(got))
    assert seqs(got) == list(range(1, len(slow_jobs) + 1))
    assert sorted(ids(got)) == sorted(a.assignment_id for a in slow_jobs)


async def jobs_until_closed(c: Client) -> list[JobFrame]:
    """Read jobs until the connection closes; return them."""
    got: list[JobFrame] = []
    try:
        while True:
            got.append(await c.expect(JobFrame))
    except ConnectionClosed:
        return got


# -- boards -------------------------------------------------------------------------------------


def change_at(enterprise_id: str | None) -> IncidentStateChange:
    """Return a dispatched state change of a fresh incident at an enterprise (or none)."""
    now = datetime.now(UTC)
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        state=IncidentState.DISPATCHED,
        actor="system",
        at=now,
        priority=Priority.P2,
        category=Category.THEFT,
        enterprise_id=enterprise_id,
        timing=IncidentTiming(received_at=now, dispatched_at=now),
    )


ONE_PARTITION = b"board-test"


async def test_a_desk_sees_its_own_enterprise_and_the_commander_sees_everything(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    ent_a, ent_b = f"ent-a-{uuid.uuid4().hex[:8]}", f"ent-b-{uuid.uuid4().hex[:8]}"
    desk_a = await make_caller(pool, Role.DESK, enterprise_id=ent_a)
    desk_b = await make_caller(pool, Role.DESK, enterprise_id=ent_b)
    commander = await make_caller(pool, Role.COMMANDER)
    # The last change of each enterprise marks the end of what its desk may see.
    changes = [change_at(ent_a), change_at(ent_b), change_at(None), change_at(ent_a)]
    changes += [change_at(ent_b), change_at(ent_a)]
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        client(gw, desk_a.secret) as a,
        client(gw, desk_b.secret) as b,
        client(gw, commander.secret) as cmd,
    ):
        welcomes = [await c.expect(WelcomeFrame) for c in (a, b, cmd)]
        assert [(w.channel, w.enterprise_id) for w in welcomes] == [
            ("desk", ent_a),
            ("desk", ent_b),
            ("commander", None),
        ]
        # On one partition the feed reads them in this order and fans each out to every
        # board before the next, so a change a desk should not see would come before its
        # enterprise's last one: no waiting for "nothing" is needed.
        await produce(producer, topics.incidents_state, *changes, key=ONE_PARTITION)
        assert [(await cmd.expect(IncidentFrame)).change for _ in changes] == changes
        assert [(await a.expect(IncidentFrame)).change for _ in range(3)] == [
            changes[0],
            changes[3],
            changes[5],
        ]
        assert [(await b.expect(IncidentFrame)).change for _ in range(2)] == [
            changes[1],
            changes[4],
        ]
        for frame in (command("cancel", changes[0].incident_id), {"type": "hello"}):
            await a.send(**frame)
            assert (await a.expect(ErrorFrame)).code == ErrorCode.WRONG_CHANNEL


# -- commander commands -------------------------------------------------------------------------


def command(action: str, incident_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """Return a command frame with a fresh command id."""
    return {
        "type": "command",
        "command_id": uuid.uuid4(),
        "action": action,
        "incident_id": incident_id,
        **fields,
    }


async def test_a_commanders_command_is_published_audited_and_then_answered(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    group_id: str,
) -> None:
    commander = await make_caller(pool, Role.COMMANDER)
    desk = await make_caller(pool, Role.DESK, enterprise_id=enterprise())
    unit = await make_caller(pool, Role.PATROL)
    incident = uuid.uuid4()
    reassign = command(
        "reassign", incident, unit_id="patrol-xihe-2", from_unit_id="patrol-cd-1", ref="c-1"
    )
    cancel = command("cancel", incident, reason="false alarm", ref="c-2")
    async with (
        gateway(running_stack, pool, topics, group_id, rate_limit_per_minute=3) as gw,
        client(gw, commander.secret) as cmd,
        client(gw, desk.secret) as board,
        unit_client(gw, unit) as (handheld, _),
    ):
        assert (await cmd.expect(WelcomeFrame)).channel == "commander"
        assert (await board.expect(WelcomeFrame)).channel == "desk"
        reassign_id = command_event_id(commander.id, reassign["command_id"])
        for _ in range(2):  # sent twice (a lost ok): the same event
            await cmd.send(**reassign)
            ok = await cmd.expect(OkFrame)
            assert (ok.of, ok.ref, ok.event_id) == ("command", "c-1", reassign_id)
        # Refused before it counts against the rate or reaches Kafka, naming the field.
        await cmd.send(**command("reassign", incident, unit_id="patrol-xihe-2", ref="bad"))
        bad = await cmd.expect(ErrorFrame)
        assert (bad.code, bad.ref, [e.field for e in bad.errors]) == (
            ErrorCode.BAD_FRAME,
            "bad",
            ["from_unit_id"],
        )
        await cmd.send(**command("close", incident, command_id="c-3", ref="c-3"))
        assert [e.field for e in (await cmd.expect(ErrorFrame)).errors] == ["command_id"]
        await cmd.send(**cancel)
        cancelled = await cmd.expect(OkFrame)
        # Commands count against the principal's rate like every other message.
        await cmd.send(**command("close", incident, ref="c-4"))
        limited = await cmd.expect(ErrorFrame)
        assert (limited.code, limited.ref) == (ErrorCode.RATE_LIMITED, "c-4")
        # Nobody else may command, whatever the frame says.
        for other in (board, handheld):
            await other.send(**command("cancel", incident, ref="not-mine"))
            refused = await other.expect(ErrorFrame)
            assert (refused.code, refused.ref) == (ErrorCode.WRONG_CHANNEL, "not-mine")
    # The resend found its command recorded and on Kafka already: nothing twice.
    published = await read_keyed(bootstrap, topics.commands, CommanderCommand)
    assert [(key, c.event_id, c.action) for key, c in published] == [
        (str(incident).encode(), reassign_id, CommanderAction.REASSIGN),
        (str(incident).encode(), cancelled.event_id, CommanderAction.CANCEL),
    ]
    assert {c.actor for _, c in published} == {commander.id}
    first = published[0][1]
    assert (first.unit_id, first.from_unit_id) == ("patrol-xihe-2", "patrol-cd-1")
    assert published[1][1].reason == "false alarm"
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"incident:{incident}")
    assert [(e.action, e.actor, e.detail["event_id"]) for e in entries] == [
        ("incident.reassign", commander.id, str(reassign_id)),
        ("incident.cancel", commander.id, str(cancelled.event_id)),
    ]
    assert entries[0].detail["command_id"] == str(reassign["command_id"])


@contextmanager
def frozen_broker(settings: Settings) -> Iterator[None]:
    """Freeze the session's Kafka broker (SIGSTOP): it keeps every connection, answers none."""
    pid = KafkaBroker(settings).pid_file.live_pid()
    assert pid is not None, "the session's broker is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_command_while_kafka_is_down_is_unavailable_and_a_resend_is_the_same_event(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    commander = await make_caller(pool, Role.COMMANDER)
    incident = uuid.uuid4()
    cancel = command("cancel", incident, ref="c-1")
    async with (
        PushGateway(
            running_stack, pool, topics=topics, group_id=group_id, port=0, publish_timeout_s=2.0
        ) as gw,
        client(gw, commander.secret) as cmd,
    ):
        assert (await cmd.expect(WelcomeFrame)).channel == "commander"
        # A frozen broker, not a stopped one: it is the session's, and it must come back as it
        # was. To the gateway both are a Kafka that does not answer.
        with frozen_broker(running_stack):
            await cmd.send(**cancel)
            down = await cmd.expect(ErrorFrame)
        assert (down.code, down.ref) == (ErrorCode.UNAVAILABLE, "c-1")
        # Recorded and audited before it was sent: whatever Kafka did with it, it is on record.
        async with connection(pool) as conn:
            entries = await history(conn, subject=f"incident:{incident}")
        assert [(e.action, e.actor) for e in entries] == [("incident.cancel", commander.id)]

        # The client sends the same frame again until Kafka takes it.
        async with asyncio.timeout(WAIT_S):
            while True:
                await cmd.send(**cancel)
                answer = await cmd.frame()
                if isinstance(answer, OkFrame):
                    break
                assert isinstance(answer, ErrorFrame), answer
                assert answer.code == ErrorCode.UNAVAILABLE
        event_id = command_event_id(commander.id, cancel["command_id"])
        assert (answer.of, answer.ref, answer.event_id) == ("command", "c-1", event_id)
    # The attempt that timed out may have been delivered once Kafka answered, next to the
    # resend: either way one event, which the route stage applies once.
    published = await read_keyed(running_stack.bootstrap_servers, topics.commands, CommanderCommand)
    assert {c.event_id for _, c in published} == {event_id}
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"incident:{incident}")
    assert [(e.action, e.actor) for e in entries] == [("incident.cancel", commander.id)]
