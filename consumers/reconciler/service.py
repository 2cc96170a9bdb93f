"""The promise checks itself: every alarm on alarms.raw gets a decision on incidents.state.

`Reconciler` reads both topics (its own consumer group) into the ledger tables, committing its
offsets only after its rows. Every `every_s` it looks, once it has caught up with both topics,
for alarms received more than `bound_s` ago that no change of the pipeline names: each is
published again to alarms.raw (once: the stages skip what they already took) and shown to the
commander as an `escalated` change of its own incident, again every `report_every_s` while it
stays undecided. docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from consumers import metrics
from consumers.db.faults import DATABASE_DOWN, describe_fault, is_record_fault
from consumers.db.pool import connection
from consumers.kafka_client import kafka_options
from consumers.kafka_producer import RecoveringProducer
from consumers.reconciler import ledger
from consumers.reconciler.ledger import Decision, SeenAlarm
from consumers.reconciler.overdue import overdue_change
from consumers.until_stopped import stop_part
from dispatch.classify import Rules
from dispatch.events import (
    ALARMS_RAW,
    INCIDENTS_STATE,
    IncidentStateChange,
    InvalidEvent,
    RawAlarm,
    decode,
    encode,
    key_of,
)
from dispatch.zone import Zone

log = logging.getLogger(__name__)
T = TypeVar("T")

GROUP_ID = "alarm-dispatch-reconciler"
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0
# Overdue alarms handled per look: a backlog is worked off over several looks, not at once.
_PER_LOOK = 200
# The counts it logs cover the alarms of the last day.
_COUNT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Timing:
    """How long an alarm may wait for a decision, how often to look, how often to remind."""

    bound_s: float = 30.0
    every_s: float = 5.0
    report_every_s: float = 300.0


@dataclass
class Status:
    """What the reconciler last found, for its readiness probe and its log."""

    caught_up: bool = False
    looks: int = 0
    republished: int = 0
    reported: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    last_look_at: float | None = None


class Reconciler:
    """Keep the ledger of alarms and decisions; publish again and report what is overdue."""

    def __init__(
        self,
        *,
        bootstrap: str,
        pool: asyncpg.Pool,
        producer: RecoveringProducer,
        zone: Zone,
        rules: Rules,
        prefix: str = "",
        group_id: str = GROUP_ID,
        timing: Timing | None = None,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._zone = zone
        self._rules = rules
        self._raw_topic = prefix + ALARMS_RAW.name
        self._state_topic = prefix + INCIDENTS_STATE.name
        self.timing = timing or Timing()
        self.status = Status()
        self._looked = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            self._raw_topic,
            self._state_topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
            **kafka_options(),
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Join the group and start reading and looking."""
        await self._consumer.start()
        self._tasks = [
            asyncio.create_task(self._read(), name="reconciler-read"),
            asyncio.create_task(self._look_regularly(), name="reconciler-look"),
        ]

    async def stop(self) -> None:
        """Stop reading and looking, leave the group."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await stop_part(self._consumer.stop(), what="the reconciler's consumer")

    async def wait_for_looks(self, count: int) -> None:
        """Wait until the reconciler has looked at least count times (tests, start-up)."""
        async with self._looked:
            await self._looked.wait_for(lambda: self.status.looks >= count)

    def status_body(self) -> dict[str, Any]:
        """Return what the reconciler found last, for its probe."""
        return {
            "caught_up": self.status.caught_up,
            "looks": self.status.looks,
            "republished": self.status.republished,
            "reported": self.status.reported,
            "last_day": self.status.counts,
        }

    async def wait_failed(self) -> BaseException:
        """Wait until a task of the reconciler ends (only a bug ends one); return why."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        task = next(iter(done))
        return (None if task.cancelled() else task.exception()) or RuntimeError("ended")

    # -- reading ---------------------------------------------------------------------------

    async def _read(self) -> None:
        while not self._stopping.is_set():
            batch = await self._consumer.getmany(timeout_ms=200)
            if batch:
                await self._store(batch)
            self.status.caught_up = await self._caught_up()

    async def _store(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]
    ) -> None:
        alarms: list[SeenAlarm] = []
        decisions: list[Decision] = []
        for tp, records in batch.items():
            for record in records:
                if tp.topic == self._raw_topic:
                    alarms.extend(seen_alarms(record))
                else:
                    decisions.extend(decisions_in(record))
        await self._retry(lambda: self._record(alarms, decisions))
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # Read again after the rebalance or restart; recording them again changes nothing.
            log.warning("reconciler offsets not committed (%r)", exc)

    async def _record(self, alarms: list[SeenAlarm], decisions: list[Decision]) -> None:
        async with connection(self._pool) as conn:
            try:
                await ledger.record(conn, alarms, decisions)
            except DATABASE_DOWN as exc:
                if not is_record_fault(exc):
                    raise
                # One row PostgreSQL refuses must not hold the rest: one by one, skip it.
                why = describe_fault(exc)
                log.error("ledger refused a batch (%s); storing it row by row", why)
                for alarm in alarms:
                    await _one(conn, [alarm], [])
                for decision in decisions:
                    await _one(conn, [], [decision])

    async def _caught_up(self) -> bool:
        # Every partition read up to its end as of the last fetch: the decisions written
        # before any alarm now overdue have been read.
        assigned = self._consumer.assignment()
        if not assigned:
            return False
        for tp in assigned:
            end = self._consumer.highwater(tp)
            if end is None or await self._consumer.position(tp) < end:
                return False
        return True

    # -- looking ---------------------------------------------------------------------------

    async def _look_regularly(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.timing.every_s)
                return
            except TimeoutError:
                pass
            if not self.status.caught_up:
                continue  # a decision may still be unread: looking now would cry wolf
            try:
                await self.look(datetime.now(UTC))
            except (*DATABASE_DOWN, KafkaError) as exc:
                log.warning(
                    "reconciler could not look now (%r); next look in %.0f s",
                    exc,
                    self.timing.every_s,
                )

    async def look(self, now: datetime) -> list[uuid.UUID]:
        """Publish again and report the alarms overdue at now; return their ids."""
        bound = now - timedelta(seconds=self.timing.bound_s)
        remind = now - timedelta(seconds=self.timing.report_every_s)
        async with connection(self._pool) as conn:
            found = await ledger.overdue(
                conn, received_before=bound, reported_before=remind, limit=_PER_LOOK
            )
        first_time = [o for o in found if not o.republished]
        sent: list[Awaitable[Any]] = []
        for late in found:
            alarm = decode(RawAlarm, late.raw)
            if not late.republished:
                # The same bytes, key and alarm id: a stage that took it already skips it.
                sent.append(await self._send(self._raw_topic, late.raw, key_of(alarm)))
            change = overdue_change(self._zone, self._rules, alarm, reports=late.reports, now=now)
            log.warning(
                "reconciler: alarm %s overdue, shown to the commander%s",
                alarm.alarm_id,
                "" if late.republished else " and published again",
                extra={"alarm_id": str(alarm.alarm_id), "incident_id": str(change.incident_id)},
            )
            sent.append(await self._send(self._state_topic, encode(change), key_of(change)))
        await asyncio.gather(*sent)
        again = [o.alarm_id for o in found if o.republished]
        async with connection(self._pool) as conn:
            if first_time:
                ids = [o.alarm_id for o in first_time]
                await ledger.mark_reported(conn, ids, republished=True, at=now)
            if again:
                await ledger.mark_reported(conn, again, republished=False, at=now)
            since = now - _COUNT_WINDOW
            self.status.counts = await ledger.counts(conn, since=since, received_before=bound)
        self.status.looks += 1
        self.status.republished += len(first_time)
        self.status.reported += len(found)
        # The ledger's count, not this look's page: every undecided alarm past the bound.
        metrics.RECONCILER_OVERDUE.set(self.status.counts.get("overdue", len(found)))
        metrics.RECONCILER_REPORTED.inc(len(found))
        self.status.last_look_at = time.monotonic()
        async with self._looked:
            self._looked.notify_all()
        if found or self.status.looks % 12 == 1:
            log.info(
                "reconciler: %s; overdue now %d (published again %d, reminded %d)",
                ", ".join(f"{k} {v}" for k, v in self.status.counts.items()),
                len(found),
                len(first_time),
                len(found) - len(first_time),
            )
        return [o.alarm_id for o in found]

    async def _send(self, topic: str, value: bytes, key: bytes) -> Awaitable[Any]:
        sent: Awaitable[Any] = await self._producer.send(topic, value, key=key)
        return sent

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        delay = _RETRY_FIRST_S
        while True:
            try:
                return await attempt()
            except DATABASE_DOWN as exc:
                log.warning(
                    "reconciler: ledger unavailable (%s); again in %.1f s",
                    describe_fault(exc),
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)


async def _one(
    conn: asyncpg.Connection, alarms: list[SeenAlarm], decisions: list[Decision]
) -> None:
    try:
        await ledger.record(conn, alarms, decisions)
    except DATABASE_DOWN as exc:
        if not is_record_fault(exc):
            raise
        log.error("ledger refused %s: %s", alarms or decisions, describe_fault(exc))


def seen_alarms(record: ConsumerRecord[Any, Any]) -> list[SeenAlarm]:
    """Return the alarm an alarms.raw record holds (none for one that is not an alarm)."""
    # An invalid raw alarm is the classify stage's to dead-letter; it has no alarm id to wait for.
    try:
        alarm = decode(RawAlarm, record.value or b"")
    except InvalidEvent:
        return []
    return [SeenAlarm(alarm, record.partition, record.offset, record.value)]


def decisions_in(record: ConsumerRecord[Any, Any]) -> list[Decision]:
    """Return what an incidents.state record decides (nothing for one it cannot read)."""
    try:
        change = decode(IncidentStateChange, record.value or b"")
    except InvalidEvent as exc:
        log.warning(
            "reconciler skipped a change it cannot read at %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            exc,
        )
        return []
    decision = ledger.decision_of(change)
    return [decision] if decision is not None else []
