"""Sessions, the hub's fan-out and the rate limiter, with a stand-in socket (no network)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import cast

from websockets.asyncio.server import ServerConnection

from consumers.auth import Principal, Role
from consumers.push.protocol import Channel, PushClose
from consumers.push.sessions import Hub, RateLimiter, Session, UnitSession
from consumers.push.store import OutboxRow
from dispatch.events import (
    Category,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Priority,
    UnitAvailability,
    UnitStatus,
)

NOW = datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC)


class Socket:
    """Stands in for a connection: records what is sent; `open` lets sends through."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.open = asyncio.Event()
        self.open.set()

    async def send(self, text: str) -> None:
        await self.open.wait()
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def connection(sock: Socket) -> ServerConnection:
    # The sessions use send() and close() only; the stand-in has both.
    return cast(ServerConnection, sock)


COMMANDER = Principal(id="cmd", role=Role.COMMANDER, name="Commander")
DESK_A = Principal(id="desk-a", role=Role.DESK, enterprise_id="ent-a", name="Desk A")
PATROL = Principal(id="patrol-1", role=Role.PATROL, unit_id="p-1", name="Patrol 1")


def board(
    hub: Hub, principal: Principal, channel: Channel, limit: int = 8
) -> tuple[Session, Socket]:
    sock = Socket()
    session = Session(connection(sock), principal, channel, queue_limit=limit, on_drop=hub.on_drop)
    hub.add(session)
    return session, sock


def change(enterprise_id: str | None) -> IncidentStateChange:
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        state=IncidentState.ACCEPTED,
        actor="system",
        at=NOW,
        priority=Priority.P3,
        category=Category.DISPUTE,
        enterprise_id=enterprise_id,
        timing=IncidentTiming(received_at=NOW),
    )


def row(seq: int) -> OutboxRow:
    return OutboxRow("p-1", seq, uuid.uuid4(), uuid.uuid4(), json.dumps({"n": seq}))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


# -- rate limiter -------------------------------------------------------------------------------


def test_the_rate_limiter_allows_a_burst_then_refills_over_the_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])
    assert [limiter.take("p") for _ in range(6)] == [None] * 6
    assert limiter.take("p") == 10.0  # one token every 10 s
    assert limiter.take("other") is None  # per key
    now[0] = 10.0
    assert limiter.blocked("p") is None
    assert limiter.take("p") is None
    assert limiter.blocked("p") == 10.0


# -- fan-out to boards --------------------------------------------------------------------------


async def test_a_desk_gets_its_own_enterprises_incidents_and_the_commander_everything() -> None:
    hub = Hub()
    cmd, cmd_sock = board(hub, COMMANDER, Channel.COMMANDER)
    desk, desk_sock = board(hub, DESK_A, Channel.DESK)
    writers = [asyncio.create_task(s.run_writer()) for s in (cmd, desk)]
    own, other, nowhere = change("ent-a"), change("ent-b"), change(None)
    for each in (own, other, nowhere):
        hub.publish_incident(each)
    hub.publish_unit_status(
        UnitStatus(
            event_id=uuid.uuid4(), unit_id="p-1", status=UnitAvailability.BUSY, reported_at=NOW
        )
    )
    await settle()
    for writer in writers:
        writer.cancel()
    sent_to_desk = [json.loads(text)["change"]["event_id"] for text in desk_sock.sent]
    assert sent_to_desk == [str(own.event_id)]
    assert [json.loads(text)["type"] for text in cmd_sock.sent] == ["incident"] * 3 + [
        "unit_status"
    ]


# -- slow clients -------------------------------------------------------------------------------


async def test_a_client_whose_socket_stalls_is_dropped_once_its_queue_is_full() -> None:
    hub = Hub()
    slow, sock = board(hub, COMMANDER, Channel.COMMANDER, limit=2)
    sock.open.clear()  # the socket takes nothing
    writer = asyncio.create_task(slow.run_writer())
    slow.offer_text("1")
    await settle()  # the writer now waits in its send
    slow.offer_text("2")
    slow.offer_text("3")
    assert not slow.dropped
    slow.offer_text("4")
    assert slow.dropped
    assert hub.connections == 0
    assert hub.drops == {PushClose.TOO_SLOW: 1}
    await slow.finish()
    assert sock.closed is not None
    assert sock.closed[0] == PushClose.TOO_SLOW
    writer.cancel()


async def test_a_burst_beyond_the_limit_drops_no_client_that_reads() -> None:
    hub = Hub()
    session, sock = board(hub, COMMANDER, Channel.COMMANDER, limit=2)
    writer = asyncio.create_task(session.run_writer())
    for n in range(10):
        session.offer_text(str(n))
    await settle()
    writer.cancel()
    assert not session.dropped
    assert sock.sent == [str(n) for n in range(10)]


async def test_a_unit_session_reads_a_burst_and_any_gap_from_the_outbox_in_order() -> None:
    stored = [row(seq) for seq in range(1, 13)]
    reads: list[int] = []

    async def fetch_after(unit_id: str, after_seq: int, limit: int) -> list[OutboxRow]:
        reads.append(after_seq)
        return [r for r in stored if r.seq > after_seq][:limit]

    hub = Hub()
    sock = Socket()
    session = UnitSession(
        connection(sock),
        PATROL,
        unit_id="p-1",
        after_seq=12,
        fetch_after=fetch_after,
        queue_limit=2,
        on_drop=hub.on_drop,
    )
    writer = asyncio.create_task(session.run_writer())
    await settle()
    assert (sock.sent, reads) == ([], [12])  # resumed after everything stored
    session.last_sent = 0  # as if it had resumed from the start; now a burst arrives
    stored.append(row(13))
    for r in stored:
        session.offer_row(r)  # two are queued, the rest become one wake-up
    await settle()
    writer.cancel()
    assert [json.loads(text)["seq"] for text in sock.sent] == list(range(1, 14))
    assert not session.dropped
