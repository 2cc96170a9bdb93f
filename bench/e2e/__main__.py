"""End to end: from the intake's receipt to the job on a unit's phone, at offered rates.

Run from the repository root (about 4 minutes at the defaults):

    python -m bench.e2e                                   # 10, 100, 500, 1000, 2000/s, then on
    python -m bench.e2e --rates 500 --duration 20         # one rate
    python -m bench.e2e --plot-only a.json b.json --png docs/e2e-latency.png

It starts the whole system as `dispatch run` does (`bench/e2e/system.py`) on a Kafka and a
PostgreSQL of its own, makes the demo principals (`simulator.principals`), connects every
unit's phone (the simulator's, in a process of its own: `bench/e2e/phones.py`), measures the
floor (`bench/e2e/floor.py`), then offers each rate for `--duration` seconds through the
intake API from `--load-processes` processes (`bench/e2e/loaders.py`, `bench/e2e/offer.py`)
and waits until the system has settled (`bench/e2e/rates.py`). After the last rate given it
goes on at 1.5 times the last rate until one saturates (see `RateResult.saturated`), at most
to `--max-rate`. Output: the tables printed, the run as JSON and a PNG plot (default under
bench/results/, which git ignores). docs/benchmarks.md ("End to end") has the figures.

What differs from a plain `dispatch run`, for the load (all in the JSON of a run):

- every alarm opens an incident of its own: the demo zone's merge window (repeats of one place
  and kind within 10 minutes join one incident) is set to 1 ms. At 500 alarms a second from
  the zone's 58 places and a dozen kinds, the 10-minute window would merge nearly every alarm
  into a few hundred incidents, and the bench would time merges, which send no job;
- every unit but the guards is copied `--unit-copies` times (the demo zone has 9 patrols),
  and each phone accepts its job at once and then reports its unit available, so that routing
  finds free units at a high rate (a high rate is not all escalations);
- the rate limit per principal is raised to its maximum (100,000 a minute), so the intake
  takes hundreds of alarms a second from one desk and the phones' answers are not throttled;
- an alarm is skipped (and counted) when its poster is more than 0.5 s behind its schedule or
  `--max-in-flight` requests are unanswered, so a saturated rate ends in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.child import REPO_ROOT, Child
from bench.e2e.floor import measure_floor
from bench.e2e.hops import TopicReader
from bench.e2e.loaders import LoadProcesses, LoadSpec, run_loader, write_desk_tokens
from bench.e2e.phones import PhonesSpec, run_phones
from bench.e2e.rates import RateResult, Settle, idle_cores, run_rate
from bench.e2e.report import plot, print_run, write_json
from bench.e2e.system import BENCH_MERGE_WINDOW_S, System, process_tree, running_system
from bench.pipeline.cpu import CpuSampler
from bench.push_fanout import OtherLoad
from dispatch.zone import Zone, load_zone
from infra import stack
from simulator.principals import DemoPrincipals, ensure_demo_principals

RESULTS = REPO_ROOT / "bench" / "results"
DEFAULT_RATES = (10.0, 100.0, 500.0, 1000.0, 2000.0)
WARMUP_RATE = 50.0
UNIT_COPIES = 30
SAMPLE_EVERY_S = 0.5


async def make_principals(postgres_url: str, zone: Zone, path: Path) -> DemoPrincipals:
    """Make the demo principals; write each unit's role and token to path for the phones."""
    conn = await asyncpg.connect(postgres_url)
    try:
        principals = await ensure_demo_principals(conn, zone)
    finally:
        await conn.close()
    tokens = {
        unit_id: [p.role.value, p.token.get_secret_value()]
        for unit_id, p in principals.units.items()
    }
    await asyncio.to_thread(path.write_text, json.dumps(tokens))
    await asyncio.to_thread(path.chmod, 0o600)
    return principals


def machine() -> str:
    """Describe the machine in one line."""
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return (
        f"{os.cpu_count()} cores, {total_kb / 2**20:.1f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def groups_of(system: System, phones_pid: int, load_pids: list[int]) -> dict[str, set[int]]:
    """Return the processes to sample: each service, Kafka, PostgreSQL, the phones, the load
    processes and the driver."""
    groups = {name: process_tree(pid) for name, pid in system.service_pids().items()}
    groups |= {name: process_tree(pid) for name, pid in system.infra_pids().items()}
    groups |= {"phones": {phones_pid}, "load (httpx)": set(load_pids)}
    return groups | {"driver": {os.getpid()}}


async def sample_every(sampler: CpuSampler, every_s: float) -> None:
    """Sample the processes' CPU until cancelled (less often than bench/pipeline does: the
    driver shares two cores with everything it measures)."""
    while True:
        with contextlib.suppress(psutil.Error):
            sampler.sample()
        await asyncio.sleep(every_s)


def next_rates(args: argparse.Namespace, done: list[RateResult]) -> float | None:
    """Return the next rate to offer, or None when done."""
    given = args.rates
    if len(done) < len(given):
        return float(given[len(done)])
    if args.no_beyond or (done and done[-1].saturated):
        return None
    rate = round(done[-1].rate * 1.5, -1)
    return rate if rate <= args.max_rate else None


async def bench(args: argparse.Namespace, state: Path) -> dict[str, Any]:
    """Start everything, measure the floor and every rate; return the run."""
    async with running_system(
        state, merge_window_s=BENCH_MERGE_WINDOW_S, unit_copies=args.unit_copies
    ) as system:
        settings = system.settings
        assert settings.zone_file is not None  # running_system sets it
        zone = load_zone(settings.zone_file)
        bootstrap, url = settings.bootstrap_servers, stack.postgres_url(settings)
        tokens = state / "unit-tokens.json"
        principals = await make_principals(url, zone, tokens)
        phones_spec = PhonesSpec(system.push_url, str(settings.zone_file), str(tokens), bootstrap)
        phones = await Child.start("bench.e2e", "--phones", json.dumps(asdict(phones_spec)))
        desk_tokens = state / "desk-tokens.json"
        await asyncio.to_thread(write_desk_tokens, principals, desk_tokens)
        load_spec = LoadSpec(
            system.intake_url,
            bootstrap,
            str(settings.zone_file),
            str(desk_tokens),
            args.seed,
            args.load_nice,
        )
        offer = await LoadProcesses.start(load_spec, args.load_processes)
        print(f"phones: {await phones.line()}", flush=True)
        sampler = CpuSampler(lambda: groups_of(system, phones.process.pid, offer.pids))
        sampling = asyncio.create_task(sample_every(sampler, SAMPLE_EVERY_S))
        others = OtherLoad(state)
        results: list[RateResult] = []
        try:
            async with TopicReader(bootstrap) as reader:
                idle: dict[str, float] = {}

                async def at(rate: float, duration_s: float) -> RateResult:
                    return await run_rate(
                        rate=rate,
                        duration_s=duration_s,
                        offer=offer,
                        phones=phones,
                        reader=reader,
                        postgres_url=url,
                        sampler=sampler,
                        others=others,
                        settle_by=Settle(quiet_s=args.quiet, drain_s=args.drain),
                        idle_cores=idle,
                        max_in_flight=args.max_in_flight,
                    )

                print(f"warm-up: {WARMUP_RATE:g}/s for {args.warmup:g} s", flush=True)
                await at(WARMUP_RATE, args.warmup)
                floor = await measure_floor(bootstrap, url, args.floor_samples)
                print(f"floor: {floor.summary()}", flush=True)
                idle |= await idle_cores(sampler, args.idle)
                print(f"idle cores: {idle}", flush=True)
                while (rate := next_rates(args, results)) is not None:
                    print(f"rate {rate:g}/s for {args.duration:g} s ...", flush=True)
                    result = await at(rate, args.duration)
                    results.append(result)
                    print(
                        f"  receipted {result.receipted}, jobs {result.jobs} "
                        f"({result.jobs_per_s:g}/s), p99 {result.job_ms['p99']} ms, "
                        f"others {result.others}",
                        flush=True,
                    )
                floor_after = await measure_floor(bootstrap, url, args.floor_samples)
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
            await phones.stop()
            await offer.stop()
    return {
        "command": "python -m bench.e2e " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "started": args.started,
        "merge_window_s": BENCH_MERGE_WINDOW_S,
        "unit_copies": args.unit_copies,
        "load_processes": args.load_processes,
        "load_nice": args.load_nice,
        "units": len(zone.units),
        "rate_limit_per_minute": settings.rate_limit_per_minute,
        "services": sorted(system.service_pids()),
        "floor": floor.summary(),
        "idle_cores": idle,
        "floor_after": floor_after.summary(),
        "rates": [asdict(r) | {"saturated": r.saturated} for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options; run the phones' process, the plot alone, or the whole bench."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--no-beyond", action="store_true", help="only the rates given")
    parser.add_argument("--max-rate", type=float, default=8000.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds at 50/s first")
    parser.add_argument("--floor-samples", type=int, default=300)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampled")
    parser.add_argument("--quiet", type=float, default=3.0, help="settled: no new job this long")
    parser.add_argument("--drain", type=float, default=120.0, help="most to wait after a rate")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=400,
        help="an alarm whose moment comes while this many requests are unanswered is skipped",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--unit-copies",
        type=int,
        default=UNIT_COPIES,
        help="copies of every unit but the guards (1: the demo zone's 53 units)",
    )
    parser.add_argument("--json", type=Path, help="where to write the run")
    parser.add_argument("--png", type=Path, help="where to write the plot")
    parser.add_argument("--label", help="the run's name in the plot")
    parser.add_argument("--plot-only", type=Path, nargs="+", help="plot these JSON runs")
    parser.add_argument(
        "--load-processes", type=int, default=2, help="processes posting the alarms"
    )
    parser.add_argument(
        "--load-nice",
        type=int,
        default=0,
        help="niceness added to the load processes (as root, negative: they post first)",
    )
    parser.add_argument("--phones", help=argparse.SUPPRESS)
    parser.add_argument("--loader", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phones:
        asyncio.run(run_phones(PhonesSpec(**json.loads(args.phones))))
        return 0
    if args.loader:
        asyncio.run(run_loader(LoadSpec(**json.loads(args.loader))))
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    png = args.png or RESULTS / f"e2e-{stamp}.png"
    if args.plot_only:
        runs = [json.loads(path.read_text(encoding="utf-8")) for path in args.plot_only]
        plot(runs, png)
        print(f"plot: {png}")
        return 0
    args.started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as state:
        run = asyncio.run(bench(args, Path(state)))
    run["label"] = args.label or args.started
    run["load_average_at_end"] = os.getloadavg()
    print_run(run)
    path = args.json or RESULTS / f"e2e-{stamp}.json"
    write_json(run, path)
    plot([run], png)
    print(f"\nJSON: {path}\nplot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
