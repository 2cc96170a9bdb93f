"""The route stage's view of every unit: zone profiles plus the latest `units.status` report.

Every route worker reads all partitions of the compacted `units.status` topic from the start
(no consumer group), so each one knows every unit, whichever incidents it owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumers.kafka_client import kafka_options
from dispatch.events import InvalidEvent, UnitAvailability, UnitStatus, decode
from dispatch.routing import UnitIndex, UnitRecord
from dispatch.zone import Unit, Zone

DeadLetterSink = Callable[[ConsumerRecord[bytes, bytes], str], Awaitable[None]]


def record_from_zone(unit: Unit) -> UnitRecord:
    """Return a unit's routing profile; it is off duty until it reports in."""
    return UnitRecord(
        unit_id=unit.id,
        kind=str(unit.kind),
        capabilities=frozenset(unit.capabilities),
        speed_kmh=unit.speed_kmh,
        home_grid_id=unit.home_grid_id,
        home_place_id=unit.home_place_id,
    )


class UnitBoard:
    """Keep the unit index current, and hold units this worker has just assigned."""

    def __init__(self, zone: Zone) -> None:
        self.index = UnitIndex()
        for unit in zone.units:
            self.index.upsert(record_from_zone(unit))
        # unit id -> when this worker assigned it; older reports must not free it again.
        self._reserved: dict[str, datetime] = {}
        self.ready = asyncio.Event()
        self.applied = 0
        self._progress = asyncio.Condition()

    def apply(self, status: UnitStatus) -> bool:
        """Apply one report; return False for a unit the zone does not know.

        A presence record (the unit is connected) changes no availability: it cannot free a
        unit this worker just assigned nor put an off-duty unit on duty. A fix keeps its own
        time (position_at), however late it is repeated.
        """
        record = self.index.get(status.unit_id)
        if record is None:
            return False
        if status.presence:
            # The unit is connected: heard from now, a newer fix moves it, and its
            # availability stays as it is (UnitRecord.with_status).
            self.index.upsert(record.with_status(status))
            self.applied += 1
            return True
        reserved_at = self._reserved.get(status.unit_id)
        if reserved_at is not None:
            if status.reported_at < reserved_at and status.status is UnitAvailability.AVAILABLE:
                # Written before our assignment reached the unit: keep the position only.
                status = status.model_copy(update={"status": UnitAvailability.ASSIGNED})
            else:
                del self._reserved[status.unit_id]
        self.index.upsert(record.with_status(status))
        self.applied += 1
        return True

    def reserve(self, unit_id: str, at: datetime) -> None:
        """Mark a unit assigned at once, before its status report comes back around."""
        record = self.index.get(unit_id)
        if record is None:
            return
        self._reserved[unit_id] = at
        self.index.upsert(_with_availability(record, UnitAvailability.ASSIGNED))

    async def follow(
        self, bootstrap: str, topic: str, dead_letter: DeadLetterSink, stop: asyncio.Event
    ) -> None:
        """Read every partition of topic from the start; set `ready` once caught up."""
        tps = [TopicPartition(topic, p) for p in await _partitions(bootstrap, topic)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
            **kafka_options(),
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        await self._consume(record, dead_letter)
                if not self.ready.is_set() and await _caught_up(consumer, ends):
                    self.ready.set()
        finally:
            await consumer.stop()

    async def wait_for_reports(self, count: int) -> None:
        """Wait until at least count reports have been applied (tests and start-up checks)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.applied >= count)

    async def _consume(
        self, record: ConsumerRecord[bytes, bytes], dead_letter: DeadLetterSink
    ) -> None:
        try:
            status = decode(UnitStatus, record.value or b"")
        except InvalidEvent as exc:
            await dead_letter(record, str(exc))
            return
        if not self.apply(status):
            await dead_letter(record, f"unit {status.unit_id} is not in the zone")
            return
        async with self._progress:
            self._progress.notify_all()


def _with_availability(record: UnitRecord, availability: UnitAvailability) -> UnitRecord:
    return replace(record, availability=availability)


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for p in described["partitions"])
    if not partitions:
        raise RuntimeError(f"topic {topic} does not exist; run `dispatch run` to declare it")
    return partitions


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
