"""The durable per-unit outbox: the Kafka → Postgres writer and the LISTEN side.

`dispatch.assignments` is copied into table `unit_outbox` by `OutboxWriter` at least once and
idempotently (a known assignment id is skipped), each job with the next seq of its unit; the
Kafka offsets are committed only after the rows are. Sessions read the table to resume, so
what a unit has not acknowledged survives any gateway restart. See docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from asyncpg.pool import PoolConnectionProxy

from consumers.kafka_client import kafka_options
from consumers.push.store import (
    DATABASE_DOWN,
    NOTIFY_CHANNEL,
    OutboxRow,
    append_assignments,
    connection,
    describe_fault,
    is_record_fault,
)
from consumers.until_stopped import stop_part
from dispatch.events import (
    MAX_VALUE_BYTES,
    Assignment,
    DeadLetter,
    FieldError,
    InvalidEvent,
    decode,
    encode,
    key_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

STAGE = "push-outbox"
Job = tuple[ConsumerRecord[Any, Any], Assignment]
_MAX_BATCH = 500
# Fits the producer's default 1 MiB request once base64 and the envelope are added.
_SMALL_DEAD_LETTER_VALUE = 512 * 1024
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel task if it still runs, wait for it, and log how it failed if it did."""
    task.cancel()
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    if isinstance(outcome, Exception):
        log.error("%s had failed", task.get_name(), exc_info=outcome)


class WriterStopped(Exception):
    """Raised inside the writer when it is asked to stop while waiting for the database."""


class RecordFault(Exception):
    """Raised inside the writer when PostgreSQL refuses a record's data (not an outage)."""


class OutboxWriter:
    """Copy `dispatch.assignments` into the outbox, commit the offsets, then tell the sessions."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        bootstrap: str,
        topic: str,
        dead_letter_topic: str,
        group_id: str,
        on_stored: Callable[[Sequence[OutboxRow]], None],
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._dead_letter_topic = dead_letter_topic
        self._on_stored = on_stored
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            # A new group starts at the beginning: nothing dispatched before the first start
            # of the first gateway is skipped.
            auto_offset_reset="earliest",
            max_poll_records=_MAX_BATCH,
            **kafka_options(),
        )
        self._conn: PoolConnectionProxy[Any] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.stored = 0

    @property
    def backend_pid(self) -> int | None:
        """Return the PostgreSQL backend pid of the writer's connection (its NOTIFY sender)."""
        return None if self._conn is None else self._conn.get_server_pid()

    @property
    def done(self) -> asyncio.Task[None]:
        """Return the writer's task; it ends only when stopped, or by a bug."""
        assert self._task is not None, "start() first"
        return self._task

    def partitions(self) -> set[int]:
        """Return the partitions of the assignments topic this writer holds now."""
        return {tp.partition for tp in self._consumer.assignment()}

    async def start(self) -> None:
        """Join the consumer group and start copying."""
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="outbox-writer")

    async def stop(self) -> None:
        """Finish the batch in hand, leave the group, give the connection back."""
        self._stopping = True
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=10)
            await cancel(self._task)
        await stop_part(self._consumer.stop(), what="the outbox writer's consumer")
        await self._release()

    async def _run(self) -> None:
        try:
            while not self._stopping:
                batch = await self._consumer.getmany(timeout_ms=200)
                if batch:
                    await self._copy(batch)
        except WriterStopped:
            pass

    async def _copy(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        jobs: list[Job] = []
        offsets: dict[TopicPartition, int] = {}
        for partition, records in batch.items():
            for record in records:
                try:
                    jobs.append((record, decode(Assignment, record.value or b"")))
                except InvalidEvent as exc:
                    await self._dead_letter(record, str(exc), exc.errors)
            offsets[partition] = records[-1].offset + 1
        rows = await self._store_jobs(jobs)
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # The records come again after the rebalance; storing them again is a no-op.
            log.warning("outbox offsets not committed (%s); they will be replayed", exc)
        self.stored += len(rows)
        if rows:
            self._on_stored(rows)

    async def _store_jobs(self, jobs: list[Job]) -> list[OutboxRow]:
        try:
            return await self._retry(lambda: self._store([job for _, job in jobs]))
        except RecordFault:
            pass
        # Some record of the batch cannot be stored: find it by storing one at a time, so the
        # others go through (in order, so each unit's seqs stay in its jobs' order).
        rows: list[OutboxRow] = []
        for record, job in jobs:
            try:
                rows += await self._retry(partial(self._store, [job]))
            except RecordFault as fault:
                log.warning(
                    "outbox writer: %s[%d]@%d cannot be stored: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    fault,
                    extra={"incident_id": str(job.incident_id)},
                )
                await self._dead_letter(record, f"cannot be stored in the outbox: {fault}")
        return rows

    async def _store(self, assignments: list[Assignment]) -> list[OutboxRow]:
        if self._conn is None:
            # Held between batches, so its backend pid identifies this writer's NOTIFYs.
            self._conn = await self._pool.acquire()
        return await append_assignments(cast(asyncpg.Connection, self._conn), assignments)

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], reason: str, errors: Sequence[FieldError] = ()
    ) -> None:
        try:
            await self._retry(partial(self._send_dead_letter, record, reason, errors))
        except MessageSizeTooLargeError:
            # Base64 makes the original a third larger than this producer may send: keep what
            # fits (value_truncated says so) rather than block the partition on it.
            cut = partial(self._send_dead_letter, record, reason, errors, _SMALL_DEAD_LETTER_VALUE)
            await self._retry(cut)

    async def _send_dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        reason: str,
        errors: Sequence[FieldError],
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        letter = DeadLetter.capture(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
            stage=STAGE,
            failed_at=datetime.now(UTC),
            errors=errors,
            max_value_bytes=max_value_bytes,
        )
        await self._producer.send_and_wait(self._dead_letter_topic, encode(letter), key_of(letter))

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        # Retry what a dependency that is down or busy makes fail; a fault of the record itself
        # (RecordFault, or a Kafka record too large to send) is raised at once, never retried.
        delay = _RETRY_FIRST_S
        while True:
            try:
                return await attempt()
            except MessageSizeTooLargeError:
                raise
            except (*DATABASE_DOWN, UnicodeError, KafkaError) as exc:
                if is_record_fault(exc):
                    raise RecordFault(describe_fault(exc)) from exc
                log.warning("outbox writer: %s; retrying in %.1f s", describe_fault(exc), delay)
                await self._release()
            if self._stopping:
                raise WriterStopped
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(*DATABASE_DOWN):
                await self._pool.release(conn)


def _set_event(event: asyncio.Event, _conn: object) -> None:
    event.set()


class OutboxListener:
    """LISTEN for rows other gateways stored and wake this gateway's sessions of those units."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        own_pid: Callable[[], int | None],
        on_unit: Callable[[str], None],
        on_relisten: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._own_pid = own_pid
        self._on_unit = on_unit
        self._on_relisten = on_relisten
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def done(self) -> asyncio.Task[None]:
        """Return the listener's task; it ends only when stopped, or by a bug."""
        assert self._task is not None, "start() first"
        return self._task

    async def start(self) -> None:
        """Start listening; return once the first LISTEN is in place."""
        self._task = asyncio.create_task(self._run(), name="outbox-listener")
        await asyncio.wait_for(self._listening.wait(), timeout=30)

    async def stop(self) -> None:
        """Stop listening and give the connection back."""
        if self._task is not None:
            await cancel(self._task)

    def _notified(self, _conn: object, pid: int, _channel: str, payload: object) -> None:
        # This process's own rows reached its sessions directly; only other writers' matter.
        if pid != self._own_pid() and isinstance(payload, str):
            self._on_unit(payload)

    async def _run(self) -> None:
        delay = _RETRY_FIRST_S
        while True:
            try:
                async with connection(self._pool) as conn:
                    await self._listen(conn)
                log.warning("outbox listener lost its connection; listening again")
            except DATABASE_DOWN as exc:
                log.warning("outbox listener: %s; retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        on_lost = partial(_set_event, lost)
        conn.add_termination_listener(on_lost)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        try:
            # Rows stored while nobody listened told no one: every session looks again.
            self._on_relisten()
            self._listening.set()
            await lost.wait()
        finally:
            # A pooled connection must go back without listeners (UNLISTEN).
            conn.remove_termination_listener(on_lost)
            with suppress(*DATABASE_DOWN):
                await conn.remove_listener(NOTIFY_CHANNEL, self._notified)
