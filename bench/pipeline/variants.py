"""What the benchmark runs: the shipped stage workers and their baselines.

Every variant that runs the stages runs the very same handlers (`streams.stages`) with the
same per-record guard (`streams.batching.handle_each`); they differ only in what drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from signal import SIGTERM
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord

from bench.pipeline.observer import REPO_ROOT
from bench.pipeline.workload import Workload, unit_reports
from dispatch.classify import Rules
from dispatch.events import ALARMS_RAW, UnitStatus, decode
from dispatch.policy import policy_of
from dispatch.settings import Settings
from dispatch.zone import Zone
from streams.batching import Handler, handle_each, run_batch, send_all
from streams.partitioner import keyed_partitioner
from streams.pipeline import STAGES, Pipeline, build_pipeline, new_producer
from streams.stages import Classifier, Merger, Outbox, Queued, Reserver, Router, dead_letter
from streams.tables import ChangelogTable
from streams.units_board import UnitBoard
from streams.worker import Membership, StageSpec, StageWorker

# Where the passthrough variants write the bytes they read.
BENCH_OUT = dataclasses.replace(ALARMS_RAW, name="bench.out")
TABLES = (
    "incident-merges",
    "incidents",
    "incident-deadlines",
    "incident-alarms",
    "unit-holds",
    "unit-decisions",
)
# Without Kafka, every unit reports itself available again after this many alarms of a stage
# (about what --unit-refresh-s does on Kafka at 2,000 alarms/s).
UNITS_REPORT_EVERY = 500
# Two workers that have not settled their partitions by then are stuck, not slow.
READY_GUARD_S = 120.0


@dataclass(frozen=True)
class Context:
    """Everything a variant needs: settings, domain data, and its own topic prefix."""

    settings: Settings
    zone: Zone
    rules: Rules
    prefix: str

    def topic(self, name: str) -> str:
        """Return the full name of one of this run's topics."""
        return self.prefix + name


Variant = Callable[[Context], AbstractAsyncContextManager[None]]


class BareStages:
    """The stages' handlers with dict tables; `write` sends a batch's records and changes."""

    def __init__(self, ctx: Context, producer: AIOKafkaProducer | None) -> None:
        self.ctx = ctx
        self.producer = producer
        partitions = ctx.settings.kafka_partitions
        self.tables = {
            name: ChangelogTable(name, ctx.topic(f"bare.{name}"), partitions=partitions)
            for name in TABLES
        }
        self.board = UnitBoard(ctx.zone)
        self.classifier = Classifier(zone=ctx.zone, rules=ctx.rules)
        policy = policy_of(ctx.zone)
        self.merger = Merger(merges=self.tables["incident-merges"], window=policy.merge_window)
        self.router = Router(
            incidents=self.tables["incidents"],
            deadlines=self.tables["incident-deadlines"],
            alarms=self.tables["incident-alarms"],
            board=self.board,
            routing=policy.routing,
            lifecycle=policy.lifecycle,
        )
        self.reserver = Reserver(
            holds=self.tables["unit-holds"], decisions=self.tables["unit-decisions"]
        )

    async def write(self, out: Queued) -> None:
        """Send the queued records and table changes as the agents do; wait for the acks."""
        producer = self.producer
        if producer is None:
            raise RuntimeError("no producer: this driver keeps its records in memory")

        def send(
            topic: str, key: bytes | None, value: bytes | None, partition: int | None
        ) -> Awaitable[Awaitable[Any]]:
            sent: Awaitable[Awaitable[Any]] = producer.send(
                topic, value, key=key, partition=partition
            )
            return sent

        partitions = self.ctx.settings.kafka_partitions
        await send_all(send, self.ctx.prefix, out, self.tables.values(), partitions=partitions)

    async def dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Dead-letter a units.status record the board could not apply."""
        out = Queued()
        dead_letter(out, record, stage="route", reason=reason)
        await self.write(out)

    async def tick_every_second(self) -> None:
        """The route stage's deadline timer (nothing falls due during a run)."""
        while True:
            await asyncio.sleep(1.0)
            out = Queued()
            self.router.due_ticks(out, datetime.now(UTC))
            await self.write(out)


async def consume_in_batches(
    ctx: Context,
    topic: str,
    handle: Handler,
    *,
    stage: str,
    write: Callable[[Queued], Awaitable[None]],
    before: Callable[[], Awaitable[Any]] | None = None,
    assigned: asyncio.Event | None = None,
) -> None:
    """Consume, run the handler over a batch, wait for its writes, commit; until cancelled.
    `assigned` is set once the group has given this consumer its partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ctx.settings.bootstrap_servers,
        group_id=ctx.prefix + stage,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.subscribe([ctx.topic(topic)], listener=_Assigned(assigned or asyncio.Event()))
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            if not batches:
                continue
            if before is not None:
                await before()
            messages = [record for records in batches.values() for record in records]
            await run_batch(handle, messages, stage=stage, write=write)
            await consumer.commit()
    finally:
        await consumer.stop()


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Sets an event once the consumer has partitions."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.event.clear()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            self.event.set()


@asynccontextmanager
async def running(*loops: Awaitable[None]) -> AsyncIterator[None]:
    """Run the loops as tasks while the block runs; cancel them after it."""
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [r for r in results if not isinstance(r, asyncio.CancelledError | type(None))]
        if failures:
            raise RuntimeError(f"a loop failed: {failures[0]!r}") from failures[0]


def forward(record: Any, out: Outbox, now: datetime) -> None:
    """The passthrough handler: the same bytes to `bench.out`."""
    out.send(BENCH_OUT, record.key, record.value)


@asynccontextmanager
async def bare_producer(ctx: Context) -> AsyncIterator[AIOKafkaProducer]:
    """An acks=all producer with the Faust app's 5 ms linger and partitioner."""
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        partitioner=keyed_partitioner,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def bare_passthrough(ctx: Context) -> AsyncIterator[None]:
    """Consume raw alarms and produce the same bytes: the cost of Kafka and aiokafka alone."""
    async with bare_producer(ctx) as producer:
        stages = BareStages(ctx, producer)
        loop = consume_in_batches(ctx, "alarms.raw", forward, stage="pass", write=stages.write)
        async with running(loop):
            yield


@asynccontextmanager
async def bare_same_logic(ctx: Context) -> AsyncIterator[None]:
    """The three stages as plain consume → same handlers → produce loops in one process."""
    async with bare_producer(ctx) as producer:
        stages = BareStages(ctx, producer)
        follow = stages.board.follow(
            ctx.settings.bootstrap_servers,
            ctx.topic("units.status"),
            stages.dead_letter,
            asyncio.Event(),
        )

        async def board_ready() -> None:
            await stages.board.ready.wait()

        assigned = [asyncio.Event() for _ in range(4)]

        def loop(topic: str, handle: Handler, stage: str, **kw: Any) -> Awaitable[None]:
            return consume_in_batches(ctx, topic, handle, stage=stage, write=stages.write, **kw)

        async with running(
            follow,
            loop("alarms.raw", stages.classifier.alarm, "classify", assigned=assigned[0]),
            loop("alarms.located", stages.merger.located, "merge", assigned=assigned[1]),
            loop(
                "alarms.classified",
                stages.router.classified,
                "route",
                before=board_ready,
                assigned=assigned[2],
            ),
            # The units' single writer, as the shipped route worker runs beside it.
            loop(
                "units.reservations",
                stages.reserver.reservation,
                "reserve",
                assigned=assigned[3],
            ),
            stages.tick_every_second(),
        ):
            # Ready when every loop has its partitions and the board its units: a paced run's
            # clock must not include the groups' joins (a backlog's clock starts at the first
            # output anyway).
            waits = [event.wait() for event in assigned] + [stages.board.ready.wait()]
            await asyncio.wait_for(asyncio.gather(*waits), READY_GUARD_S)
            yield


@asynccontextmanager
async def one_process(ctx: Context) -> AsyncIterator[None]:
    """Every stage in this process (`python -m streams` without `--stage`)."""
    pipeline = build_pipeline(ctx.settings, app_id=f"bench-{ctx.prefix}", topic_prefix=ctx.prefix)
    await pipeline.start()
    try:
        # As for the bare loops: ready once it owns its partitions and knows the units.
        await asyncio.wait_for(pipeline.wait_ready(), READY_GUARD_S)
        yield
    finally:
        await pipeline.stop()


@asynccontextmanager
async def worker_passthrough(ctx: Context) -> AsyncIterator[None]:
    """One stage worker that forwards each raw alarm's bytes: the runner's own cost."""
    producer = new_producer(ctx.settings)
    await producer.start()
    worker = StageWorker(
        StageSpec("pass", {ctx.topic("alarms.raw"): forward}),
        bootstrap=ctx.settings.bootstrap_servers,
        membership=Membership(group_id=f"bench-{ctx.prefix}-pass"),
        producer=producer,
        prefix=ctx.prefix,
        partitions=ctx.settings.kafka_partitions,
    )
    await worker.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), READY_GUARD_S)
        yield
    finally:
        await worker.stop()
        await producer.stop()


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process of `one process x2` or `worker per stage` runs."""

    bootstrap: str
    app_id: str
    prefix: str
    stages: tuple[str, ...] = STAGES


# The topic whose partitions tell that a worker of these stages has joined its group.
FIRST_INPUT = {"classify": "alarms.raw", "merge": "alarms.located", "route": "alarms.classified"}


async def run_worker(spec: WorkerSpec) -> None:
    """Run the shipped stages until SIGTERM; print how many partitions of its first input this
    worker owns whenever that changes (once its tables are restored)."""
    settings = Settings(kafka_bootstrap=spec.bootstrap)
    pipeline = build_pipeline(
        settings, stages=spec.stages, app_id=spec.app_id, topic_prefix=spec.prefix
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(SIGTERM, stop.set)
    await pipeline.start()
    try:
        told = -1
        while not stop.is_set():
            owned = _owned_first(pipeline, spec.prefix + FIRST_INPUT[pipeline.stages[0]])
            if owned != told:
                print(f"owns {owned}", flush=True)
                told = owned
            # A benchmark's progress line, not a test: polling the count is enough here.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    finally:
        await pipeline.stop()


def _owned_first(pipeline: Pipeline, first: str) -> int:
    worker = pipeline.workers[0]
    if not worker.ready.is_set():
        return 0
    return sum(1 for tp in worker.progress.owned if tp.topic == first)


@asynccontextmanager
async def worker_processes(ctx: Context, groups: list[list[WorkerSpec]]) -> AsyncIterator[None]:
    """Start one worker process per spec, a group at a time; yield once the workers of each
    app id own all the partitions of their first input between them and have restored their
    tables, so no rebalance of a started group falls inside the timed run."""
    workers: list[asyncio.subprocess.Process] = []
    try:
        for specs in groups:
            started = [await _start_worker(spec) for spec in specs]
            workers.extend(started)
            await _settled(ctx, specs, started)
        yield
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.terminate()
        for worker in workers:
            await worker.wait()


async def _start_worker(spec: WorkerSpec) -> asyncio.subprocess.Process:
    # The workers run the event loop this process runs.
    uv = type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.pipeline",
        "--worker",
        json.dumps(dataclasses.asdict(spec)),
        "--loop",
        "uvloop" if uv else "asyncio",
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )


async def _settled(
    ctx: Context, specs: list[WorkerSpec], workers: list[asyncio.subprocess.Process]
) -> None:
    """Wait until the workers of each group own all partitions of their first input."""
    partitions = ctx.settings.kafka_partitions

    def settled(owned: list[int]) -> bool:
        # The workers of one group (one app id, one first stage) share its partitions.
        for group in {(spec.app_id, spec.stages[0]) for spec in specs}:
            shares = [
                n
                for n, spec in zip(owned, specs, strict=True)
                if (spec.app_id, spec.stages[0]) == group
            ]
            if not all(shares) or sum(shares) != partitions:
                return False
        return True

    owned = [0] * len(workers)
    reads = {asyncio.ensure_future(_line(w)): n for n, w in enumerate(workers)}
    try:
        while not settled(owned):
            done, _ = await asyncio.wait(
                reads, timeout=READY_GUARD_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise RuntimeError(f"the workers did not share the partitions: they own {owned}")
            for task in done:
                n = reads.pop(task)
                owned[n] = int(task.result().removeprefix("owns "))
                reads[asyncio.ensure_future(_line(workers[n]))] = n
    finally:
        for task in reads:
            task.cancel()


def one_process_x2(ctx: Context) -> AbstractAsyncContextManager[None]:
    """Every stage in each of two worker processes, members of the same groups."""
    spec = WorkerSpec(ctx.settings.bootstrap_servers, f"bench-{ctx.prefix}", ctx.prefix)
    # Both at once: they share the partitions, and the alarms are written once they have.
    return worker_processes(ctx, [[spec, spec]])


def worker_per_stage(ctx: Context) -> AbstractAsyncContextManager[None]:
    """One worker process per stage, each in its stage's group, as `dispatch run` ships it."""
    bootstrap = ctx.settings.bootstrap_servers
    specs = {
        stage: WorkerSpec(bootstrap, f"bench-{ctx.prefix}", ctx.prefix, (stage,))
        for stage in STAGES
    }
    # The last stage first: each is ready before its input starts to flow, and the classify
    # worker, started last, finds the alarms waiting (the clock starts at its first output).
    return worker_processes(ctx, [[specs[stage]] for stage in reversed(STAGES)])


def two_processes(ctx: Context) -> AbstractAsyncContextManager[None]:
    """Classify and merge in one worker process, route in another."""
    bootstrap = ctx.settings.bootstrap_servers
    route = WorkerSpec(bootstrap, f"bench-{ctx.prefix}", ctx.prefix, ("route",))
    first = WorkerSpec(bootstrap, f"bench-{ctx.prefix}", ctx.prefix, ("classify", "merge"))
    return worker_processes(ctx, [[route], [first]])


async def _line(process: asyncio.subprocess.Process) -> str:
    if process.stdout is None:
        raise RuntimeError("the worker's stdout is not a pipe")
    line = (await process.stdout.readline()).decode().strip()
    if not line:
        raise RuntimeError(f"a worker exited with {await process.wait()}")
    return line


VARIANTS: dict[str, Variant] = {
    "bare passthrough": bare_passthrough,
    "worker passthrough": worker_passthrough,
    "bare same logic": bare_same_logic,
    "one process": one_process,
    "one process x2": one_process_x2,
    "worker per stage": worker_per_stage,
    "two processes": two_processes,
}
# Variants that must be running before the alarms are written (the others find them waiting).
LATE_INPUT = frozenset({"one process x2"})
NO_KAFKA = "same logic, no kafka"


@dataclass(frozen=True)
class InMemory:
    """What `without_kafka` measured: seconds to the end of each stage, and every record."""

    seconds: dict[str, float]
    written: dict[str, list[bytes]]


def without_kafka(ctx: Context, workload: Workload) -> InMemory:
    """Run the handlers over in-memory lists in one process: the CPU cost of the logic alone."""
    stages = BareStages(ctx, None)
    reports = [decode(UnitStatus, value) for _, value in unit_reports(ctx.zone)]
    stages.board.ready.set()
    written: dict[str, list[bytes]] = defaultdict(list)
    inputs: Iterable[tuple[bytes, bytes]] = workload.records
    steps = (
        ("classify", stages.classifier.alarm, "alarms.located"),
        ("merge", stages.merger.located, "alarms.classified"),
        ("route", stages.router.classified, "units.reservations"),
        ("reserve", stages.reserver.reservation, None),
    )
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    for stage, handle, next_topic in steps:
        out = Queued()
        for offset, (key, value) in enumerate(inputs):
            if offset % UNITS_REPORT_EVERY == 0:
                # What the observer's refresh does on Kafka: every unit available again.
                now = datetime.now(UTC)
                for status in reports:
                    stages.board.apply(status.model_copy(update={"reported_at": now}))
            record = ConsumerRecord("memory", 0, offset, 0, 0, key, value, None, 0, 0, [])
            handle_each(handle, [record], out, stage=stage)
        for spec, _key, value in out.records:
            written[spec.name].append(value)
        inputs = [(key, value) for spec, key, value in out.records if spec.name == next_topic]
        seconds[stage] = time.perf_counter() - start
    return InMemory(seconds, written)


def fresh_prefix() -> str:
    """A topic prefix no earlier run used."""
    return f"b{uuid.uuid4().hex[:10]}."
