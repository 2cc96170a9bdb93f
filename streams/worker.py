"""A stage worker: one Kafka consumer group member that runs a stage's handlers in batches.

The loop is deliberately plain: fetch a batch from the partitions this member owns, run the
handlers, write everything the batch caused (records and table changes) and wait for every
acknowledgement, then commit exactly the offsets of the records handled. Nothing is committed
that was not handled, and nothing is handled for a partition whose tables are not restored.
docs/architecture.md says why this replaced Faust's consumer.

Partitions move between members only through the rebalance listener, which takes the same lock
as a batch: a revocation waits for the batch in hand to be written and committed, then drops
the partitions' table rows; an assignment restores the new partitions' rows from their
changelogs before any of their records is handled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError

from consumers import metrics
from consumers.kafka_client import kafka_options
from consumers.until_stopped import stop_part
from dispatch.events import ALARMS_DLQ, DISPATCH_ASSIGNMENTS, INCIDENTS_STATE, RESPONSES_EVENTS
from streams.batching import BATCH_MAX, Handler, frame_writes, run_batch, send_writes
from streams.restore import restore_tables
from streams.stages import Outbox, Queued
from streams.tables import ChangelogTable

log = logging.getLogger(__name__)

# Backoff while Kafka does not acknowledge a batch's writes: the batch is written again (its
# records carry deterministic ids, so a second copy is harmless) until it is acknowledged.
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0
# A fetch returns at once when records are there; this is only how long an idle loop waits.
_FETCH_WAIT_MS = 100


class Stopping(Exception):
    """Raised inside the worker when it is asked to stop while it waits for Kafka."""


class WritesStalled(Exception):
    """Raised when Kafka has acknowledged none of a batch's writes for too long: the worker
    fails, and its supervisor starts it again with fresh connections."""


class Producer(Protocol):
    """What a worker writes through (`consumers.kafka_producer.RecoveringProducer`)."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class Timer:
    """A periodic job of a stage that may queue records (the route stage's deadline ticks)."""

    interval_s: float
    run: Callable[[Outbox, datetime], None]


@dataclass(frozen=True)
class StageSpec:
    """What a stage reads, how it handles each topic, and the tables it keeps."""

    stage: str
    # Full topic name -> the handler of its records.
    inputs: Mapping[str, Handler]
    tables: Sequence[ChangelogTable] = ()
    timers: Sequence[Timer] = ()
    # Awaited before every batch (the route stage waits for its unit board to catch up).
    before: Callable[[], Awaitable[Any]] | None = None


@dataclass(frozen=True)
class Membership:
    """How the worker takes part in its consumer group (docs/reliability.md: failover)."""

    group_id: str
    # Static membership: a restarted worker with the same instance id takes its partitions
    # back at once instead of waiting for its old session to expire.
    instance_id: str | None = None
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000


@dataclass
class Progress:
    """What the worker has done, for its health and readiness checks."""

    records: int = 0
    batches: int = 0
    last_batch_at: float | None = None
    retrying_since: float | None = None
    owned: frozenset[TopicPartition] = field(default_factory=frozenset)
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class StageWorker:
    """Run one stage as one member of its consumer group."""

    def __init__(
        self,
        spec: StageSpec,
        *,
        bootstrap: str,
        membership: Membership,
        producer: Producer,
        prefix: str,
        partitions: int,
        write_stall_s: float = 120.0,
    ) -> None:
        self.spec = spec
        self.membership = membership
        self.progress = Progress()
        self.ready = asyncio.Event()
        self._bootstrap = bootstrap
        self._producer = producer
        self._prefix = prefix
        self._partitions = partitions
        self._write_stall_s = write_stall_s
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=membership.group_id,
            group_instance_id=membership.instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Co-partitioned inputs: partition n of every input topic goes to the same member.
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=membership.session_timeout_ms,
            heartbeat_interval_ms=membership.heartbeat_interval_ms,
            max_poll_records=BATCH_MAX,
            **kafka_options(),
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        """Return the stage's name."""
        return self.spec.stage

    async def start(self) -> None:
        """Join the group; batches start once partitions are assigned and restored."""
        await self._consumer.start()
        self._consumer.subscribe(list(self.spec.inputs), listener=_Rebalance(self))
        metrics.PARTITIONS.add(self._metrics_key, self.partition_figures)
        self._tasks.append(asyncio.create_task(self._run(), name=f"{self.name}-loop"))
        for timer in self.spec.timers:
            task = asyncio.create_task(self._tick(timer), name=f"{self.name}-timer")
            self._tasks.append(task)

    async def stop(self, *, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand, stop the loop and leave the group."""
        self._stopping.set()
        metrics.PARTITIONS.remove(self._metrics_key)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # Leaving the group needs the broker; a worker stopped while Kafka is down must still
        # stop (what it did not commit is handled again by the next owner).
        await stop_part(self._consumer.stop(), what=f"the {self.name} worker's consumer")

    async def wait_failed(self) -> BaseException:
        """Wait until the worker fails (a bug, or a table it could not restore)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                return task.exception() or RuntimeError("unknown")
        return self._failure or RuntimeError(f"{self.name} worker stopped")

    def lag(self) -> dict[TopicPartition, int]:
        """Return, per owned partition, how many records are behind the last committed one."""
        lags = {}
        for tp in self.progress.owned:
            end = self._consumer.highwater(tp)
            committed = self.progress.committed.get(tp)
            if end is not None and committed is not None:
                lags[tp] = max(0, end - committed)
        return lags

    @property
    def _metrics_key(self) -> str:
        return f"{self.membership.group_id}/{self.name}/{id(self)}"

    def partition_figures(self) -> dict[tuple[str, str, int], tuple[int, int]]:
        """Return, per owned partition, (lag, committed offset) for `/metrics`: the lag is the
        consumer's highwater less the committed offset, what a restart would read again."""
        figures = {}
        for tp, behind in self.lag().items():
            key = (self.membership.group_id, tp.topic, tp.partition)
            figures[key] = (behind, self.progress.committed.get(tp, 0))
        return figures

    def problems(self, *, now: float, stall_after_s: float) -> list[str]:
        """Return why this worker is not doing its job right now (empty when it is)."""
        found = []
        if self._failure is not None:
            found.append(f"failed: {self._failure!r}")
        if not self.ready.is_set():
            found.append("no partitions restored and handled yet")
        retrying = self.progress.retrying_since
        if retrying is not None and now - retrying > stall_after_s:
            found.append(f"Kafka has not acknowledged writes for {now - retrying:.0f} s")
        behind = sum(self.lag().values())
        last = self.progress.last_batch_at
        if behind and last is not None and now - last > stall_after_s:
            found.append(f"{behind} records waiting and none handled for {stall_after_s:.0f} s")
        return found

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if self._failure is not None:
                raise self._failure
            batch = await self._consumer.getmany(timeout_ms=_FETCH_WAIT_MS)
            if not batch or self._stopping.is_set():
                continue
            if self.spec.before is not None:
                await self.spec.before()
            async with self._lock:
                try:
                    await self._handle_batch(batch)
                except Stopping:
                    return

    async def _handle_batch(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        owned = self.progress.owned
        messages: list[Any] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            if tp not in owned:
                # Fetched before this member's tables for it were restored: read it again.
                if tp in self._consumer.assignment():
                    self._consumer.seek(tp, records[0].offset)
                continue
            messages.extend(records)
            offsets[tp] = records[-1].offset + 1
        if not messages:
            return
        started = time.perf_counter()
        await run_batch(self._handle, messages, stage=self.name, write=self._write)
        await self._commit(offsets)
        metrics.STAGE_BATCH_SECONDS.labels(stage=self.name).observe(time.perf_counter() - started)
        metrics.STAGE_RECORDS.labels(stage=self.name).inc(len(messages))
        self.progress.records += len(messages)
        self.progress.batches += 1
        self.progress.last_batch_at = time.monotonic()

    def _handle(self, record: Any, out: Outbox, now: datetime) -> None:
        self.spec.inputs[record.topic](record, out, now)

    async def _write(self, out: Queued) -> None:
        writes = frame_writes(self._prefix, out, self.spec.tables, partitions=self._partitions)
        delay = _RETRY_FIRST_S
        while True:
            try:
                await send_writes(self._send, writes)
                self.progress.retrying_since = None
                _count_writes(self.name, out)
                return
            except (KafkaError, TimeoutError) as exc:
                now = time.monotonic()
                if self.progress.retrying_since is None:
                    self.progress.retrying_since = now
                elif now - self.progress.retrying_since > self._write_stall_s:
                    raise WritesStalled(
                        f"no write acknowledged for {self._write_stall_s:.0f} s"
                    ) from exc
                log.warning(
                    "%s: writes not acknowledged (%r); again in %.1f s", self.name, exc, delay
                )
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            raise Stopping

    async def _send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Awaitable[Any]:
        sent: Awaitable[Any] = await self._producer.send(topic, value, key=key, partition=partition)
        return sent

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group moved on: the new owner handles these records again, harmlessly.
            log.warning(
                "%s: offsets not committed (%s); they will be handled again", self.name, exc
            )
            return
        except KafkaError as exc:
            # The next commit covers these offsets; until then a restart replays them.
            log.warning("%s: offsets not committed (%r)", self.name, exc)
            return
        self.progress.committed.update(offsets)

    async def _tick(self, timer: Timer) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timer.interval_s)
                return
            except TimeoutError:
                pass
            if not self.progress.owned:
                continue
            async with self._lock:
                out = Queued()
                timer.run(out, datetime.now(UTC))
                try:
                    await self._write(out)
                except Stopping:
                    return

    # -- rebalances ----------------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Wait for the batch in hand, then forget the revoked partitions' rows."""
        async with self._lock:
            owned = self.progress.owned - revoked
            self.progress.owned = frozenset(owned)
            for tp in revoked:
                self.progress.committed.pop(tp, None)
            kept = {tp.partition for tp in owned}
            gone = {tp.partition for tp in revoked} - kept
            for table in self.spec.tables:
                table.drop_partitions(gone)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Restore the new partitions' rows, then let their records through."""
        async with self._lock:
            fresh = {tp.partition for tp in assigned} - {tp.partition for tp in self.progress.owned}
            try:
                await restore_tables(self._bootstrap, self.spec.tables, fresh)
            except Exception as exc:
                # aiokafka only logs a listener's exception: fail the worker instead, so that
                # it is restarted rather than left owning partitions it cannot handle.
                log.exception("%s: could not restore its tables", self.name)
                self._failure = exc
                self._stopping.set()
                return
            for tp in assigned:
                if tp not in self.progress.committed:
                    committed = await self._consumer.committed(tp)
                    self.progress.committed[tp] = committed or 0
            self.progress.owned = frozenset(assigned)
            # The stall clock starts now: records already waiting are not a stall yet.
            self.progress.last_batch_at = time.monotonic()
            log.info(
                "%s: handling %s", self.name, sorted(f"{t.topic}[{t.partition}]" for t in assigned)
            )
            self.ready.set()


def _count_writes(stage: str, out: Queued) -> None:
    """Count what a batch wrote, once Kafka acknowledged it: dead letters, and the routing
    decisions (each incident state entered, each assignment sent, each job refused because
    another incident held its unit)."""
    for topic, _key, value in out.records:
        if topic.name == ALARMS_DLQ.name:
            metrics.STAGE_DEAD_LETTERS.labels(stage=stage).inc()
        elif topic.name == DISPATCH_ASSIGNMENTS.name:
            metrics.ROUTE_DECISIONS.labels(decision="assignment").inc()
        elif topic.name == RESPONSES_EVENTS.name:
            # Only the reserve stage writes here: a job refused, its unit held elsewhere.
            metrics.ROUTE_DECISIONS.labels(decision="taken").inc()
        elif topic.name == INCIDENTS_STATE.name:
            state = _state_of(value)
            metrics.ROUTE_DECISIONS.labels(decision=f"state:{state}").inc()
            if state == "escalated":
                metrics.ESCALATIONS.inc()


def _state_of(value: bytes) -> str:
    # The state alone, without validating the whole change (the stage built it a moment ago).
    try:
        state = json.loads(value).get("state")
    except (ValueError, AttributeError):
        return "unknown"
    return state if isinstance(state, str) else "unknown"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka has no stubs
    def __init__(self, worker: StageWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._worker.on_assigned(assigned)
