"""The sink's throughput and its lag behind the topics, against a bare asyncpg COPY.

Run from the repository root:

    python -m bench.sink --events 200000 --rate 500 2000 --duration 30

Starts its own Kafka and PostgreSQL (a temporary state directory, free ports) and measures:

- `backlog`: a realistic mix of about --events events (per alarm: the raw and classified
  alarm; a new incident for --new-share of them with its state changes, job, ack, accept,
  arrival, resolution and the unit's positions, a commander's command and its outcome now and
  then; a `merged` change for the others; a dead letter now and then) is written to fresh
  topics first, then one sink (consumers.sink.service.Sink, in this process) reads it all.
  Events/s from its first commit to its last (the group join is not counted).
- the baselines, in the same run: the validation alone (consumers.sink.reading on the same
  Kafka records, no database), and a bare asyncpg `COPY` (copy_records_to_table) of the very
  rows the sink wrote into empty tables of the same schema, one transaction.
- `paced`: alarms at each --rate a second for --duration seconds, written by a producer process of
  their own while a fresh sink runs; the sink's lag behind the topics per committed batch (from
  the Kafka timestamp of the batch's oldest record to the commit), and how long it took to
  store the last record after the producer stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import queue
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumers.db import migrate
from consumers.sink.reading import catalog_topics, sink_records
from consumers.sink.service import Committed, Sink, collect_less
from consumers.sink.writer import WriteResult
from dispatch.events import (
    ALARMS_CLASSIFIED,
    TOPICS,
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    ClassifiedAlarm,
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    CommandResult,
    DeadLetter,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    PlaceType,
    Position,
    Priority,
    RawAlarm,
    ResponseAction,
    ResponseEvent,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    encode,
    key_of,
    spec_for,
)
from dispatch.zone import Zone, default_zone_path, load_zone
from infra import stack
from infra.topics import TopicDecl, ensure_topics
from streams.bundles import bundle, by_partition

TABLES = (
    "record_alarms", "record_incidents", "record_events", "record_units",
    "record_unit_positions", "record_dead_letters",
)  # fmt: skip
GUARD_S = 600.0
# Alarms of one merge-stage batch: alarms.classified carries them as bundles per partition.
BUNDLE_ALARMS = 100
PLACES = [Position(lat=31.70 + 0.002 * k, lon=113.40 + 0.003 * k) for k in range(20)]


# -- the mix -----------------------------------------------------------------------------------


class Mix:
    """Events of alarms as the pipeline writes them, seeded, in the order they are written."""

    def __init__(self, *, seed: int, new_share: float, partitions: int) -> None:
        self._rng = random.Random(seed)
        self._new_share = new_share
        self._partitions = partitions
        self._open: uuid.UUID | None = None
        self._count = 1
        self._n = 0

    def _id(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def alarms(self, count: int, start: datetime, every_s: float) -> list[list[EventModel]]:
        """Return the events of count alarms, one list per alarm, received every_s apart."""
        return [self._alarm(start + timedelta(seconds=i * every_s)) for i in range(count)]

    def _alarm(self, at: datetime) -> list[EventModel]:
        self._n += 1
        n, rng = self._n, self._rng
        place = PLACES[n % len(PLACES)]
        raw = RawAlarm(
            alarm_id=self._id(), received_at=at, source_kind=SourceKind.SENSOR,
            source_id=f"cam-{n % 50}", text="B类摄像头: 围墙处有人攀爬 / someone climbing the wall",
            position=place,
        )  # fmt: skip
        new = self._open is None or rng.random() < self._new_share
        incident_id = self._id() if new else self._open
        assert incident_id is not None
        classified = ClassifiedAlarm(
            alarm_id=raw.alarm_id, incident_id=incident_id, category=Category.INTRUSION,
            priority=Priority.P2, required_capabilities=("patrol",), position=place,
            grid_id="cd-g03", place_type=PlaceType.ENTERPRISE, received_at=at,
            classified_at=at + timedelta(milliseconds=40), text=raw.text,
            source_kind=raw.source_kind, source_id=raw.source_id,
            merged_into=None if new else incident_id,
        )  # fmt: skip
        events: list[EventModel] = [raw, classified]
        if not new:
            self._count += 1
            events.append(self._change(incident_id, IncidentState.MERGED, at, raw.alarm_id))
        else:
            self._open, self._count = incident_id, 1
            events.extend(self._incident(incident_id, raw.alarm_id, at, place))
        if n % 500 == 0:
            events.append(
                DeadLetter.capture(
                    source_topic="alarms.raw",
                    partition=0,
                    offset=n,
                    key=b"k",
                    value=b'{"text": ""}',
                    reason="invalid RawAlarm: text: too short",
                    stage="classify",
                    failed_at=at,
                )
            )
        return events

    def _change(
        self,
        incident_id: uuid.UUID,
        state: IncidentState,
        at: datetime,
        first: uuid.UUID,
        parties: tuple[Party, ...] = (),
        **timing: datetime,
    ) -> IncidentStateChange:
        return IncidentStateChange(
            event_id=self._id(), incident_id=incident_id, state=state, actor="system", at=at,
            priority=Priority.P2, category=Category.INTRUSION, position=PLACES[0],
            first_alarm_id=first, alarm_count=self._count, parties=parties,
            timing=IncidentTiming(received_at=at, **timing),
        )  # fmt: skip

    def _incident(
        self, incident_id: uuid.UUID, first: uuid.UUID, at: datetime, place: Position
    ) -> list[EventModel]:
        unit = f"cd-patrol-{self._n % 40}"
        t = [at + timedelta(seconds=s) for s in (0.05, 1, 2, 15, 25, 200, 300)]
        job = Assignment(
            assignment_id=self._id(), incident_id=incident_id, unit_id=unit,
            kind=AssignmentKind.ASSIGNMENT, role=AssignmentRole.PRIMARY, attempt=1,
            priority=Priority.P2, category=Category.INTRUSION, position=place,
            dispatched_at=t[1], ack_deadline=t[1] + timedelta(seconds=60), summary="intrusion",
        )  # fmt: skip
        party = Party(
            unit_id=unit, assignment_id=job.assignment_id, role=AssignmentRole.PRIMARY,
            kind=AssignmentKind.ASSIGNMENT, state=PartyState.DISPATCHED, dispatched_at=t[1],
        )  # fmt: skip

        def respond(action: ResponseAction, when: datetime) -> ResponseEvent:
            return ResponseEvent(
                event_id=self._id(), assignment_id=job.assignment_id, incident_id=incident_id,
                unit_id=unit, action=action, occurred_at=when, actor=unit,
            )  # fmt: skip

        def moving(k: int, when: datetime) -> UnitStatus:
            where = Position(lat=place.lat + 0.002 * k, lon=place.lon)
            return UnitStatus(
                event_id=self._id(), unit_id=unit, status=UnitAvailability.ASSIGNED,
                position=where, reported_at=when,
            )  # fmt: skip

        change = self._change
        events: list[EventModel] = [
            change(incident_id, IncidentState.CLASSIFIED, t[0], first),
            job,
            change(incident_id, IncidentState.DISPATCHED, t[1], first, (party,),
                   dispatched_at=t[1]),
            respond(ResponseAction.ACK, t[2]),
            respond(ResponseAction.ACCEPT, t[3]),
            change(incident_id, IncidentState.ACCEPTED, t[3], first, (party,), accepted_at=t[3]),
            moving(2, t[3]),
            moving(1, t[4]),
            respond(ResponseAction.ON_SCENE, t[5]),
            respond(ResponseAction.RESOLVED, t[6]),
            change(incident_id, IncidentState.RESOLVED, t[6], first, (party,), resolved_at=t[6]),
        ]  # fmt: skip
        if self._n % 20 == 0:
            command = CommanderCommand(
                event_id=self._id(), incident_id=incident_id, action=CommanderAction.CANCEL,
                reason="duplicate", actor="commander-1", issued_at=min(t[6], datetime.now(UTC)),
            )  # fmt: skip
            outcome = CommandOutcome.of(
                command, result=CommandResult.REFUSED, reason="already resolved", at=t[6]
            )
            events += [command, outcome]
        return events

    def records(self, alarms: list[list[EventModel]]) -> list[tuple[str, int | None, bytes, bytes]]:
        """Return the Kafka records (catalog topic, partition or None, key, value) that write
        these alarms' events: classified alarms bundled per partition, BUNDLE_ALARMS at a time."""
        out: list[tuple[str, int | None, bytes, bytes]] = []
        for at in range(0, len(alarms), BUNDLE_ALARMS):
            classified: list[tuple[bytes, bytes]] = []
            for events in alarms[at : at + BUNDLE_ALARMS]:
                for event in events:
                    pair = (key_of(event), encode(event))
                    spec = spec_for(type(event))
                    if spec is ALARMS_CLASSIFIED:
                        classified.append(pair)
                    else:
                        out.append((spec.name, None, *pair))
            for partition, pairs in by_partition(classified, self._partitions).items():
                for value in bundle(pairs):
                    out.append((ALARMS_CLASSIFIED.name, partition, pairs[0][0], value))
        return out


def event_count(alarms: list[list[EventModel]]) -> int:
    """Return how many events (records inside bundles counted one by one) the alarms make."""
    return sum(len(events) for events in alarms)


# -- the parts ---------------------------------------------------------------------------------


@dataclass
class Fresh:
    """Fresh topics (catalog name -> name on the broker) and a fresh schema."""

    topics: dict[str, str]
    schema: str


async def fresh(bootstrap: str, url: str, partitions: int) -> Fresh:
    """Create the sink's topics under a fresh prefix and a fresh, migrated schema."""
    tag = uuid.uuid4().hex[:8]
    topics = {name: f"b{tag}.{name}" for name in catalog_topics()}
    await ensure_topics(bootstrap, [TopicDecl(n, partitions) for n in topics.values()])
    schema = f"bench_{tag}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await migrate(conn)
    finally:
        await conn.close()
    return Fresh(topics, schema)


async def write_all(
    bootstrap: str, topics: dict[str, str], records: list[tuple[str, int | None, bytes, bytes]]
) -> None:
    """Write records as fast as the producer goes (acks=all, idempotent)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
        max_batch_size=256 * 1024, max_request_size=2 * 1024 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        pending = []
        for topic, partition, key, value in records:
            pending.append(await producer.send(topics[topic], value, key=key, partition=partition))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


class Run:
    """One sink on fresh topics and a fresh schema, with every commit it made."""

    def __init__(self, bootstrap: str, url: str, where: Fresh, zone: Zone, batch_max: int) -> None:
        self.commits: list[Committed] = []
        self._bootstrap, self._url, self._where = bootstrap, url, where
        self._zone, self._batch_max = zone, batch_max
        self.pool: asyncpg.Pool | None = None
        self.sink: Sink | None = None

    async def start(self) -> Sink:
        """Start the sink (its own pool on the fresh schema)."""
        self.pool = await asyncpg.create_pool(
            self._url, min_size=1, max_size=4, server_settings={"search_path": self._where.schema}
        )
        specs = {name: TOPICS[catalog] for catalog, name in self._where.topics.items()}
        self.sink = Sink(
            bootstrap=self._bootstrap, pool=self.pool, zone=self._zone, topics=specs,
            group_id=f"bench-sink-{uuid.uuid4().hex[:8]}", batch_max=self._batch_max,
            on_commit=self.commits.append,
        )  # fmt: skip
        await self.sink.start()
        return self.sink

    async def until_read(self, kafka_records: int) -> None:
        """Wait until the sink committed this many Kafka records."""
        sink = self.sink
        assert sink is not None
        while sink.status.kafka_records < kafka_records:
            await asyncio.wait_for(sink.wait_commits(sink.status.batches + 1), GUARD_S)

    async def stop(self) -> None:
        """Stop the sink and close its pool."""
        if self.sink is not None:
            await self.sink.stop()
        if self.pool is not None:
            await self.pool.close()


async def copy_baseline(
    url: str, source_schema: str, state: Path, events: int
) -> tuple[float, int, str]:
    """COPY the rows the sink wrote into an empty schema's tables; return the seconds, the
    rows and the CPU the COPY took per 1,000 of the events that made those rows."""
    target = f"{source_schema}_copy"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{target}"')
        await conn.execute(f'SET search_path TO "{target}"')
        await migrate(conn)
        tables = {t: await conn.fetch(f'SELECT * FROM "{source_schema}".{t}') for t in TABLES}  # noqa: S608
        records = {t: [tuple(r) for r in rows] for t, rows in tables.items() if rows}
        # Measured while the connection is open: a backend's CPU leaves with it.
        before = cpu_seconds(state)
        started = time.perf_counter()
        async with conn.transaction():
            for table, rows in records.items():
                columns = list(tables[table][0].keys())
                await conn.copy_records_to_table(table, records=rows, columns=columns)
        took = time.perf_counter() - started
        used = cpu_per_thousand(before, cpu_seconds(state), events)
        return took, sum(len(r) for r in tables.values()), used
    finally:
        await conn.close()


def decode_baseline(bootstrap: str, topics: dict[str, str]) -> tuple[float, int]:
    """Validate every record of the topics as the sink does, with no database; return the
    seconds the validation took and the events found."""
    messages = asyncio.run(_read_everything(bootstrap, list(topics.values())))
    specs = {name: TOPICS[catalog] for catalog, name in topics.items()}
    now = datetime.now(UTC)
    started = time.perf_counter()
    events = sum(len(sink_records(m, specs[m.topic], now=now)) for m in messages)
    return time.perf_counter() - started, events


async def _read_everything(bootstrap: str, names: list[str]) -> list[Any]:
    consumer = AIOKafkaConsumer(
        *names, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )  # fmt: skip
    await consumer.start()
    try:
        out: list[Any] = []
        idle = 0
        while idle < 10:
            batch = await consumer.getmany(timeout_ms=300, max_records=10000)
            idle = 0 if batch else idle + 1
            for messages in batch.values():
                out.extend(messages)
        return out
    finally:
        await consumer.stop()


# -- the paced producer (a process of its own) -------------------------------------------------


def paced_producer(
    bootstrap: str,
    topics: dict[str, str],
    rate: float,
    duration_s: float,
    new_share: float,
    partitions: int,
    ready: Any,
    go: Any,
    done: Any,
) -> None:
    """Build rate x duration alarms, say ready, and on go write each alarm's records when it
    is due (every 10 ms, what is due); put (kafka records, events, last send time) on done."""
    mix = Mix(seed=7, new_share=new_share, partitions=partitions)
    count = int(rate * duration_s)
    alarms = mix.alarms(count, datetime.now(UTC) - timedelta(minutes=10), 1 / rate)
    per_tick = [mix.records(alarms[i : i + max(1, int(rate / 100))])
                for i in range(0, count, max(1, int(rate / 100)))]  # fmt: skip
    ready.set()
    go.wait()
    sent = asyncio.run(_paced(bootstrap, topics, per_tick))
    done.put((sum(len(t) for t in per_tick), event_count(alarms), sent))


async def _paced(
    bootstrap: str,
    topics: dict[str, str],
    per_tick: list[list[tuple[str, int | None, bytes, bytes]]],
) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2,
        max_request_size=2 * 1024 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        start = time.perf_counter()
        pending = []
        for tick, records in enumerate(per_tick):
            due = start + tick * 0.01
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            for topic, partition, key, value in records:
                pending.append(
                    await producer.send(topics[topic], value, key=key, partition=partition)
                )
            if len(pending) > 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.time()
    finally:
        await producer.stop()


# -- several sink processes in one group -------------------------------------------------------


def fleet_sink(
    index: int,
    bootstrap: str,
    url: str,
    schema: str,
    topics: dict[str, str],
    group_id: str,
    batch_max: int,
    go: Any,
    stop: Any,
    out: Any,
) -> None:
    """Run one sink of a fleet in this (spawned) process, as `python -m consumers.sink` runs
    it (GC tuned, its own pool of 4); put ("ready", index, pid), then one ("commit", index,
    at, kafka records, events, lag) per batch, then ("done", index, rows written) on out."""
    collect_less()
    asyncio.run(_fleet_sink(index, bootstrap, url, schema, topics, group_id, batch_max, go,
                            stop, out))  # fmt: skip


async def _fleet_sink(
    index: int,
    bootstrap: str,
    url: str,
    schema: str,
    topics: dict[str, str],
    group_id: str,
    batch_max: int,
    go: Any,
    stop: Any,
    out: Any,
) -> None:
    zone = load_zone(default_zone_path())
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=4, server_settings={"search_path": schema}
    )

    def report(done: Committed) -> None:
        out.put(("commit", index, done.at, done.kafka_records, done.result.records,
                 done.oldest_delay_s))  # fmt: skip

    sink = Sink(
        bootstrap=bootstrap, pool=pool, zone=zone,
        topics={name: TOPICS[catalog] for catalog, name in topics.items()},
        group_id=group_id, batch_max=batch_max, on_commit=report,
    )  # fmt: skip
    out.put(("ready", index, os.getpid()))
    await asyncio.to_thread(go.wait)
    await sink.start()
    watch = asyncio.create_task(_watch_partitions(sink, index, out))
    await asyncio.to_thread(stop.wait)
    watch.cancel()
    await sink.stop()
    await pool.close()
    out.put(("done", index, dataclasses.asdict(sink.status.written)))


async def _watch_partitions(sink: Sink, index: int, out: Any) -> None:
    """Put ("partitions", index, at, how many) on out whenever the sink's share changes."""
    held = -1
    while True:
        if (now := len(sink.partitions())) != held:
            held = now
            out.put(("partitions", index, time.time(), now))
        await asyncio.sleep(0.05)


@dataclass(frozen=True, slots=True)
class Commit:
    """One batch a process of a fleet committed (or tried to: a commit refused after a
    rebalance is reported too, and its records read again by the partition's new owner)."""

    sink: int
    at: float
    kafka_records: int
    events: int
    oldest_delay_s: float


class Fleet:
    """N sink processes (spawned, each a real consumers.sink.service.Sink) in one consumer
    group on fresh topics and a fresh schema, with every commit each of them made."""

    def __init__(self, n: int, bootstrap: str, url: str, where: Fresh, batch_max: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._go, self._stop, self._out = context.Event(), context.Event(), context.Queue()
        self.group_id = f"bench-sink-{uuid.uuid4().hex[:8]}"
        self._bootstrap, self._where = bootstrap, where
        self.processes = [
            context.Process(
                target=fleet_sink,
                args=(
                    i,
                    bootstrap,
                    url,
                    where.schema,
                    where.topics,
                    self.group_id,
                    batch_max,
                    self._go,
                    self._stop,
                    self._out,
                ),
            )
            for i in range(n)
        ]
        self.pids: list[int] = []
        self.commits: list[Commit] = []
        # (process, time.time(), partitions held from then on), as each process saw it.
        self.shares: list[tuple[int, float, int]] = []
        self.written = WriteResult()
        self._done = 0
        self._heard = asyncio.Condition()
        self._listener: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        """Spawn the processes and wait until each has its pool open and its sink built."""
        for process in self.processes:
            process.start()
        self._listener = asyncio.create_task(self._listen())
        await self._wait(lambda: len(self.pids) == len(self.processes))

    def go(self) -> None:
        """Start every sink at once (each joins the group and reads)."""
        self._go.set()

    async def stop(self) -> None:
        """Stop every sink (each leaves the group), gather what each wrote, end the processes."""
        self._stop.set()
        await self._wait(lambda: self._done == len(self.processes))
        if self._listener is not None:
            self._listener.cancel()
        for process in self.processes:
            await asyncio.to_thread(process.join)

    async def wait_commits(self, count: int, since: int = 0) -> None:
        """Wait until the fleet has reported count commits after the first since."""
        await self._wait(lambda: len(self.commits) - since >= count)

    async def until_stored(self, partitions: int) -> None:
        """Wait until the group's committed offsets reach the end of every partition."""
        names = list(self._where.topics.values())
        tps = [TopicPartition(name, p) for name in names for p in range(partitions)]
        reader = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None)
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await reader.start()
        await admin.start()
        try:
            end = await reader.end_offsets(tps)
            started = time.perf_counter()
            while True:
                held = await admin.list_consumer_group_offsets(self.group_id)
                if all(tp in held and held[tp].offset >= end[tp] for tp in tps if end[tp]):
                    return
                if time.perf_counter() - started > GUARD_S:
                    raise TimeoutError("the fleet did not store every record")
                await asyncio.sleep(0.1)
        finally:
            await admin.close()
            await reader.stop()

    async def _wait(self, done: Callable[[], bool]) -> None:
        async with self._heard:
            await asyncio.wait_for(self._heard.wait_for(done), GUARD_S)

    async def _listen(self) -> None:
        while True:
            try:
                message = await asyncio.to_thread(self._out.get, True, 0.5)
            except queue.Empty:
                continue
            kind, index, *rest = message
            if kind == "ready":
                self.pids.append(rest[0])
            elif kind == "commit":
                self.commits.append(Commit(index, *rest))
            elif kind == "partitions":
                self.shares.append((index, *rest))
            else:
                self.written.add(WriteResult(**rest[0]))
                self._done += 1
            async with self._heard:
                self._heard.notify_all()


# -- CPU ---------------------------------------------------------------------------------------


def cpu_seconds(state: Path, sinks: Sequence[int] = ()) -> dict[str, float]:
    """Return the CPU seconds so far of the sink (this process, else the sink processes of
    these ids), of the stack's PostgreSQL (server and backends) and of its Kafka broker: on a
    shared two-core machine the CPU spent per event says more than the wall clock."""
    groups: dict[str, list[psutil.Process]] = {
        "sink": [psutil.Process(pid) for pid in sinks] or [psutil.Process()],
        "postgres": [],
        "kafka": [],
    }
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if str(state) not in command:
            continue
        if "java" in command:
            groups["kafka"].append(process)
        elif "postgres" in command:
            groups["postgres"] += [process, *process.children(recursive=True)]
    used = {}
    for name, processes in groups.items():
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        used[name] = total
    return used


def cpu_per_thousand(before: dict[str, float], after: dict[str, float], events: int) -> str:
    """Return 'sink 12.3 postgres 4.5 kafka 0.6' ms of CPU per 1,000 events."""
    return "  ".join(
        f"{name} {1000 * (after[name] - before[name]) / events * 1000:.1f}" for name in after
    )


def load() -> str:
    """Return the machine's load averages (1, 5 min), for the reader of the figures."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f}"


# -- the report --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def rate_between(commits: list[Committed]) -> tuple[float, int, float]:
    """Return events/s from the first commit to the last, the events and the seconds (the
    first batch's events are not counted: its reading started before the clock)."""
    events = sum(c.result.records for c in commits[1:])
    seconds = commits[-1].at - commits[0].at
    return (events / seconds if seconds > 0 else float("nan")), events, seconds


async def backlog(args: argparse.Namespace, settings: Any, zone: Zone) -> None:
    """Measure the sink (one process, then each --sinks count) on a backlog, and the baselines
    on the same records and rows."""
    bootstrap, url = settings.bootstrap_servers, stack.postgres_url(settings)
    mix = Mix(seed=1, new_share=args.new_share, partitions=settings.kafka_partitions)
    per_alarm = 2 + (1 - args.new_share) + args.new_share * 11.2
    count = max(1, int(args.events / per_alarm))
    alarms = mix.alarms(count, datetime.now(UTC) - timedelta(days=1), 0.01)
    events = event_count(alarms)
    records = mix.records(alarms)
    print(f"backlog: {count} alarms, {events} events in {len(records)} Kafka records")
    said = [load()]
    lines: list[tuple[str, int, float, str]] = []
    notes: list[str] = []
    schemas: dict[str, str] = {}
    first: Fresh | None = None
    for n in args.sinks:
        # Each count on topics and a schema of its own, written with the very same records.
        where = await fresh(bootstrap, url, settings.kafka_partitions)
        first = first or where
        await write_all(bootstrap, where.topics, records)
        label = "1 process" if n == 1 else f"{n} processes"
        schemas[label] = where.schema
        if n == 1:
            line, note = await one_backlog(args, settings, zone, where, events, len(records))
        else:
            line, note = await fleet_backlog(args, settings, n, where, events, len(records))
        lines.append(line)
        notes.append(note)
    assert first is not None
    state = settings.state_dir
    cpu_before = cpu_seconds(state)
    decode_s, decoded = await asyncio.to_thread(decode_baseline, bootstrap, first.topics)
    cpu_decode = cpu_per_thousand(cpu_before, cpu_seconds(state), events)
    copy_s, rows, cpu_copy = await copy_baseline(url, first.schema, state, events)
    lines.append(("baseline: validation alone (no database)", decoded, decode_s, cpu_decode))
    lines.append(("baseline: bare asyncpg COPY of the same rows", events, copy_s, cpu_copy))
    said.append(load())
    print(
        f"\nbacklog of {events} events ({len(records)} Kafka records), batch_max "
        f"{args.batch_max}; {said[0]} before, {said[1]} after"
    )
    print(
        f"{'variant':<48} {'events':>9} {'seconds':>8} {'events/s':>10}   CPU ms per 1,000 "
        "events (whole variant)"
    )
    for name, n, took, cpu in lines:
        print(f"{name:<48} {n:>9} {took:>8.2f} {n / took:>10.0f}   {cpu}")
    for note in notes:
        print(note)
    counts = {label: await table_rows(url, schema) for label, schema in schemas.items()}
    for label, counted in counts.items():
        print(f"rows in the tables, sink {label}: " + ", ".join(
            f"{table.removeprefix('record_')} {n}" for table, n in counted.items()))  # fmt: skip
    same = len({tuple(c.values()) for c in counts.values()}) == 1
    print(
        f"rows copied by the baseline {rows}; the same rows for every sink count: "
        f"{'yes' if same else 'NO'}"
    )


async def one_backlog(
    args: argparse.Namespace, settings: Any, zone: Zone, where: Fresh, events: int, records: int
) -> tuple[tuple[str, int, float, str], str]:
    """One sink in this process reads the backlog: its table line and what it wrote."""
    bootstrap, url = settings.bootstrap_servers, stack.postgres_url(settings)
    state = settings.state_dir
    run = Run(bootstrap, url, where, zone, args.batch_max)
    cpu_before = cpu_seconds(state)
    sink = await run.start()
    try:
        await run.until_read(records)
        # Before the pool closes: a backend's CPU leaves with it.
        cpu_sink = cpu_per_thousand(cpu_before, cpu_seconds(state), events)
    finally:
        await run.stop()
    _per_s, counted, seconds = rate_between(run.commits)
    line = ("sink, 1 process (validate + write + commit)", counted, seconds, cpu_sink)
    return line, f"sink, 1 process: {len(run.commits)} batches, {written(sink.status.written)}"


async def fleet_backlog(
    args: argparse.Namespace, settings: Any, n: int, where: Fresh, events: int, records: int
) -> tuple[tuple[str, int, float, str], str]:
    """N sink processes in one group read the backlog: the table line (events/s from the
    first commit of any to the last of all) and the rate once every process had committed."""
    bootstrap, url = settings.bootstrap_servers, stack.postgres_url(settings)
    state = settings.state_dir
    fleet = Fleet(n, bootstrap, url, where, args.batch_max)
    await fleet.prepare()
    samples: list[tuple[int, int]] = []
    sampler = asyncio.create_task(sample_backends(url, samples))
    try:
        cpu_before = cpu_seconds(state, fleet.pids)
        fleet.go()
        await fleet.until_stored(settings.kafka_partitions)
        cpu_sink = cpu_per_thousand(cpu_before, cpu_seconds(state, fleet.pids), events)
    finally:
        sampler.cancel()
        await fleet.stop()
    commits = sorted(fleet.commits, key=lambda c: c.at)
    # The first batch's events are not counted: its reading started before the clock.
    counted = events - commits[0].events
    seconds = commits[-1].at - commits[0].at
    line = (f"sink, {n} processes in one group", counted, seconds, cpu_sink)
    firsts = {c.sink: c.at for c in reversed(commits)}
    all_in = max(firsts.values())
    later = [c for c in commits if c.at > all_in]
    steady = sum(c.events for c in later)
    span = commits[-1].at - all_in
    read = sum(c.kafka_records for c in commits)
    shares = ", ".join(
        f"#{i} {held} at {at - commits[0].at:+.2f} s" for i, at, held in sorted(fleet.shares)
    )
    per = ", ".join(
        f"#{i} {sum(1 for c in commits if c.sink == i)} batches "
        f"{sum(c.events for c in commits if c.sink == i)} events"
        for i in range(n)
    )
    busy = sum(1 for running, _ in samples if running)
    waiting = sum(1 for _, locked in samples if locked)
    note = (
        f"sink, {n} processes: PostgreSQL sampled every 50 ms ({len(samples)} samples): a "
        f"sink's statement running in {100 * busy / max(1, len(samples)):.0f} %, one waiting "
        f"for another sink's lock in {100 * waiting / max(1, len(samples)):.0f} %; "
        f"partitions held (from the first commit) {shares}; {per}; "
        f"{read - records} Kafka records read twice (a rebalance); "
        f"{len(firsts)} of {n} committed, the last first commit "
        f"{all_in - commits[0].at:.2f} s after the first: from then {steady} events in "
        f"{span:.2f} s = {steady / span if span > 0 else float('nan'):.0f} events/s; "
        f"{written(fleet.written)}"
    )
    return line, note


async def sample_backends(url: str, samples: list[tuple[int, int]]) -> None:
    """Every 50 ms, note how many statements of the sinks run in PostgreSQL and how many of
    them wait for a lock another holds (two sinks writing one alarm's row), until cancelled."""
    conn = await asyncpg.connect(url)
    try:
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) AS running,"
                " count(*) FILTER (WHERE wait_event_type = 'Lock') AS locked"
                " FROM pg_stat_activity WHERE backend_type = 'client backend'"
                " AND state = 'active' AND pid <> pg_backend_pid()"
            )
            assert row is not None
            samples.append((row["running"], row["locked"]))
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def written(result: WriteResult) -> str:
    """Return the rows a sink's writes added or changed, table by table."""
    return (
        f"rows written: alarms {result.alarms}, incidents {result.incidents}, events "
        f"{result.events}, units {result.units}, positions {result.positions}, dead letters "
        f"{result.dead_letters}, skipped {result.skipped}"
    )


async def table_rows(url: str, schema: str) -> dict[str, int]:
    """Return how many rows each record table of the schema holds (every table is keyed by
    its event's id, so a record written twice is one row)."""
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{schema}".{t}') for t in TABLES}  # noqa: S608
    finally:
        await conn.close()


async def paced(args: argparse.Namespace, settings: Any, zone: Zone, rate: float, n: int) -> None:
    """Measure the lag of n sink processes (1: in this process) while alarms flow at a rate,
    written by a process of their own."""
    bootstrap, url = settings.bootstrap_servers, stack.postgres_url(settings)
    where = await fresh(bootstrap, url, settings.kafka_partitions)
    context = multiprocessing.get_context("spawn")
    ready, go, done = context.Event(), context.Event(), context.Queue()
    producer = context.Process(
        target=paced_producer,
        args=(bootstrap, where.topics, rate, args.duration, args.new_share,
              settings.kafka_partitions, ready, go, done),
    )  # fmt: skip
    producer.start()
    run = Run(bootstrap, url, where, zone, args.batch_max) if n == 1 else None
    fleet = Fleet(n, bootstrap, url, where, args.batch_max) if n > 1 else None
    try:
        print(f"\npaced: building {int(rate * args.duration)} alarms in the producer")
        if run is not None:
            await run.start()
        if fleet is not None:
            await fleet.prepare()
            fleet.go()
        await asyncio.to_thread(ready.wait)
        # Warm-up records first: once committed the sinks have joined their group and the
        # lags measured are the sinks', not the join's.
        if run is not None:
            await write_all(bootstrap, where.topics, [warm_up(0)])
            await run.until_read(1)
            run.commits.clear()
        if fleet is not None:
            await settle(fleet, bootstrap, where, settings.kafka_partitions)
            fleet.commits.clear()
        go.set()
        records, events, last_sent = await asyncio.to_thread(done.get)
        if run is not None:
            await run.until_read(records + 1)
        if fleet is not None:
            await fleet.until_stored(settings.kafka_partitions)
    finally:
        if run is not None:
            await run.stop()
        if fleet is not None:
            await fleet.stop()
        producer.join()
    if run is not None:
        lags, last = [c.oldest_delay_s for c in run.commits], run.commits[-1].at
    else:
        assert fleet is not None
        lags, last = [c.oldest_delay_s for c in fleet.commits], max(c.at for c in fleet.commits)
    stored_after = last - last_sent
    span = last - (last_sent - args.duration)
    sinks = "1 sink process" if n == 1 else f"{n} sink processes in one group"
    print(
        f"paced, {sinks}: {rate:.0f} alarms/s for {args.duration:.0f} s = {events} events in "
        f"{records} Kafka records ({events / args.duration:.0f} events/s offered), "
        f"batch_max {args.batch_max}; {load()} at the end"
    )
    print(
        f"lag per batch (oldest record's Kafka timestamp to commit), {len(lags)} batches: "
        f"p50 {percentile(lags, 0.5):.3f} s  p99 {percentile(lags, 0.99):.3f} s  "
        f"max {max(lags):.3f} s  mean {statistics.fmean(lags):.3f} s"
    )
    print(
        f"last record stored {stored_after:.3f} s after the producer's last send; "
        f"{events / span:.0f} events/s over the run"
    )


def warm_up(partition: int) -> tuple[str, int | None, bytes, bytes]:
    """Return a units.status record for one partition, written before the load."""
    status = UnitStatus(
        event_id=uuid.uuid4(), unit_id=f"warm-up-{partition}", status=UnitAvailability.OFF_DUTY,
        reported_at=datetime.now(UTC),
    )  # fmt: skip
    return ("units.status", partition, status.unit_id.encode(), encode(status))


async def settle(fleet: Fleet, bootstrap: str, where: Fresh, partitions: int) -> None:
    """Write a warm-up record to every partition, round after round, until every process of
    the fleet committed one in the same round: the group has settled (each holds partitions)."""
    everyone = set(range(len(fleet.processes)))
    for _ in range(30):
        since = len(fleet.commits)
        await write_all(bootstrap, where.topics, [warm_up(p) for p in range(partitions)])
        await fleet.until_stored(partitions)
        # The admin client may see the commit before its report comes through the queue.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.wait_commits(len(everyone), since), 5.0)
        if {c.sink for c in fleet.commits[since:]} == everyone:
            return
    raise RuntimeError("the fleet's group did not settle")


def main() -> int:
    """Start a stack of the benchmark's own, run both measurements, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[2000.0], help="alarms/s of each paced run"
    )
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--new-share", type=float, default=0.2, help="alarms opening an incident")
    parser.add_argument("--batch-max", type=int, default=5000)
    parser.add_argument(
        "--sinks", type=int, nargs="+", default=[1],
        help="sink processes in one group, each count measured (1: in this process)",
    )  # fmt: skip
    parser.add_argument("--skip", choices=("backlog", "paced"), default=None)
    args = parser.parse_args()
    if any(n < 1 for n in args.sinks):
        parser.error("--sinks: each count must be 1 or more")
    state = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    settings = stack.private_settings(state)
    stack.up(settings, print)
    zone = load_zone(default_zone_path())
    collect_less()  # as python -m consumers.sink does
    try:
        if args.skip != "backlog":
            asyncio.run(backlog(args, settings, zone))
        if args.skip != "paced":
            for rate in args.rate:
                for n in args.sinks:
                    asyncio.run(paced(args, settings, zone, rate, n))
    finally:
        stack.down(settings, print)
        # Kafka's and PostgreSQL's files of a run are 3 GB: a benchmark leaves none behind.
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
