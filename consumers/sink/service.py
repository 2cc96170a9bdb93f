"""The sink: read the topics (its own consumer group), write the record, then commit.

Two tasks: one reads and validates while the other writes, so Python's decoding and
PostgreSQL's writing overlap on a two-core machine; whatever was read during a write is
written next, in one transaction (group commit), so a busy sink writes bigger batches, not a
queue of them. Offsets are committed only after the batch's transaction: a crash or a restart
reads the batch again, and writing it again changes nothing (every row is keyed by its event's
id). PostgreSQL down: the same batch is tried again, backing off, with no offset committed,
until it is written; a record PostgreSQL refuses for its own data is stored as a dead letter
of stage `sink` (writer.write_or_skip).
docs/record.md.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from consumers.db.faults import DATABASE_DOWN, describe_fault
from consumers.db.pool import connection
from consumers.kafka_client import kafka_options
from consumers.sink import SINK_GROUP
from consumers.sink.reading import catalog_topics, sink_records
from consumers.sink.writer import SinkRecord, WriteResult, write_or_skip
from consumers.until_stopped import stop_part
from dispatch.events import TopicSpec
from dispatch.zone import Zone

log = logging.getLogger(__name__)

GROUP_ID = SINK_GROUP
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0
# One batch's whole write (borrowing a connection, the COPYs and statements, the commit) must
# end within this: a PostgreSQL that stops answering mid-write is a PostgreSQL that is down,
# and the batch is tried again on a fresh connection instead of the sink waiting for ever.
WRITE_DEADLINE_S = 60.0
# Records validated between two turns of the event loop.
_DECODE_SLICE = 250
# What was read while the writer wrote is written next, as one transaction, up to this many
# polls of batch_max records (then the reader waits): a record waits for the write in
# progress and its own, not for a queue of batches read ahead one by one.
_WAITING_MAX_POLLS = 2


def collect_less() -> None:
    """Tune the garbage collector for batches: freeze what start-up made, collect the young
    generation every 50,000 allocations instead of every 700.

    A batch makes tens of thousands of short-lived objects (a pydantic model and its fields
    per event), nearly all freed by reference counting; CPython's default young collection
    every 700 allocations then walked them over and over: a fifth of the sink's CPU for
    validating and sorting a batch (28 against 43 us an event on this machine).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one poll read: its records, the offsets to commit once they are written, and the
    oldest and newest Kafka timestamps among them (milliseconds)."""

    records: list[SinkRecord]
    offsets: dict[TopicPartition, int]
    kafka_records: int
    oldest_ms: int
    newest_ms: int

    def joined(self, later: Batch) -> Batch:
        """Return this batch and a later one as one: their records in order, the later
        offsets, the oldest and newest timestamps of both."""
        return Batch(
            self.records + later.records,
            self.offsets | later.offsets,
            self.kafka_records + later.kafka_records,
            min(self.oldest_ms, later.oldest_ms),
            max(self.newest_ms, later.newest_ms),
        )


@dataclass(frozen=True, slots=True)
class Committed:
    """One written and committed batch: how many records, and how far behind the topics."""

    at: float  # time.time() when the offsets were committed
    kafka_records: int
    result: WriteResult
    # From the oldest (newest) record's Kafka timestamp to the commit: the sink's lag.
    oldest_delay_s: float
    newest_delay_s: float


@dataclass
class Status:
    """What the sink has done, for its readiness probe, its log and the tests."""

    batches: int = 0
    kafka_records: int = 0
    written: WriteResult = field(default_factory=WriteResult)
    # Why the last write failed while it retries (PostgreSQL away), else None; and how many
    # attempts failed so.
    waiting: str | None = None
    retries: int = 0
    last_commit_at: float | None = None
    last_delay_s: float | None = None


class Sink:
    """Copy the topics into the record's tables; commit offsets only after the rows."""

    def __init__(
        self,
        *,
        bootstrap: str,
        pool: asyncpg.Pool,
        zone: Zone | None,
        topics: Mapping[str, TopicSpec[Any]] | None = None,
        group_id: str = GROUP_ID,
        batch_max: int = 5000,
        on_commit: Callable[[Committed], None] | None = None,
        write_deadline_s: float = WRITE_DEADLINE_S,
    ) -> None:
        self._pool = pool
        self._write_deadline_s = write_deadline_s
        self._zone = zone
        self._topics = dict(topics) if topics is not None else catalog_topics()
        self._batch_max = batch_max
        self._on_commit = on_commit
        self.status = Status()
        self._commits = asyncio.Condition()
        # The batch read while the writer was busy, waiting for it; what is read meanwhile
        # joins it, up to _WAITING_MAX_POLLS polls' worth, and the reader waits after that.
        self._waiting: Batch | None = None
        self._handoff = asyncio.Condition()
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_max,
            # A batch of thousands of small records per poll, not a few hundred.
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # A longer session than the default 10 s costs nothing, and a CPU-starved machine
            # no longer drops a sink from its group (which made it read its batches again:
            # more work on a machine that had none to spare).
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
            **kafka_options(),
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Join the group and start reading and writing."""
        await self._consumer.start()
        self._tasks = [
            asyncio.create_task(self._read(), name="sink-read"),
            asyncio.create_task(self._write(), name="sink-write"),
        ]

    async def stop(self) -> None:
        """Stop reading and writing, leave the group (what was not committed is read again)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await stop_part(self._consumer.stop(), what="the sink's consumer")

    async def wait_failed(self) -> BaseException:
        """Wait until a task of the sink ends (only a bug ends one); return why."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        return _why_ended(next(iter(done)))

    def failure(self) -> BaseException | None:
        """Return why a task of the sink has ended (only a bug ends one), else None."""
        return next((_why_ended(task) for task in self._tasks if task.done()), None)

    async def wait_commits(self, count: int) -> None:
        """Wait until the sink has committed at least count batches (tests, benchmarks)."""
        async with self._commits:
            await self._commits.wait_for(lambda: self.status.batches >= count)

    def partitions(self) -> frozenset[TopicPartition]:
        """Return the partitions the sink holds now (one of a group holds its share)."""
        return frozenset(self._consumer.assignment())

    def kafka_answer(self) -> str:
        """Return "ok" when the consumer holds partitions, else why not (readiness)."""
        return "ok" if self._consumer.assignment() else "no partitions assigned yet"

    def status_body(self) -> dict[str, Any]:
        """Return what the sink has done, for its probe."""
        written = self.status.written
        return {
            "batches": self.status.batches,
            "records": self.status.kafka_records,
            "skipped": written.skipped,
            "waiting_for_postgres": self.status.waiting,
            "failed_writes": self.status.retries,
            "last_delay_s": self.status.last_delay_s,
        }

    # -- reading ---------------------------------------------------------------------------

    async def _read(self) -> None:
        limit = self._batch_max * _WAITING_MAX_POLLS
        while True:
            polled = await self._consumer.getmany(timeout_ms=200, max_records=self._batch_max)
            if not polled:
                continue
            batch = await self._decode(polled)
            async with self._handoff:
                await self._handoff.wait_for(
                    lambda: self._waiting is None or self._waiting.kafka_records < limit
                )
                waiting = self._waiting
                self._waiting = batch if waiting is None else waiting.joined(batch)
                self._handoff.notify_all()

    async def _decode(self, polled: Mapping[TopicPartition, list[Any]]) -> Batch:
        now = datetime.now(UTC)
        records: list[SinkRecord] = []
        count, oldest, newest = 0, None, None
        for tp, messages in polled.items():
            spec = self._topics[tp.topic]
            for at in range(0, len(messages), _DECODE_SLICE):
                for message in messages[at : at + _DECODE_SLICE]:
                    records.extend(sink_records(message, spec, now=now))
                # Validating thousands of records is seconds of CPU on a busy machine: the
                # loop must go on heartbeating the group (and writing the previous batch).
                await asyncio.sleep(0)
            count += len(messages)
            first, last = messages[0].timestamp, messages[-1].timestamp
            oldest = first if oldest is None else min(oldest, first)
            newest = last if newest is None else max(newest, last)
        offsets = {tp: messages[-1].offset + 1 for tp, messages in polled.items()}
        return Batch(records, offsets, count, oldest or 0, newest or 0)

    # -- writing ---------------------------------------------------------------------------

    async def _write(self) -> None:
        while True:
            async with self._handoff:
                await self._handoff.wait_for(lambda: self._waiting is not None)
                batch, self._waiting = self._waiting, None
                self._handoff.notify_all()
            assert batch is not None  # the wait's condition
            result = await self._store(batch)
            try:
                await self._consumer.commit(batch.offsets)
            except KafkaError as exc:
                # Read again after the rebalance or restart; written again, it changes nothing.
                log.warning("sink offsets not committed (%r); the batch will be read again", exc)
            self._committed(batch, result)
            async with self._commits:
                self._commits.notify_all()

    async def _store(self, batch: Batch) -> WriteResult:
        delay = _RETRY_FIRST_S
        while True:
            try:
                async with connection(self._pool, within_s=self._write_deadline_s) as conn:
                    result = await write_or_skip(
                        conn, batch.records, zone=self._zone, now=datetime.now(UTC)
                    )
            except DATABASE_DOWN as exc:
                why = (
                    f"no answer from PostgreSQL within {self._write_deadline_s:g} s"
                    if isinstance(exc, TimeoutError)
                    else describe_fault(exc)
                )
                if self.status.waiting is None:
                    log.warning("sink: PostgreSQL unavailable (%s); trying the batch again", why)
                self.status.waiting = why
                self.status.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            if self.status.waiting is not None:
                log.info("sink: PostgreSQL back; the batch is written")
                self.status.waiting = None
            return result

    def _committed(self, batch: Batch, result: WriteResult) -> None:
        now = time.time()
        done = Committed(
            at=now,
            kafka_records=batch.kafka_records,
            result=result,
            oldest_delay_s=now - batch.oldest_ms / 1000,
            newest_delay_s=now - batch.newest_ms / 1000,
        )
        status = self.status
        status.batches += 1
        status.kafka_records += batch.kafka_records
        status.written.add(result)
        status.last_commit_at = now
        status.last_delay_s = done.oldest_delay_s
        if self._on_commit is not None:
            self._on_commit(done)


def _why_ended(task: asyncio.Task[None]) -> BaseException:
    return (None if task.cancelled() else task.exception()) or RuntimeError("ended")
