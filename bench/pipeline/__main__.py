"""Alarms per second through classify + route: the stage workers against bare aiokafka loops.

Run from the repository root:

    python -m bench.pipeline --alarms 20000

It starts its own Kafka broker through the project's launcher (a temporary state directory,
free ports) and stops it at the end, also on error. Each variant gets fresh topics holding the
same pre-produced alarms and unit reports; its clock runs from the first record it writes to
the moment an observer process sees its last expected output (all alarms on
`alarms.classified` for classify, a classified or merged state change for each on
`incidents.state` for route). Two workloads: `mixed` (about 95 % of alarms open an incident)
and `storm` (every alarm at one of the zone's places, inside one merge window).

Variants: `bare passthrough` (raw bytes consumed and produced again: Kafka's own cost),
`worker passthrough` (the same through one stage worker, `streams.worker`: the runner's own
cost per hop), `same logic, no kafka` (the stages' handlers over in-memory lists: the logic's
own cost), `bare same logic` (the same handlers driven by plain aiokafka loops in one process:
the reference of the ratio column), `one process` (streams.pipeline, every stage in this
process) and `worker per stage` (as `dispatch run` ships it: one worker process per stage).
A second table gives the CPU each variant's processes, the broker and the observer spent per
alarm over the timed run. `--rate R` writes the alarms at R a second while
each variant runs instead, and a third table gives each alarm's time to its routing decision.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.pipeline.cpu import CpuSampler
from bench.pipeline.observer import STATE_MARKERS, Observer, ObserverSpec, observe
from bench.pipeline.paced import write_records
from bench.pipeline.variants import (
    LATE_INPUT,
    NO_KAFKA,
    TABLES,
    VARIANTS,
    Context,
    WorkerSpec,
    fresh_prefix,
    run_worker,
    without_kafka,
)
from bench.pipeline.workload import Workload, build_workload, unit_reports
from dispatch.settings import Settings
from dispatch.zone import default_zone_path
from infra.kafka import KafkaBroker
from infra.stack import private_settings
from infra.topics import TopicDecl, catalog_declarations, ensure_topics
from streams.pipeline import load_zone_and_rules

# What warms the broker up: both kinds of client, every topic and changelog the variants use.
WARMUP_VARIANTS = ("bare same logic", "worker per stage")
DEFAULT_VARIANTS = (
    "bare passthrough",
    "worker passthrough",
    NO_KAFKA,
    "bare same logic",
    "one process",
    "worker per stage",
)


@dataclass(frozen=True)
class Row:
    """One variant's figures on one workload: seconds until each stage's last output."""

    workload: str
    variant: str
    alarms: int
    stages: dict[str, float]
    counts: dict[str, int]
    others: float  # cores kept busy by other processes of the machine meanwhile
    # CPU milliseconds per alarm over the timed run: the variant's processes, broker, observer.
    cpu: dict[str, float] = field(default_factory=dict)
    # Paced runs: milliseconds from write to routing decision (n, p50, p95, p99, max).
    latency: dict[str, float] = field(default_factory=dict)


async def declare_topics(ctx: Context) -> None:
    """Declare this run's catalog topics plus the bench's own, all fresh."""
    partitions = ctx.settings.kafka_partitions
    decls = [
        TopicDecl(ctx.topic(d.name), d.partitions, d.compacted, d.configs)
        for d in catalog_declarations(ctx.settings)
    ]
    decls.append(TopicDecl(ctx.topic("bench.out"), partitions))
    for table in TABLES:
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
    """Return this process, the processes it started (workers) and the broker."""
    children = {child.pid for child in psutil.Process().children(recursive=True)}
    return {os.getpid(), KafkaBroker(settings).pid_file.live_pid() or 0} | children


def others_busy(before: dict[int, float], ours: set[int], seconds: float) -> float:
    """Return how many cores other processes kept busy since `before` (the machine is shared)."""
    after = cpu_by_process()
    spent = sum(t - before.get(pid, 0.0) for pid, t in after.items() if pid not in ours)
    return spent / seconds


async def measure(
    settings: Settings, workload: Workload, variant: str, refresh_s: float, rate: float = 0.0
) -> Row:
    """Run one variant on fresh topics holding the workload; return its figures.

    With a rate, the observer writes the alarms at that rate once the variant runs, and times
    each to its routing decision (bench.pipeline.paced).
    """
    zone, rules = load_zone_and_rules(settings)
    ctx = Context(settings, zone, rules, fresh_prefix())
    if variant == NO_KAFKA:
        return in_memory_row(ctx, workload)
    await declare_topics(ctx)
    bootstrap = settings.bootstrap_servers
    late = variant in LATE_INPUT and not rate
    if not (late or rate):
        await produce_all(bootstrap, ctx.topic("alarms.raw"), workload.records)
    records_file = ""
    if rate:
        records_file = str(settings.state_dir / f"{ctx.prefix}alarms")
        write_records(records_file, workload.records)
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
        rate=rate,
        raw_topic=ctx.topic("alarms.raw") if rate else None,
        records_file=records_file,
    )
    observer = await Observer.start(spec)
    broker = KafkaBroker(settings).pid_file.live_pid() or 0

    def groups() -> dict[str, set[int]]:
        variant = {os.getpid()} | {c.pid for c in psutil.Process().children(recursive=True)}
        return {
            "variant": variant - {observer.process.pid, broker},
            "broker": {broker},
            "observer": {observer.process.pid},
        }

    sampler = CpuSampler(groups)
    sampling = asyncio.ensure_future(sampler.run())
    before, start = cpu_by_process(), time.monotonic()
    try:
        async with VARIANTS[variant](ctx):
            if late:
                # Written while the variant runs: the producer (tens of thousands of records
                # a second) stays ahead, and the clock starts at the variant's first output.
                await produce_all(bootstrap, ctx.topic("alarms.raw"), workload.records)
            if rate:
                await observer.go()
            ours = our_processes(settings) | {observer.process.pid}
            seen = await observer.result()
            others = others_busy(before, ours, time.monotonic() - start)
            sampler.sample()
    finally:
        sampling.cancel()
        await observer.kill()
    if seen.error or seen.counted_at is None:
        raise RuntimeError(f"{variant} on {workload.name}: {seen.error or 'no result'}")
    stages = {"kafka" if passthrough else "classify": seen.counted_at - seen.started}
    if seen.routed_at is not None:
        stages["route"] = seen.routed_at - seen.started
    spent = sampler.spent(seen.started, seen.routed_at or seen.counted_at)
    cpu = {name: 1000 * seconds / len(workload.records) for name, seconds in spent.items()}
    latency = dict(seen.latency)
    if seen.write_seconds is not None:
        # The rate the writer achieved: below the asked one, the machine could not even write.
        latency["written/s"] = len(workload.records) / seen.write_seconds
    return Row(
        workload.name, variant, len(workload.records), stages, seen.counts, others, cpu, latency
    )


def in_memory_row(ctx: Context, workload: Workload) -> Row:
    """Measure the handlers without Kafka and count their state changes."""
    before = cpu_by_process()
    done = without_kafka(ctx, workload)
    counts: dict[str, int] = {}
    for value in done.written["incidents.state"]:
        for state, marker in STATE_MARKERS.items():
            counts[state] = counts.get(state, 0) + (marker in value)
    # classify is the classify and the merge handlers, as on Kafka (alarms.classified).
    seconds = {"classify": done.seconds["merge"], "route": done.seconds["route"]}
    others = others_busy(before, our_processes(ctx.settings), done.seconds["route"])
    # One process doing nothing else: its CPU time is the elapsed time.
    cpu = {"variant": 1000 * done.seconds["route"] / len(workload.records)}
    return Row(workload.name, NO_KAFKA, len(workload.records), seconds, counts, others, cpu)


def heading(head: str) -> None:
    """Print a table's column names, underlined."""
    print(head)
    print("-" * len(head))


def print_table(rows: Sequence[Row]) -> None:
    """Print a line per variant and stage; ratio is its rate over the bare same-logic loop's.

    `others` is how many of the machine's cores other processes kept busy during the variant.
    """
    head = (
        f"{'workload':<8} {'variant':<30} {'stage':<8} {'alarms':>6} {'seconds':>7} "
        f"{'alarms/s':>8} {'ratio':>5} {'incidents':>9} {'merged':>6} {'dispatched':>10} "
        f"{'escalated':>9} {'others':>6}"
    )
    heading(head)
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


def print_cpu(rows: Sequence[Row]) -> None:
    """Print the CPU milliseconds each variant's processes, the broker and the observer spent
    per alarm over the timed run, and how many cores that kept busy."""
    head = (
        f"{'workload':<8} {'variant':<30} {'cpu ms per alarm:':>17} {'variant':>7} "
        f"{'broker':>6} {'observer':>8} {'total':>6} {'cores':>5}"
    )
    heading(head)
    for row in rows:
        total = sum(row.cpu.values())
        seconds = max(row.stages.values())
        cores = total * row.alarms / seconds / 1000
        print(
            f"{row.workload:<8} {row.variant:<30} {'':>17} {row.cpu.get('variant', 0):>7.3f} "
            f"{row.cpu.get('broker', 0):>6.3f} {row.cpu.get('observer', 0):>8.3f} "
            f"{total:>6.3f} {cores:>5.2f}"
        )


def print_latency(rows: Sequence[Row], rate: float) -> None:
    """Print, for a paced run, each variant's time from an alarm's write to its routing
    decision, and to the classify stage's output (`classify`: the first hop's share)."""
    head = (
        f"{'workload':<8} {'variant':<30} {'asked/s':>7} {'written/s':>9} {'routed/s':>8} "
        f"{'ms p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'timed':>6} "
        f"{'classify p50':>12} {'p99':>7}"
    )
    heading(head)
    for row in rows:
        lat = row.latency
        if "p50" not in lat:
            continue
        routed = row.alarms / row.stages["route"] if "route" in row.stages else 0.0
        print(
            f"{row.workload:<8} {row.variant:<30} {rate:>7.0f} {lat.get('written/s', 0):>9.0f} "
            f"{routed:>8.0f} {lat['p50']:>7.1f} {lat['p95']:>7.1f} {lat['p99']:>7.1f} "
            f"{lat['max']:>7.1f} {lat['n']:>6.0f} {lat['located p50']:>12.1f} "
            f"{lat['located p99']:>7.1f}"
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
    for round_ in range(args.warmup):
        # The broker is a JVM: its first minute of work runs partly interpreted. The first
        # paced run on a fresh broker spent 0.38 ms of broker CPU per alarm, the third 0.14
        # (docs/benchmarks.md), so the measured variants run on a warmed broker.
        for variant in WARMUP_VARIANTS:
            print(f"warming the broker up ({round_ + 1}/{args.warmup}): {variant} ...", flush=True)
            await measure(settings, workloads[0], variant, args.unit_refresh_s)
    rows = []
    failures: list[str] = []
    for workload in workloads:
        for variant in args.variants:
            print(f"running {variant} on {workload.name} ...", flush=True)
            try:
                rows.append(
                    await measure(settings, workload, variant, args.unit_refresh_s, args.rate)
                )
            except RuntimeError as exc:
                # Say so and go on: one stuck variant must not cost the others' figures.
                failures.append(f"{variant} on {workload.name}: {exc}")
    print()
    print_table(rows)
    print()
    print_cpu(rows)
    if args.rate:
        print()
        print_latency(rows, args.rate)
    for failure in failures:
        print(f"FAILED {failure}")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return the event loop factory of that name (None: asyncio's own)."""
    if name == "uvloop":
        import uvloop  # not a dependency: `pip install uvloop` to compare

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


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
        "--warmup",
        type=int,
        default=2,
        help="unmeasured rounds of the first workload through the bare and the Faust stages "
        "before measuring, to warm the broker's JVM up (default: 2)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="write the alarms at this many a second while each variant runs, and time each "
        "alarm to its routing decision (default: all written before the clock starts)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        choices=[NO_KAFKA, *VARIANTS],
        help=f"(default: {list(DEFAULT_VARIANTS)})",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of the variants; asyncio as in the shipped worker (uvloop needs "
        "`pip install uvloop`; the observer always uses asyncio's)",
    )
    parser.add_argument("--observe", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
            runner.run(run_worker(WorkerSpec(**json.loads(args.worker))))
        return
    if args.observe:
        seen = asyncio.run(observe(ObserverSpec(**json.loads(args.observe))))
        print(json.dumps(asdict(seen)), flush=True)
        return
    if args.storm_alarms is None:
        args.storm_alarms = args.alarms
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as state:
        settings = private_settings(Path(state))
        broker = KafkaBroker(settings)
        broker.up(print)
        try:
            with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
                runner.run(run(settings, args))
        finally:
            broker.down(print)


if __name__ == "__main__":
    main()
