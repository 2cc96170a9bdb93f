"""Presence records of connected units (no network: the records are kept, not sent)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from consumers.push.presence import PresenceBeacon
from consumers.push.sessions import Hub, UnitSession
from consumers.push.store import OutboxRow
from dispatch.events import Position, UnitAvailability, UnitStatus, decode
from tests.unit.consumers.push.test_sessions import NOW, PATROL, Socket, connection

HERE = Position(lat=31.70, lon=113.40, accuracy_m=8.0)
HANG_GUARD_S = 30.0  # a hang guard, not a performance bound


class Sent:
    """Keeps what the beacon would send, as the topic would hold it."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, UnitStatus]] = []
        self._more = asyncio.Condition()

    async def __call__(self, topic: str, value: bytes, key: bytes) -> None:
        self.records.append((topic, key, decode(UnitStatus, value)))
        async with self._more:
            self._more.notify_all()

    async def wait_for(self, count: int) -> None:
        """Wait until at least count records were sent."""
        async with asyncio.timeout(HANG_GUARD_S), self._more:
            await self._more.wait_for(lambda: len(self.records) >= count)


def unit_session(hub: Hub, unit_id: str = "p-1") -> UnitSession:
    async def fetch_after(_unit: str, _after: int, _limit: int) -> list[OutboxRow]:
        return []  # no writer runs here: the outbox is never read

    session = UnitSession(
        connection(Socket()),
        PATROL,
        unit_id=unit_id,
        after_seq=0,
        fetch_after=fetch_after,
        queue_limit=8,
        on_drop=hub.on_drop,
    )
    hub.add(session)
    return session


def reported(unit_id: str, *, ago_s: float, status: UnitAvailability) -> UnitStatus:
    return UnitStatus(
        event_id=uuid.uuid4(),
        unit_id=unit_id,
        status=status,
        position=HERE,
        reported_at=NOW - timedelta(seconds=ago_s),
    )


async def test_a_connected_unit_is_announced_with_its_last_fix_and_that_fixs_time() -> None:
    hub, sent = Hub(), Sent()
    beacon = PresenceBeacon(hub=hub, send=sent, topic="units.status")
    unit_session(hub, "p-1")
    unit_session(hub, "p-2")  # connected, never reported: nothing to repeat yet
    last = reported("p-1", ago_s=400, status=UnitAvailability.ASSIGNED)
    hub.publish_unit_status(last)
    assert await beacon.beat() == 1
    ((topic, key, record),) = sent.records
    assert (topic, key) == ("units.status", b"p-1")
    assert record.presence
    assert (record.status, record.position, record.position_at) == (
        UnitAvailability.ASSIGNED,
        HERE,
        last.reported_at,  # the fix's own time: 400 s old, and says so
    )
    assert record.reported_at > last.reported_at


async def test_a_presence_record_is_not_taken_for_the_units_last_report() -> None:
    hub, sent = Hub(), Sent()
    beacon = PresenceBeacon(hub=hub, send=sent, topic="units.status")
    unit_session(hub, "p-1")
    hub.publish_unit_status(reported("p-1", ago_s=60, status=UnitAvailability.AVAILABLE))
    await beacon.beat()
    # The gateway reads its own presence records back from the topic: they change nothing.
    hub.publish_unit_status(sent.records[0][2])
    last = hub.last_report("p-1")
    assert last is not None
    assert not last.presence


async def test_presence_stops_when_the_unit_disconnects() -> None:
    hub, sent = Hub(), Sent()
    beacon = PresenceBeacon(hub=hub, send=sent, topic="units.status")
    session = unit_session(hub, "p-1")
    hub.publish_unit_status(reported("p-1", ago_s=10, status=UnitAvailability.AVAILABLE))
    assert await beacon.beat() == 1
    hub.remove(session)
    assert await beacon.beat() == 0
    assert len(sent.records) == 1


async def test_a_unit_that_connects_is_an_arrival_announced_at_once() -> None:
    hub = Hub()
    hub.publish_unit_status(reported("p-1", ago_s=10, status=UnitAvailability.AVAILABLE))
    assert not hub.arrival.is_set()
    unit_session(hub, "p-1")
    assert hub.arrival.is_set()
    sent = Sent()
    beacon = PresenceBeacon(hub=hub, send=sent, topic="units.status")
    assert await beacon.beat(hub.take_arrivals()) == 1
    assert not hub.arrival.is_set()
    assert hub.take_arrivals() == set()


async def test_the_beacon_announces_arrivals_at_once_and_everyone_each_interval() -> None:
    hub = Hub()
    hub.publish_unit_status(reported("p-1", ago_s=10, status=UnitAvailability.AVAILABLE))
    hub.publish_unit_status(reported("p-2", ago_s=10, status=UnitAvailability.BUSY))
    unit_session(hub, "p-1")
    sent = Sent()
    # Long enough that the first beat is the arrival's, not the interval's.
    beacon = PresenceBeacon(hub=hub, send=sent, topic="units.status", interval_s=3600)
    await beacon.start()
    try:
        await sent.wait_for(1)
        unit_session(hub, "p-2")  # a second arrival, announced alone
        await sent.wait_for(2)
    finally:
        await beacon.stop()
    assert [record.unit_id for _, _, record in sent.records] == ["p-1", "p-2"]
    every = PresenceBeacon(hub=hub, send=sent, topic="units.status", interval_s=0.001)
    hub.take_arrivals()
    await every.start()
    try:
        await sent.wait_for(4)  # the interval's beat: both connected units
    finally:
        await every.stop()
    assert {record.unit_id for _, _, record in sent.records[2:4]} == {"p-1", "p-2"}
