"""The observer: a separate process that times a run from what reaches Kafka."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from bench.pipeline.paced import Latencies, read_records, write_paced
from bench.pipeline.workload import unit_reports
from dispatch.events import IncidentState
from dispatch.zone import load_zone
from streams.bundles import unbundle

REPO_ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 120.0  # no progress for this long: the variant is stuck, not slow


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
    # Paced runs (bench.pipeline.paced): write these records to raw_topic at rate a second once
    # told to go, and time each alarm to its routing decision.
    rate: float = 0.0
    raw_topic: str | None = None
    records_file: str = ""


@dataclass
class Observed:
    """What the observer saw; times are epoch seconds."""

    started: float = math.inf
    counted_at: float | None = None
    routed_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    # Paced runs: milliseconds from an alarm's write to its routing decision, and how long
    # the writer took to write them all (more than alarms / rate: the writer fell behind).
    latency: dict[str, float] = field(default_factory=dict)
    write_seconds: float | None = None


# The changes that decide an alarm: it opened an incident, or it joined one.
DECISIONS = (IncidentState.CLASSIFIED, IncidentState.MERGED)
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


def _tally(
    observed: Observed,
    spec: ObserverSpec,
    record: ConsumerRecord[bytes, bytes],
    latencies: Latencies | None,
) -> None:
    counts = observed.counts
    if latencies is not None and record.topic == spec.raw_topic:
        latencies.wrote(record)
    if record.topic == spec.first_topic:
        observed.started = min(observed.started, record.timestamp / 1000)
        if latencies is not None:
            latencies.located(record)
    if record.topic == spec.count_topic:
        # A bundle (streams.bundles) counts its records.
        counts["records"] = counts.get("records", 0) + len(unbundle(record))
        if counts["records"] >= spec.expect and observed.counted_at is None:
            observed.counted_at = time.time()
    if record.topic == spec.state_topic:
        # A byte search, not a parse: the observer stays light on a machine of two cores.
        value = record.value or b""
        for state, marker in STATE_MARKERS.items():
            if marker in value:
                counts[state] = counts.get(state, 0) + 1
                if latencies is not None and state in DECISIONS:
                    latencies.decided(record, merged=state == IncidentState.MERGED)
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
    latencies = None
    writer: asyncio.Future[float] | None = None
    if spec.rate and spec.raw_topic:
        alarms = read_records(spec.records_file)
        latencies = Latencies()
        latencies.expect(alarms)
        topics.append(spec.raw_topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=spec.bootstrap, enable_auto_commit=False)
    await consumer.start()
    observed = Observed()
    reporter = asyncio.create_task(_keep_units_reporting(spec))
    try:
        tps = [TopicPartition(t, p) for t in set(topics) for p in range(spec.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        print("ready", flush=True)
        if latencies is not None and spec.raw_topic:
            # The variant is running once the benchmark says go.
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            writer = asyncio.ensure_future(
                write_paced(spec.bootstrap, spec.raw_topic, alarms, spec.rate)
            )
        last_progress = time.monotonic()
        progress = 0
        done_at: float | None = None
        # After the last expected output, read one more second for the trailing effects.
        while done_at is None or time.monotonic() - done_at < 1.0:
            batches = await consumer.getmany(timeout_ms=50, max_records=5000)
            for records in batches.values():
                for record in records:
                    _tally(observed, spec, record, latencies)
            # Progress is records towards the end, not any record: a stuck pipeline keeps
            # writing state changes for its deadlines.
            counts = observed.counts
            now_at = (
                counts.get("records", 0) + counts.get("classified", 0) + counts.get("merged", 0)
            )
            if now_at > progress:
                progress, last_progress = now_at, time.monotonic()
            elif time.monotonic() - last_progress > HANG_GUARD_S:
                observed.error = f"no progress for {HANG_GUARD_S:.0f} s; saw {observed.counts}"
                break
            finished = observed.counted_at and (observed.routed_at or not spec.state_topic)
            if done_at is None and finished:
                done_at = time.monotonic()
        if writer is not None and latencies is not None:
            observed.write_seconds = await writer
            observed.latency = latencies.summary()
    finally:
        reporter.cancel()
        with suppress(asyncio.CancelledError):
            await reporter
        if writer is not None and not writer.done():
            writer.cancel()
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
            "bench.pipeline",
            "--observe",
            json.dumps(asdict(spec)),
            stdin=asyncio.subprocess.PIPE,
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

    async def go(self) -> None:
        """Tell a paced observer that the variant runs: it starts writing the alarms."""
        if self.process.stdin is None:
            raise RuntimeError("the observer's stdin is not a pipe")
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

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
