"""One fault scenario: the whole system under a steady load through its public doors, with
every zone unit's phone connected, a fault injected mid-load, and the ledger at the end.

The ledger is the simulator's (simulator/report.py): every receipted alarm decided, no job
shown twice on any unit, every unit shown every job sent and told of every job withdrawn.
What each run measured is printed, and appended as a JSON line to the file named by
DISPATCH_FAULT_REPORT when it is set (the figures of docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg

from consumers.db.pool import connection
from dispatch.events import (
    INCIDENTS_STATE,
    IncidentState,
    IncidentStateChange,
    InvalidEvent,
    decode,
)
from dispatch.zone import default_zone_path, load_zone
from infra.stack import postgres_url
from simulator.behaviour import Behaviour
from simulator.principals import ensure_demo_principals
from simulator.report import LedgerReport, summary
from simulator.session import Doors, Simulation
from tests.integration.faults.system import System, running_system
from tests.integration.faults.topics import records_to_end
from tests.integration.faults.trail import why_not_at_rest

# Ten simulated minutes of a unit's job take three real seconds: units come free again.
FAST = Behaviour(think_s=5.0, work_s=300.0, compression=200.0)
SETTLE_S = 240.0  # a hang guard, not a performance bound: the ledger is printed if it fires
# The route stage's own decision about a new incident, stamped with the route stage's clock (a
# `classified` change carries the classify stage's time).
FIRST_DECISIONS = (IncidentState.DISPATCHED, IncidentState.ESCALATED)

Fault = Callable[[System, Simulation], Awaitable[dict[str, float]]]


@dataclass
class Outcome:
    """What one scenario measured."""

    name: str
    sent: int
    receipted: int
    decided: int
    lost: int
    dead_lettered: int
    pushed: int
    shown_twice: int
    units_inconsistent: int
    decision_p50_s: float
    decision_max_s: float
    measured: dict[str, float] = field(default_factory=dict)
    # The commander's escalations, by the first words of their reason.
    escalations: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Pace:
    """The steady load of a scenario and when its fault is injected."""

    rate: float = 10.0
    duration_s: float = 30.0
    fault_after_s: float = 10.0


def fast_zone(directory: Path, *, accept_s: float) -> Path:
    """Write the shipped zone with every acceptance timeout set to accept_s; return its path."""
    text = default_zone_path().read_text(encoding="utf-8")
    line = next(n for n in text.splitlines() if n.startswith("accept_timeout_s"))
    every = ", ".join(f"{p} = {accept_s}" for p in ("P1", "P2", "P3", "P4"))
    short = f"accept_timeout_s = {{ {every} }}"
    path = directory / "zone.toml"
    path.write_text(text.replace(line, short), encoding="utf-8")
    return path


async def run_scenario(
    name: str,
    fault: Fault,
    *,
    pace: Pace = Pace(),
    behaviours: Mapping[str, Behaviour] | None = None,
    seed: int = 7,
    gateways: int = 1,
    **settings: object,
) -> tuple[LedgerReport, Outcome]:
    """Run the system, the load and the fault; return the ledger and what was measured."""
    async with running_system(gateways=gateways, **settings) as system:
        zone = load_zone(system.settings.zone_file or default_zone_path())
        pool = await asyncpg.create_pool(postgres_url(system.settings), min_size=1, max_size=2)
        try:
            async with connection(pool) as conn:
                principals = await ensure_demo_principals(conn, zone)
        finally:
            await pool.close()
        doors = Doors(
            intake_url=system.intake_url,
            push_url=system.push_url + "/",
            bootstrap=system.settings.bootstrap_servers,
        )
        chosen = behaviours or dict.fromkeys((u.id for u in zone.units), FAST)
        simulation = Simulation(zone, principals, doors, behaviours=chosen, seed=seed)
        async with simulation:
            await simulation.units_connected()
            steady = asyncio.create_task(simulation.load.steady(pace.rate, pace.duration_s))
            try:
                # The fault's moment is the scenario's design: mid-load, not an awaited event.
                await asyncio.sleep(pace.fault_after_s)
                measured = await fault(system, simulation)
                await steady
            finally:
                steady.cancel()
                await asyncio.gather(steady, return_exceptions=True)
            try:
                async with asyncio.timeout(SETTLE_S):
                    report = await simulation.settled()
            except TimeoutError:
                why = await why_not_at_rest(system.settings, simulation.report(), SETTLE_S)
                raise AssertionError(why) from None
            finally:
                print(summary(simulation.report()))
        escalations: collections.Counter[str] = collections.Counter()
        latencies = await first_decision_latencies(
            system.settings.bootstrap_servers, system.settings.kafka_partitions, escalations
        )
    outcome = Outcome(
        name=name,
        sent=report.sent,
        receipted=report.receipted,
        decided=report.decided,
        lost=len(report.undecided),
        dead_lettered=report.dead_lettered,
        pushed=sum(len(unit.jobs_shown) for unit in report.units),
        shown_twice=report.shown_twice,
        units_inconsistent=sum(1 for unit in report.units if not unit.consistent),
        decision_p50_s=round(statistics.median(latencies), 3) if latencies else 0.0,
        decision_max_s=round(max(latencies), 3) if latencies else 0.0,
        measured=measured,
        escalations=dict(escalations.most_common(5)),
    )
    record(outcome)
    return report, outcome


def record(outcome: Outcome) -> None:
    """Print what a scenario measured, and append it to DISPATCH_FAULT_REPORT if set."""
    line = json.dumps(asdict(outcome), ensure_ascii=False)
    print(f"FAULT SCENARIO {line}")
    target = os.environ.get("DISPATCH_FAULT_REPORT")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(line + "\n")


async def first_decision_latencies(
    bootstrap: str, partitions: int, escalations: collections.Counter[str] | None = None
) -> list[float]:
    """Return, per incident, seconds from its first alarm's receipt to the route stage's first
    decision (sent units, or told the commander)."""
    seen: dict[uuid.UUID, float] = {}
    async for one in records_to_end(bootstrap, [INCIDENTS_STATE.name], partitions):
        _take(one.value or b"", seen, escalations)
    return list(seen.values())


def _take(
    value: bytes, seen: dict[uuid.UUID, float], escalations: collections.Counter[str] | None
) -> None:
    try:
        change = decode(IncidentStateChange, value)
    except InvalidEvent:
        return
    if escalations is not None and change.state is IncidentState.ESCALATED:
        # What the commander was told, without the ids and counts that make each one unique.
        escalations[
            " ".join(w for w in (change.reason or "").split()[:6] if not w[:1].isdigit())
        ] += 1
    received = change.timing.received_at
    first = change.state in FIRST_DECISIONS and change.incident_id not in seen
    # The reconciler's own escalations are not the pipeline's decisions.
    if first and received is not None and change.actor != "reconciler":
        seen[change.incident_id] = (change.at - received).total_seconds()


def elapsed(since: float) -> float:
    """Return seconds since a monotonic moment, rounded for the record."""
    return round(time.monotonic() - since, 2)
