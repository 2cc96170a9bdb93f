"""Time routing decisions over the H3 unit index against a linear scan of every unit.

Run: `python -m bench.routing_cost [--requests 3000] [--seed 7] [--resolution 7]` from the
repository root.
Both methods answer the same requests in the same run, and every answer is compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from dispatch.events import Position, Priority, UnitAvailability
from dispatch.routing import (
    DEFAULT_RESOLUTION,
    RouteDecision,
    RoutingPolicy,
    RoutingRequest,
    UnitIndex,
    UnitKind,
    UnitRecord,
    route,
    route_by_scan,
)

CENTRE = Position(lat=31.70, lon=113.40)
HALF_SIDE_M = 15_000.0
GRID_SIDE_M = 5_000.0
M_PER_DEG_LAT = 111_195.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(CENTRE.lat))
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
SIZES = (100, 1_000, 10_000)

# (kind, capability, share): patrols and guards dominate, as in the seed zone.
KINDS = (
    (UnitKind.PATROL, "patrol", 0.45),
    (UnitKind.GUARD, "guard", 0.25),
    (UnitKind.SCHOOL_OFFICER, "patrol", 0.10),
    (UnitKind.FIRE, "fire", 0.08),
    (UnitKind.MEDICAL, "medical", 0.07),
    (UnitKind.MEDIATOR, "mediation", 0.05),
)
NEEDS = (("patrol", 0.70), ("fire", 0.10), ("medical", 0.10), ("mediation", 0.10))


def _spot(rng: random.Random) -> tuple[Position, str]:
    north = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M)
    east = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M)
    grid = f"g{int((north + HALF_SIDE_M) // GRID_SIDE_M)}{int((east + HALF_SIDE_M) // GRID_SIDE_M)}"
    position = Position(
        lat=CENTRE.lat + north / M_PER_DEG_LAT, lon=CENTRE.lon + east / M_PER_DEG_LON
    )
    return position, grid


def _unit(rng: random.Random, number: int) -> UnitRecord:
    kind, capability, _ = rng.choices(KINDS, weights=[k[2] for k in KINDS])[0]
    position, grid = _spot(rng)
    home = None
    if kind == UnitKind.SCHOOL_OFFICER:
        home = f"school-{rng.randrange(50)}"
    elif kind == UnitKind.GUARD:
        home = f"ent-{rng.randrange(200)}"
    availability = rng.choices(
        [UnitAvailability.AVAILABLE, UnitAvailability.BUSY, UnitAvailability.OFF_DUTY],
        weights=[0.7, 0.2, 0.1],
    )[0]
    return UnitRecord(
        unit_id=f"u{number:05d}",
        kind=kind,
        capabilities=frozenset({capability}),
        speed_kmh=rng.choice([30.0, 40.0, 50.0, 60.0]),
        home_grid_id=grid if kind == UnitKind.PATROL else None,
        home_place_id=home,
        availability=availability,
        position=position,
        position_at=NOW - timedelta(seconds=rng.uniform(0, 400)),
    )


def _nudged(rng: random.Random, unit: UnitRecord) -> Position:
    here = unit.position or CENTRE  # every benchmark unit is built with a position
    return Position(
        lat=here.lat + rng.uniform(-500, 500) / M_PER_DEG_LAT,
        lon=here.lon + rng.uniform(-500, 500) / M_PER_DEG_LON,
    )


def _request(rng: random.Random, size: int) -> RoutingRequest:
    position, grid = _spot(rng)
    priority = rng.choice(list(Priority))
    need = rng.choices(NEEDS, weights=[n[1] for n in NEEDS])[0][0]
    return RoutingRequest(
        position=position,
        priority=priority,
        now=NOW,
        required_capabilities=frozenset({need}),
        units_needed=2 if priority is Priority.P1 else 1,
        grid_id=grid,
        school_place_id=f"school-{rng.randrange(50)}" if rng.random() < 0.1 else None,
        enterprise_place_id=f"ent-{rng.randrange(200)}" if rng.random() < 0.25 else None,
        excluded_unit_ids=frozenset(
            f"u{rng.randrange(size):05d}" for _ in range(rng.randint(0, 2))
        ),
    )


def _time_each(
    decide: Callable[[RoutingRequest], RouteDecision], requests: Sequence[RoutingRequest]
) -> tuple[list[float], list[RouteDecision]]:
    micros: list[float] = []
    decisions: list[RouteDecision] = []
    for request in requests:
        start = time.perf_counter()
        decision = decide(request)
        micros.append((time.perf_counter() - start) * 1e6)
        decisions.append(decision)
    return micros, decisions


def _summary(micros: list[float]) -> str:
    cuts = statistics.quantiles(micros, n=100, method="inclusive")
    mean = statistics.fmean(micros)
    return f"mean {mean:9.1f}  p50 {cuts[49]:9.1f}  p99 {cuts[98]:9.1f}"


def run(requests_per_size: int, seed: int, resolution: int) -> None:
    """Build each index size, route the same requests both ways and print the figures."""
    policy = RoutingPolicy()
    print(
        f"route() per decision in microseconds, {requests_per_size} requests per size, "
        f"H3 resolution {resolution}"
    )
    for size in SIZES:
        rng = random.Random(seed + size)
        units = [_unit(rng, n) for n in range(size)]
        index = UnitIndex(resolution=resolution)
        for unit in units:
            index.upsert(unit)
        # Position reports: every unit a few hundred metres on, often into another cell.
        moves = [dataclasses.replace(u, position=_nudged(rng, u)) for u in units]
        start = time.perf_counter()
        for unit in moves:
            index.upsert(unit)
        move_us = (time.perf_counter() - start) * 1e6 / size
        units = moves
        requests = [_request(rng, size) for _ in range(requests_per_size)]
        indexed, by_index = _time_each(partial(route, index, policy=policy), requests)
        scanned, by_scan = _time_each(partial(route_by_scan, units, policy=policy), requests)
        differ = sum(a != b for a, b in zip(by_index, by_scan, strict=True))
        commander = sum(d.commander_needed for d in by_index)
        speedup = statistics.fmean(scanned) / statistics.fmean(indexed)
        print(f"{size:>6} units  index   {_summary(indexed)}")
        print(f"{size:>6} units  scan    {_summary(scanned)}")
        print(
            f"{size:>6} units  scan mean / index mean {speedup:.1f}; move {move_us:.1f} us; "
            f"decisions differing {differ}; to commander {commander}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION)
    args = parser.parse_args(argv)
    run(args.requests, args.seed, args.resolution)


if __name__ == "__main__":
    main()
