"""`dispatch simulate`: drive the running system with simulated desks, devices and units.

Every unit of the zone gets a phone on the push gateway, desks and the hotline raise alarms
over the intake API and devices write `alarms.raw`, at a steady rate (and, with `--storm`, a
burst from one camera); then the ledger audits `incidents.state` and `alarms.dlq` and its
summary is printed. The principals and tokens are made on the system's PostgreSQL; the tokens
are never shown. Exit 0 when every receipted alarm was decided, no job was shown twice and
every unit was told of every job taken from it; 3 when not; 1 when the system is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any

import asyncpg

from consumers import event_loop
from consumers.auth import AuthError
from consumers.db import MigrationError, migrate
from consumers.until_stopped import Stop
from dispatch.settings import Settings
from dispatch.zone import Zone, default_zone_path, load_zone
from infra import stack
from infra.processes import Say
from simulator.behaviour import Behaviour, assign_misbehaviours
from simulator.load import Storm
from simulator.principals import DemoPrincipals, ensure_demo_principals
from simulator.report import summary
from simulator.session import Doors, Simulation

EXIT_UNREACHABLE = 1
EXIT_BROKEN = 3
CONNECT_WAIT_S = 60.0
STOP_GRACE_S = 10.0


def storm_of(text: str) -> Storm:
    """Parse `N/T`: N alarms from one camera in T seconds."""
    try:
        count, seconds = text.split("/")
        storm = Storm(int(count), float(seconds))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a storm is N/T, e.g. 500/10, not {text!r}") from None
    if storm.count < 1 or storm.seconds <= 0:
        raise argparse.ArgumentTypeError("a storm needs at least one alarm and some seconds")
    return storm


def register(sub: Any) -> None:
    """Add the `simulate` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="drive the running system with simulated desks, devices and units"
    )
    parser.add_argument("--rate", type=float, default=1.0, help="alarms a second (default 1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed, the same run")
    parser.add_argument(
        "--misbehaving", type=float, default=0.0, help="share of units that misbehave (0..1)"
    )
    parser.add_argument("--storm", type=storm_of, help="N/T: N alarms from one camera in T s")
    parser.add_argument(
        "--speedup", type=float, default=10.0, help="simulated seconds per real second (10)"
    )
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds to wait for decisions after the load"
    )
    parser.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="UNIT",
        help="a unit the simulator does not drive (a person on its page does); repeatable",
    )
    parser.set_defaults(handler=simulate)


def simulate(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Make the demo principals, run the simulation, print the ledger's summary."""
    if not 0 <= args.misbehaving <= 1 or args.rate <= 0 or args.speedup <= 0:
        say("dispatch simulate: --misbehaving is a share (0..1); --rate, --speedup positive")
        return 2
    zone = load_zone(settings.zone_file or default_zone_path())
    try:
        principals = asyncio.run(_principals(settings, zone))
    except (OSError, TimeoutError, asyncpg.PostgresError, AuthError, MigrationError) as exc:
        say(f"dispatch simulate: cannot make the demo principals: {type(exc).__name__}: {exc}")
        return EXIT_UNREACHABLE
    return event_loop.run(_until_stopped(_run(args, settings, zone, principals, say)))


async def _until_stopped(run: Coroutine[Any, Any, int]) -> int:
    """Run the simulation; SIGINT or SIGTERM end it early (exit 0: `dispatch run` stops its
    simulator so). Its units get STOP_GRACE_S to close their connections; then it exits
    whatever they are doing (a Ctrl-C of `dispatch run` must not wait on the demo)."""
    stop = Stop()
    task = asyncio.create_task(run)
    requested = asyncio.create_task(stop.requested.wait())
    done, _ = await asyncio.wait({task, requested}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        requested.cancel()
        return task.result()
    task.cancel()
    await asyncio.wait({task}, timeout=STOP_GRACE_S)
    return 0


async def _principals(settings: Settings, zone: Zone) -> DemoPrincipals:
    conn = await asyncpg.connect(stack.postgres_url(settings), timeout=10)
    try:
        await migrate(conn)
        return await ensure_demo_principals(conn, zone)
    finally:
        await conn.close()


async def _run(
    args: argparse.Namespace, settings: Settings, zone: Zone, principals: DemoPrincipals, say: Say
) -> int:
    host = settings.gateway_host
    doors = Doors(
        intake_url=f"http://{host}:{settings.intake_port}",
        push_url=f"ws://{host}:{settings.push_port}/",
        bootstrap=settings.bootstrap_servers,
    )
    units = [unit.id for unit in zone.units if unit.id not in args.leave_out]
    base = Behaviour(compression=args.speedup)
    behaviours = assign_misbehaviours(units, args.misbehaving, args.seed, base)
    async with Simulation(zone, principals, doors, behaviours=behaviours, seed=args.seed) as sim:
        say(f"connecting {len(units)} units to {doors.push_url}")
        try:
            await asyncio.wait_for(sim.units_connected(), CONNECT_WAIT_S)
        except TimeoutError:
            waiting = [u for u, c in sim.fleet.clients.items() if not c.connected.is_set()]
            say(f"dispatch simulate: {len(waiting)} units not connected: {', '.join(waiting)}")
            return EXIT_UNREACHABLE
        say(f"raising {args.rate:g} alarms/s for {args.duration:g} s (seed {args.seed})")
        loads = [sim.load.steady(args.rate, args.duration)]
        if args.storm is not None:
            say(f"and a storm of {args.storm.count} from {args.storm.device_id}")
            loads.append(sim.load.storm(args.storm))
        await asyncio.gather(*loads)
        say(f"waiting up to {args.settle:g} s for every receipted alarm to be decided")
        try:
            await asyncio.wait_for(sim.settled(), args.settle)
        except TimeoutError:
            say("not settled in time: the ledger below is as it stands")
        report = sim.report()
        answered = sim.load.doors_summary()
    say(summary(report))
    say(answered)
    return 0 if report.holds else EXIT_BROKEN
