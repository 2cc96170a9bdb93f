"""Alarms per second through classify + route: the Faust pipeline against bare aiokafka loops.

Run from the repository root:

    python -m bench.pipeline_throughput --alarms 20000

It starts its own Kafka broker through the project's launcher (a temporary state directory,
free ports) and stops it at the end, also on error. Each variant gets fresh topics holding the
same pre-produced alarms and unit reports; its clock runs from the first record it writes to
the moment an observer process sees its last expected output (all alarms on
`alarms.classified` for classify, a classified or merged state change for each on
`incidents.state` for route). Two workloads: `mixed` (about 95 % of alarms open an incident)
and `storm` (every alarm at one of the zone's places, inside one merge window).

Default variants: `bare passthrough` (raw bytes consumed and produced again: Kafka's own
cost), `same logic, no kafka` (the stages' code over in-memory lists: the logic's own cost),
`bare same logic` (the stages' code as plain aiokafka loops, the reference of the ratio
column) and `faust pipeline` (streams.pipeline as shipped). The other Faust variants and
settings are the investigation of where Faust's time goes; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import faust
import h3
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from dispatch.classify import Rules
from dispatch.events import (
    ClassifiedAlarm,
    EventModel,
    IncidentState,
    InvalidEvent,
    LocatedAlarm,
    PlaceType,
    Position,
    RawAlarm,
    SensorKind,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
    key_of,
)
from dispatch.lifecycle import (
    Effects,
    Incident,
    LifecyclePolicy,
    merge_alarm,
    open_incident,
)
from dispatch.lifecycle.transitions import SYSTEM, state_change
from dispatch.locate import MERGE_CELL_RESOLUTION
from dispatch.plan import assigned_units, plan_dispatch
from dispatch.routing import RoutingPolicy
from dispatch.settings import Settings
from dispatch.triage import OpenMerge, merge_into, triage
from dispatch.zone import UnitKind, Zone, default_zone_path, load_zone
from infra.kafka import KafkaBroker
from infra.topics import TopicDecl, catalog_declarations, ensure_topics
from streams.app import build_app
from streams.dead_letters import dead_letter_for
from streams.pipeline import DEFAULT_MERGE_WINDOW, build_pipeline, load_zone_and_rules
from streams.route import TICK_NAMESPACE
from streams.topics import Topics, bind_topics
from streams.units_board import UnitBoard

REPO_ROOT = Path(__file__).resolve().parents[1]
M_PER_DEG_LAT = 111_195.0
# The mixed workload replays a very busy hour at once: alarms received this far apart, so that
# repeats of one merge cell and kind fall outside the 10-minute merge window and open incidents
# of their own. The storm's alarms all fall inside one window.
MIXED_STEP = timedelta(milliseconds=200)
STORM_STEP = timedelta(milliseconds=10)
# In the mixed workload, every 20th alarm names a zone place, and the alarm before each 20th
# repeats the alarm just before it: it merges.
EVERY = 20
# Without Kafka, every unit reports itself available again after this many alarms of a stage
# (about what --unit-refresh-s does on Kafka at 2,000 alarms/s).
UNITS_REPORT_EVERY = 500
TAKE, TAKE_WITHIN_S = 500, 0.05  # batches of the `faust take` variant
HANG_GUARD_S = 120.0  # no new output for this long: the variant is stuck, not slow

# Five kinds of alarm, in Chinese and English; none names a place of the zone.
TEXTS: tuple[tuple[str, ...], ...] = (
    ("仓库着火了,冒出浓烟", "smoke and flames coming out of a shed roof", "路边一辆车起火"),
    ("有人偷电动车", "my bicycle was stolen from the rack", "店里被盗,收银台少了钱"),
    ("两个人在门口打架", "two men fighting outside a shop", "a brawl at a barbecue stall"),
    ("两户邻居因为噪音发生纠纷", "neighbours in a loud argument over parking", "工人讨薪争执"),
    ("有人翻墙进入院子", "an intruder climbing over the back fence", "仓库门被撬锁"),
)


# -- workload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Alarms as (key, value) records, and how many incidents they should open."""

    name: str
    records: tuple[tuple[bytes, bytes], ...]
    incidents: int


def _alarm(
    n: int, kind: int, at: datetime, source: tuple[SourceKind, str], **where: Any
) -> RawAlarm:
    text = TEXTS[kind][n % len(TEXTS[kind])]
    source_kind, source_id = source
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=at,
        text=text,
        source_kind=source_kind,
        source_id=source_id,
        **where,
    )


def _at_place(zone: Zone, n: int, kind: int, at: datetime, storm: bool) -> RawAlarm:
    """An alarm naming the n-th place as its source would: enterprise desk or sensor, id, name."""
    place = zone.places[n % len(zone.places)]
    if place.type is PlaceType.ENTERPRISE and storm:
        sensor = (SourceKind.SENSOR, f"anti-climb-{n % 3}-{place.id}"[:64])
        return _alarm(
            n, kind, at, sensor, sensor_kind=SensorKind.ANTI_CLIMB, enterprise_id=place.id
        )
    if place.type is PlaceType.ENTERPRISE:
        return _alarm(n, kind, at, (SourceKind.DESK, f"desk-{place.id}"), enterprise_id=place.id)
    if n % 2:
        return _alarm(n, kind, at, (SourceKind.HOTLINE, "hotline-1"), place_id=place.id)
    return _alarm(n, kind, at, (SourceKind.HOTLINE, "hotline-2"), place_name=place.name)


def _at_position(zone: Zone, n: int, kind: int, at: datetime, position: Position) -> RawAlarm:
    """An alarm with a device fix: a guard's handheld, a camera, or a caller's phone."""
    if n % 3 == 0:
        guards = [u.id for u in zone.units if u.kind is UnitKind.GUARD]
        return _alarm(n, kind, at, (SourceKind.GUARD, guards[n % len(guards)]), position=position)
    if n % 3 == 1:
        camera = (SourceKind.SENSOR, f"cam-{n % 800:04d}")
        return _alarm(n, kind, at, camera, sensor_kind=SensorKind.CAMERA_A, position=position)
    return _alarm(n, kind, at, (SourceKind.HOTLINE, f"hotline-{n % 8}"), position=position)


def merge_cells(zone: Zone) -> list[Position]:
    """Return the centre of every h3 merge cell inside the zone's grids."""
    cells: set[str] = set()
    for grid in zone.grids:
        shape = h3.LatLngPoly(list(grid.polygon))
        cells.update(h3.polygon_to_cells(shape, MERGE_CELL_RESOLUTION))
    centres = (h3.cell_to_latlng(cell) for cell in sorted(cells))
    return [Position(lat=lat, lon=lon, accuracy_m=10.0) for lat, lon in centres]


def build_workload(name: str, zone: Zone, rules: Rules, count: int) -> Workload:
    """Make count alarms; `mixed` mostly opens incidents, `storm` repeats places."""
    storm = name == "storm"
    step = STORM_STEP if storm else MIXED_STEP
    start = datetime.now(UTC) - step * count
    cells = merge_cells(zone)
    alarms: list[RawAlarm] = []
    fixes = 0
    for n in range(count):
        at = start + step * n
        if storm:
            alarms.append(_at_place(zone, n, n % len(TEXTS), at, storm=True))
        elif n % EVERY == 0:
            k = n // EVERY
            alarms.append(_at_place(zone, k, k % len(TEXTS), at, storm=False))
        elif n % EVERY == EVERY - 1:
            # Sent again by the same source (its partition, so in order): it must merge.
            again = {"alarm_id": uuid.uuid4(), "received_at": at}
            alarms.append(alarms[-1].model_copy(update=again))
        else:
            # Every cell with every kind before any pair repeats: 3,740 alarms, over 10 minutes.
            kind, cell = divmod(fixes, len(cells))
            alarms.append(_at_position(zone, n, kind % len(TEXTS), at, cells[cell]))
            fixes += 1
    # Count the incidents the merge step should open; this also warms the caches of locate
    # and classify before any variant is timed.
    now = datetime.now(UTC)
    merges: dict[str, OpenMerge] = {}
    opened_count = 0
    for alarm in alarms:
        located = triage(zone, rules, alarm, now=now)
        _, opened = merge_into(located, merges.get(located.merge_key), window=DEFAULT_MERGE_WINDOW)
        if opened is not None:
            merges[located.merge_key] = opened
            opened_count += 1
    records = tuple((key_of(a), encode(a)) for a in alarms)
    return Workload(name=name, records=records, incidents=opened_count)


def unit_reports(zone: Zone) -> list[tuple[bytes, bytes]]:
    """Report every unit available, a little north of where it waits, as of now."""
    out = []
    for n, unit in enumerate(zone.units):
        home = zone.home_position(unit)
        status = UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=unit.id,
            status=UnitAvailability.AVAILABLE,
            position=Position(lat=home.lat + (50 + 7 * n) / M_PER_DEG_LAT, lon=home.lon),
            reported_at=datetime.now(UTC),
        )
        out.append((key_of(status), encode(status)))
    return out


# -- the observer: a separate process that reads outputs and keeps units reporting ----------


@dataclass(frozen=True)
class ObserverSpec:
    """What the observer watches, and what it reports about units meanwhile."""

    bootstrap: str
    first_topic: str  # the earliest timestamp here is when the variant started working
    count_topic: str  # done with the first stage when this holds `expect` records
    state_topic: str | None  # done with routing when `expect` classified/merged changes are here
    expect: int
    partitions: int
    units_topic: str | None = None
    refresh_s: float = 0.0
    zone_file: str = ""


@dataclass
class Observed:
    """What the observer saw; times are epoch seconds."""

    started: float = math.inf
    counted_at: float | None = None
    routed_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


# The incident's own state is followed by previous_state; a party's state is not.
STATE_MARKERS = {
    state: f'"state":"{state}","previous_state"'.encode()
    for state in (
        IncidentState.CLASSIFIED,
        IncidentState.MERGED,
        IncidentState.DISPATCHED,
        IncidentState.ESCALATED,
    )
}


def _tally(observed: Observed, spec: ObserverSpec, record: ConsumerRecord[bytes, bytes]) -> None:
    counts = observed.counts
    if record.topic == spec.first_topic:
        observed.started = min(observed.started, record.timestamp / 1000)
    if record.topic == spec.count_topic:
        counts["records"] = counts.get("records", 0) + 1
        if counts["records"] == spec.expect:
            observed.counted_at = time.time()
    if record.topic == spec.state_topic:
        # A byte search, not a parse: the observer stays light on a machine of two cores.
        value = record.value or b""
        for state, marker in STATE_MARKERS.items():
            if marker in value:
                counts[state] = counts.get(state, 0) + 1
        if counts.get("classified", 0) + counts.get("merged", 0) == spec.expect:
            observed.routed_at = observed.routed_at or time.time()


async def _keep_units_reporting(spec: ObserverSpec) -> None:
    if spec.units_topic is None or spec.refresh_s <= 0:
        return
    zone = load_zone(Path(spec.zone_file))
    producer = AIOKafkaProducer(bootstrap_servers=spec.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        while True:
            await asyncio.sleep(spec.refresh_s)
            for key, value in unit_reports(zone):
                await producer.send(spec.units_topic, value, key=key)
    finally:
        await producer.stop()


async def observe(spec: ObserverSpec) -> Observed:
    """Read the variant's outputs from the start until its last expected output arrives."""
    topics = [spec.first_topic, spec.count_topic] + ([spec.state_topic] if spec.state_topic else [])
    consumer = AIOKafkaConsumer(bootstrap_servers=spec.bootstrap, enable_auto_commit=False)
    await consumer.start()
    observed = Observed()
    reporter = asyncio.create_task(_keep_units_reporting(spec))
    try:
        tps = [TopicPartition(t, p) for t in set(topics) for p in range(spec.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        print("ready", flush=True)
        last_progress = time.monotonic()
        done_at: float | None = None
        # After the last expected output, read one more second for the trailing effects.
        while done_at is None or time.monotonic() - done_at < 1.0:
            batches = await consumer.getmany(timeout_ms=50, max_records=5000)
            for records in batches.values():
                for record in records:
                    _tally(observed, spec, record)
            if batches:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > HANG_GUARD_S:
                observed.error = f"no output for {HANG_GUARD_S:.0f} s; saw {observed.counts}"
                break
            finished = observed.counted_at and (observed.routed_at or not spec.state_topic)
            if done_at is None and finished:
                done_at = time.monotonic()
    finally:
        reporter.cancel()
        with suppress(asyncio.CancelledError):
            await reporter
        await consumer.stop()
    return observed


class Observer:
    """The observer process, started before the variant so it never adds to its CPU."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, spec: ObserverSpec) -> Observer:
        """Start the observer and wait until it is reading."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.pipeline_throughput",
            "--observe",
            json.dumps(asdict(spec)),
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        observer = cls(process)
        if await observer._line() != "ready":
            raise RuntimeError("the observer process did not start")
        return observer

    async def _line(self) -> str:
        if self.process.stdout is None:
            raise RuntimeError("the observer's stdout is not a pipe")
        return (await self.process.stdout.readline()).decode().strip()

    async def result(self) -> Observed:
        """Wait for what the observer saw."""
        line = await self._line()
        await self.process.wait()
        if not line:
            raise RuntimeError(f"the observer exited with {self.process.returncode}")
        return Observed(**json.loads(line))

    async def kill(self) -> None:
        """Stop the observer if it still runs."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


# -- the variants -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Everything a variant needs: settings, domain data, and its own topic prefix."""

    settings: Settings
    zone: Zone
    rules: Rules
    prefix: str
    faust_conf: dict[str, Any] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        """Return the full name of one of this run's topics."""
        return self.prefix + name


E = TypeVar("E", bound=EventModel)
Variant = Callable[[Context], AbstractAsyncContextManager[None]]
Sends = list[Awaitable[Any]]
Handler = Callable[[ConsumerRecord[bytes, bytes], Sends], Awaitable[None]]
# Queue one record (topic, key, value) and return the future of its delivery.
Produce = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[Any]]]


async def consume_in_batches(ctx: Context, topic: str, group: str, handle: Handler) -> None:
    """Consume, handle a batch, wait for its writes, commit; until cancelled."""
    consumer = AIOKafkaConsumer(
        ctx.topic(topic),
        bootstrap_servers=ctx.settings.bootstrap_servers,
        group_id=ctx.prefix + group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            sends: Sends = []
            for records in batches.values():
                for record in records:
                    await handle(record, sends)
            if sends:
                await asyncio.gather(*sends)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


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


@asynccontextmanager
async def bare_passthrough(ctx: Context) -> AsyncIterator[None]:
    """Consume raw alarms and produce the same bytes: the cost of Kafka and aiokafka alone."""
    producer = AIOKafkaProducer(bootstrap_servers=ctx.settings.bootstrap_servers, acks="all")
    await producer.start()

    async def forward(record: ConsumerRecord[bytes, bytes], sends: Sends) -> None:
        sends.append(await producer.send(ctx.topic("bench.out"), record.value, key=record.key))

    try:
        async with running(consume_in_batches(ctx, "alarms.raw", "pass", forward)):
            yield
    finally:
        await producer.stop()


class Store(Protocol):
    """A table of the stages: JSON bytes by key, every change kept in a changelog topic."""

    def get(self, key: bytes) -> bytes | None: ...

    def values(self) -> Iterable[bytes]: ...

    async def put(self, key: bytes, value: bytes | None, sends: Sends) -> None: ...


class ChangelogDict:
    """A dict whose every change is also sent to a compacted topic, as a Faust table does."""

    def __init__(self, topic: str, produce: Produce) -> None:
        self.topic = topic
        self.produce = produce
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def values(self) -> Iterable[bytes]:
        return list(self.data.values())

    async def put(self, key: bytes, value: bytes | None, sends: Sends) -> None:
        if value is None:
            del self.data[key]
        else:
            self.data[key] = value
        sends.append(await self.produce(self.topic, key, value))


class FaustTable:
    """A Faust table behind the Store interface; Faust sends its changelog itself."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.get(key)
        return value

    def values(self) -> Iterable[bytes]:
        return [v for v in self.table.values() if v is not None]

    async def put(self, key: bytes, value: bytes | None, sends: Sends) -> None:
        if value is None:
            del self.table[key]
        else:
            self.table[key] = value


TABLES = ("incident-merges", "incidents", "incident-deadlines")


class BareStages:
    """classify, merge and route with the agents' logic and writes, for any consume loop.

    The tables are dicts of the same JSON bytes, each write also sent to a compacted changelog
    topic as Faust's tables do, so every variant does the same work and keeps the same state;
    or they are Faust tables.
    """

    def __init__(self, ctx: Context, produce: Produce, tables: dict[str, Store] | None) -> None:
        self.ctx = ctx
        self.produce = produce
        self.board = UnitBoard(ctx.zone)
        self.routing = RoutingPolicy()
        self.lifecycle = LifecyclePolicy()
        if tables is None:
            tables = {name: ChangelogDict(ctx.topic(f"bare.{name}"), produce) for name in TABLES}
        self.merges = tables["incident-merges"]
        self.incidents = tables["incidents"]
        self.deadlines = tables["incident-deadlines"]
        self.due = 0

    async def send(self, sends: Sends, topic: str, key: bytes, value: bytes | None) -> None:
        """Queue a write; the batch waits for all of them before committing its input."""
        sends.append(await self.produce(self.ctx.topic(topic), key, value))

    async def decoded(
        self, model: type[E], record: ConsumerRecord[bytes, bytes], sends: Sends, stage: str
    ) -> E | None:
        """Decode, or dead-letter the record as `decode_or_dead_letter` does."""
        try:
            return decode(model, record.value or b"")
        except InvalidEvent as exc:
            letter = dead_letter_for(record, stage=stage, reason=str(exc), errors=tuple(exc.errors))
            await self.send(sends, "alarms.dlq", key_of(letter), encode(letter))
            return None

    async def classify_alarm(self, record: ConsumerRecord[bytes, bytes], sends: Sends) -> None:
        """streams.classify's classify agent (every bench alarm can be located)."""
        alarm = await self.decoded(RawAlarm, record, sends, "classify")
        if alarm is None:
            return
        located = triage(self.ctx.zone, self.ctx.rules, alarm, now=datetime.now(UTC))
        await self.send(sends, "alarms.located", located.merge_key.encode(), encode(located))

    async def merge_alarm(self, record: ConsumerRecord[bytes, bytes], sends: Sends) -> None:
        """streams.classify's merge agent."""
        alarm = await self.decoded(LocatedAlarm, record, sends, "merge")
        if alarm is None:
            return
        key = alarm.merge_key.encode()
        stored = self.merges.get(key)
        current = OpenMerge.model_validate_json(stored) if stored else None
        out, opened = merge_into(alarm, current, window=DEFAULT_MERGE_WINDOW)
        if opened is not None:
            await self.merges.put(key, opened.model_dump_json().encode(), sends)
        await self.send(sends, "alarms.classified", str(out.incident_id).encode(), encode(out))

    async def route_incident(self, record: ConsumerRecord[bytes, bytes], sends: Sends) -> None:
        """streams.route's route agent (no incident closes here: no unit ever responds)."""
        alarm = await self.decoded(ClassifiedAlarm, record, sends, "route")
        if alarm is None:
            return
        await self.board.ready.wait()
        now = datetime.now(UTC)
        key = str(alarm.incident_id).encode()
        stored = self.incidents.get(key)
        if stored is None:
            opened = open_incident(alarm)
            first = state_change(
                opened,
                IncidentState.CLASSIFIED,
                previous=IncidentState.RECEIVED,
                reason=f"{alarm.category} {alarm.priority}",
                actor=SYSTEM,
                at=alarm.classified_at,
            )
            planned = plan_dispatch(
                opened, self.board.index, now=now, routing=self.routing, lifecycle=self.lifecycle
            )
            effects = Effects(opened, state_changes=(first,)).then(planned)
        else:
            effects = merge_alarm(Incident.model_validate_json(stored), alarm)
        await self.publish(key, effects, sends)

    async def publish(self, key: bytes, effects: Effects, sends: Sends) -> None:
        """streams.route's publish: table writes, jobs, units marked assigned, state changes."""
        incident = effects.incident
        await self.incidents.put(key, incident.model_dump_json().encode(), sends)
        if incident.deadlines:
            due = min(d.due_at for d in incident.deadlines).isoformat().encode()
            await self.deadlines.put(key, due, sends)
        elif self.deadlines.get(key) is not None:
            await self.deadlines.put(key, None, sends)
        for job in effects.assignments:
            await self.send(sends, "dispatch.assignments", job.unit_id.encode(), encode(job))
        for unit_id in assigned_units(effects):
            at = effects.assignments[0].dispatched_at
            self.board.reserve(unit_id, at)
            unit = self.board.index.get(unit_id)
            status = UnitStatus(
                event_id=uuid.uuid5(TICK_NAMESPACE, f"{unit_id}:assigned:{at.isoformat()}"),
                unit_id=unit_id,
                status=UnitAvailability.ASSIGNED,
                position=unit.position if unit else None,
                reported_at=at,
            )
            await self.send(sends, "units.status", unit_id.encode(), encode(status))
        for change in effects.state_changes:
            await self.send(sends, "incidents.state", key, encode(change))

    async def scan_deadlines(self) -> None:
        """streams.route's once-a-second timer, as a scan only: nothing falls due in a run."""
        while True:
            await asyncio.sleep(1.0)
            now = datetime.now(UTC)
            self.due = sum(
                datetime.fromisoformat(due.decode()) <= now for due in self.deadlines.values()
            )

    async def dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Dead-letter a units.status record the board could not apply."""
        letter = dead_letter_for(record, stage="route", reason=reason)
        await self.produce(self.ctx.topic("alarms.dlq"), key_of(letter), encode(letter))


@asynccontextmanager
async def bare_same_logic(ctx: Context) -> AsyncIterator[None]:
    """The three stages as plain consume → same logic → produce loops in one process."""
    producer = AIOKafkaProducer(bootstrap_servers=ctx.settings.bootstrap_servers, acks="all")
    await producer.start()
    stages = BareStages(ctx, lambda topic, key, value: producer.send(topic, value, key=key), None)
    bootstrap = ctx.settings.bootstrap_servers
    follow = stages.board.follow(
        bootstrap, ctx.topic("units.status"), stages.dead_letter, asyncio.Event()
    )
    try:
        async with running(
            follow,
            consume_in_batches(ctx, "alarms.raw", "classify", stages.classify_alarm),
            consume_in_batches(ctx, "alarms.located", "merge", stages.merge_alarm),
            consume_in_batches(ctx, "alarms.classified", "route", stages.route_incident),
            stages.scan_deadlines(),
        ):
            yield
    finally:
        await producer.stop()


@asynccontextmanager
async def faust_pipeline(ctx: Context) -> AsyncIterator[None]:
    """streams.pipeline as shipped: classify, merge and route agents on one Faust app."""
    pipeline = build_pipeline(ctx.settings, app_id=f"bench-{ctx.prefix}", topic_prefix=ctx.prefix)
    for name, value in ctx.faust_conf.items():
        setattr(pipeline.app.conf, name, value)
    await pipeline.app.start()
    try:
        yield
    finally:
        await pipeline.app.stop()


@asynccontextmanager
async def faust_app(
    ctx: Context, register: Callable[[faust.App, Topics], None]
) -> AsyncIterator[None]:
    """Run a Faust app of the project's settings with the agents that register adds."""
    app = build_app(ctx.settings, app_id=f"bench-{ctx.prefix}")
    for name, value in ctx.faust_conf.items():
        setattr(app.conf, name, value)
    register(app, bind_topics(app, prefix=ctx.prefix))
    await app.start()
    try:
        yield
    finally:
        await app.stop()


def faust_passthrough(ctx: Context) -> AbstractAsyncContextManager[None]:
    """A Faust agent that forwards each raw alarm's bytes with `await topic.send`."""

    def register(app: faust.App, topics: Topics) -> None:
        out = app.topic(
            ctx.topic("bench.out"),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            internal=False,
        )

        async def forward(stream: Any) -> None:
            async for event in stream.events():
                await out.send(key=event.key, value=event.value)

        app.agent(topics.alarms_raw, name="forward")(forward)

    return faust_app(ctx, register)


def faust_stages(
    ctx: Context, *, batched: bool, faust_tables: bool
) -> AbstractAsyncContextManager[None]:
    """The bare stages' code as Faust agents, sending through `app.producer`.

    batched: `take_events` batches, waiting for the batch's writes; else one event at a time,
    leaving the writes to the flush Faust does before every commit. faust_tables: state in
    Faust tables (use_partitioner, as a take batch has no single current event), else dicts.
    """

    def register(app: faust.App, topics: Topics) -> None:
        def produce(topic: str, key: bytes, value: bytes | None) -> Awaitable[Awaitable[Any]]:
            return app.producer.send(topic, key, value, None, None, None)

        tables: dict[str, Store] | None = None
        if faust_tables:
            tables = {
                name: FaustTable(
                    app.Table(name, default=None, key_type=bytes, value_type=bytes,
                              use_partitioner=True)
                )
                for name in TABLES
            }  # fmt: skip
        stages = BareStages(ctx, produce, tables)

        def agent(handle: Handler) -> Callable[[Any], Awaitable[None]]:
            async def one_by_one(stream: Any) -> None:
                async for event in stream.events():
                    await handle(event.message, [])

            async def in_batches(stream: Any) -> None:
                async for events in stream.take_events(TAKE, within=TAKE_WITHIN_S):
                    sends: Sends = []
                    for event in events:
                        await handle(event.message, sends)
                    await asyncio.gather(*sends)

            return in_batches if batched else one_by_one

        async def follow_units() -> None:
            topic = ctx.topic("units.status")
            bootstrap = ctx.settings.bootstrap_servers
            await stages.board.follow(bootstrap, topic, stages.dead_letter, asyncio.Event())

        app.task(follow_units)
        app.task(stages.scan_deadlines)
        app.agent(topics.alarms_raw, name="classify")(agent(stages.classify_alarm))
        app.agent(topics.alarms_located, name="merge")(agent(stages.merge_alarm))
        app.agent(topics.alarms_classified, name="route")(agent(stages.route_incident))

    return faust_app(ctx, register)


# -- running and reporting ------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One variant's figures on one workload: seconds until each stage's last output."""

    workload: str
    variant: str
    alarms: int
    stages: dict[str, float]
    counts: dict[str, int]
    others: float  # cores kept busy by other processes of the machine meanwhile


async def declare_topics(ctx: Context) -> None:
    """Declare this run's catalog topics plus the bench's own, all fresh."""
    partitions = ctx.settings.kafka_partitions
    decls = [
        TopicDecl(ctx.topic(d.name), d.partitions, d.compacted, d.configs)
        for d in catalog_declarations(ctx.settings)
    ]
    decls.append(TopicDecl(ctx.topic("bench.out"), partitions))
    for table in ("incident-merges", "incidents", "incident-deadlines"):
        decls.append(TopicDecl(ctx.topic(f"bare.{table}"), partitions, compacted=True))
    await ensure_topics(ctx.settings.bootstrap_servers, decls)
    # A new partition refuses writes for a moment after creation; asking each leader for its
    # offsets waits that out, so the untimed pre-production needs no retries.
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.settings.bootstrap_servers)
    await consumer.start()
    try:
        await consumer.end_offsets(
            [TopicPartition(d.name, p) for d in decls for p in range(d.partitions)]
        )
    finally:
        await consumer.stop()


async def produce_all(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
    """Write every record before the clock starts, as fast as the producer batches them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def cpu_by_process() -> dict[int, float]:
    """Return the CPU seconds every process has used so far."""
    used = {}
    for process in psutil.process_iter():
        with suppress(psutil.Error):
            times = process.cpu_times()
            used[process.pid] = times.user + times.system
    return used


def our_processes(settings: Settings) -> set[int]:
    """Return this process and the broker it started."""
    return {os.getpid(), KafkaBroker(settings).pid_file.live_pid() or 0}


def others_busy(before: dict[int, float], ours: set[int], seconds: float) -> float:
    """Return how many cores other processes kept busy since `before` (the machine is shared)."""
    after = cpu_by_process()
    spent = sum(t - before.get(pid, 0.0) for pid, t in after.items() if pid not in ours)
    return spent / seconds


async def measure(
    settings: Settings, workload: Workload, variant: str, refresh_s: float, **conf: Any
) -> Row:
    """Run one variant on fresh topics holding the workload; return its figures."""
    zone, rules = load_zone_and_rules(settings)
    ctx = Context(settings, zone, rules, f"b{uuid.uuid4().hex[:10]}.", faust_conf=conf)
    if variant == NO_KAFKA:
        return await without_kafka(ctx, workload)
    await declare_topics(ctx)
    bootstrap = settings.bootstrap_servers
    await produce_all(bootstrap, ctx.topic("alarms.raw"), workload.records)
    passthrough = "passthrough" in variant
    if not passthrough:
        await produce_all(bootstrap, ctx.topic("units.status"), unit_reports(zone))
    spec = ObserverSpec(
        bootstrap=bootstrap,
        first_topic=ctx.topic("bench.out" if passthrough else "alarms.located"),
        count_topic=ctx.topic("bench.out" if passthrough else "alarms.classified"),
        state_topic=None if passthrough else ctx.topic("incidents.state"),
        expect=len(workload.records),
        partitions=settings.kafka_partitions,
        units_topic=None if passthrough else ctx.topic("units.status"),
        refresh_s=refresh_s,
        zone_file=str(settings.zone_file or default_zone_path()),
    )
    observer = await Observer.start(spec)
    ours = our_processes(settings) | {observer.process.pid}
    before, start = cpu_by_process(), time.monotonic()
    try:
        async with VARIANTS[variant.split(" [")[0]](ctx):
            seen = await observer.result()
            others = others_busy(before, ours, time.monotonic() - start)
    finally:
        await observer.kill()
    if seen.error or seen.counted_at is None:
        raise RuntimeError(f"{variant} on {workload.name}: {seen.error or 'no result'}")
    stages = {"kafka" if passthrough else "classify": seen.counted_at - seen.started}
    if seen.routed_at is not None:
        stages["route"] = seen.routed_at - seen.started
    return Row(workload.name, variant, len(workload.records), stages, seen.counts, others)


NO_KAFKA = "same logic, no kafka"


async def without_kafka(ctx: Context, workload: Workload) -> Row:
    """Run the bare stages' handlers over in-memory lists: the CPU cost of the logic alone."""
    written: dict[str, list[tuple[bytes, bytes | None]]] = defaultdict(list)
    delivered = asyncio.get_running_loop().create_future()
    delivered.set_result(None)

    async def produce(topic: str, key: bytes, value: bytes | None) -> Awaitable[Any]:
        written[topic].append((key, value))
        return delivered

    stages = BareStages(ctx, produce, None)
    reports = [decode(UnitStatus, value) for _, value in unit_reports(ctx.zone)]
    steps = (
        (stages.classify_alarm, list(workload.records)),
        (stages.merge_alarm, written[ctx.topic("alarms.located")]),
        (stages.route_incident, written[ctx.topic("alarms.classified")]),
    )
    before, start = cpu_by_process(), time.perf_counter()
    marks = []
    for handle, records in steps:
        for offset, (key, value) in enumerate(records):
            if offset % UNITS_REPORT_EVERY == 0:
                # What the observer's refresh does on Kafka: every unit available again.
                now = datetime.now(UTC)
                for status in reports:
                    stages.board.apply(status.model_copy(update={"reported_at": now}))
                stages.board.ready.set()
            record = ConsumerRecord("memory", 0, offset, 0, 0, key, value, None, 0, 0, [])
            await handle(record, [])
        marks.append(time.perf_counter() - start)
    counts: dict[str, int] = {}
    for _, value in written[ctx.topic("incidents.state")]:
        for state, marker in STATE_MARKERS.items():
            counts[state] = counts.get(state, 0) + (marker in (value or b""))
    seconds = {"classify": marks[1], "route": marks[2]}
    others = others_busy(before, our_processes(ctx.settings), marks[2])
    return Row(workload.name, NO_KAFKA, len(workload.records), seconds, counts, others)


VARIANTS: dict[str, Variant] = {
    "bare passthrough": bare_passthrough,
    "bare same logic": bare_same_logic,
    "faust pipeline": faust_pipeline,
    "faust passthrough": faust_passthrough,
    "faust take": partial(faust_stages, batched=True, faust_tables=False),
    "faust take+tables": partial(faust_stages, batched=True, faust_tables=True),
    "faust events": partial(faust_stages, batched=False, faust_tables=False),
    "faust events+tables": partial(faust_stages, batched=False, faust_tables=True),
}


DEFAULT_VARIANTS = ("bare passthrough", NO_KAFKA, "bare same logic", "faust pipeline")


def print_table(rows: Sequence[Row]) -> None:
    """Print a line per variant and stage; ratio is its rate over the bare same-logic loop's.

    `others` is how many of the machine's cores other processes kept busy during the variant.
    """
    head = (
        f"{'workload':<8} {'variant':<30} {'stage':<8} {'alarms':>6} {'seconds':>7} "
        f"{'alarms/s':>8} {'ratio':>5} {'incidents':>9} {'merged':>6} {'dispatched':>10} "
        f"{'escalated':>9} {'others':>6}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        base = next(
            (r for r in rows if r.workload == row.workload and r.variant == "bare same logic"),
            None,
        )
        for stage, seconds in row.stages.items():
            ref = base.stages.get(stage, base.stages["route"]) if base else None
            ratio = f"{ref / seconds:.2f}" if ref else "-"
            counts: tuple[str, ...] = ("", "", "", "")
            if stage == "route":
                names = ("classified", "merged", "dispatched", "escalated")
                counts = tuple(str(row.counts.get(name, 0)) for name in names)
            print(
                f"{row.workload:<8} {row.variant:<30} {stage:<8} {row.alarms:>6} {seconds:>7.2f} "
                f"{row.alarms / seconds:>8.0f} {ratio:>5} {counts[0]:>9} {counts[1]:>6} "
                f"{counts[2]:>10} {counts[3]:>9} {row.others:>6.2f}"
            )


async def run(settings: Settings, args: argparse.Namespace) -> None:
    """Build the workloads and measure every variant on each, one after the other."""
    zone, rules = load_zone_and_rules(settings)
    workloads = [build_workload("mixed", zone, rules, args.alarms)]
    if args.storm_alarms:
        workloads.append(build_workload("storm", zone, rules, args.storm_alarms))
    for w in workloads:
        share = 100 * w.incidents / len(w.records)
        print(f"{w.name}: {len(w.records)} alarms, {w.incidents} incidents ({share:.1f} %)")
    rows = []
    for workload in workloads:
        for variant in args.variants:
            print(f"running {variant} on {workload.name} ...", flush=True)
            conf = FAUST_TUNINGS.get(variant.partition(" [")[2].rstrip("]"), {})
            rows.append(await measure(settings, workload, variant, args.unit_refresh_s, **conf))
    print()
    print_table(rows)


# Faust settings tried on top of the shipped app, selectable as e.g. "faust pipeline [linger]".
FAUST_TUNINGS: dict[str, dict[str, Any]] = {
    "linger": {"producer_linger": 0.005},
    "linger+commit": {"producer_linger": 0.005, "broker_commit_every": 1000},
    "linger+buffer": {"producer_linger": 0.005, "stream_buffer_maxsize": 32768},
}


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: Sequence[str] | None = None) -> None:
    """Start a broker, measure every variant, print the table, stop the broker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alarms", type=int, default=20_000, help="alarms in the mixed workload")
    parser.add_argument(
        "--storm-alarms", type=int, default=None, help="alarms in the storm (default: --alarms)"
    )
    parser.add_argument(
        "--unit-refresh-s",
        type=float,
        default=0.25,
        help="every unit reports itself available this often while a variant runs",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        help=f"of {[NO_KAFKA, *VARIANTS]}; a Faust one may end in one of "
        f"{[f'[{name}]' for name in FAUST_TUNINGS]} (default: {list(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--observe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.observe:
        seen = asyncio.run(observe(ObserverSpec(**json.loads(args.observe))))
        print(json.dumps(asdict(seen)), flush=True)
        return
    if args.storm_alarms is None:
        args.storm_alarms = args.alarms
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as state:
        settings = Settings(
            state_dir=Path(state),
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            postgres_port=free_port(),
        )
        broker = KafkaBroker(settings)
        broker.up(print)
        try:
            asyncio.run(run(settings, args))
        finally:
            broker.down(print)


if __name__ == "__main__":
    main()
