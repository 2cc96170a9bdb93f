"""`dispatch run`: the whole system on local defaults, in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from typing import Any

import asyncpg

from cli.infra_commands import print_table
from consumers.auth import AuthError
from dispatch.events import PlaceType
from dispatch.settings import Settings
from dispatch.zone import default_zone_path, load_zone
from infra import stack
from infra.processes import Say
from infra.supervisor import ServiceSpec, Supervisor
from infra.topics import declare_catalog_topics
from simulator.principals import COMMANDER_ID, desk_id, page_tokens, revoke_page_tokens

# One stream worker per stage: each its own process and consumer group member, so the stages
# use both cores of a small machine (docs/architecture.md). Each answers its probes on
# stream_probe_port + its place here.
STAGES = ("classify", "merge", "route")
# The extra workers of `stream_workers` answer their probes from stream_probe_port + this
# upward: past the reconciler's and the sink's default ports (8093, 8094).
EXTRA_WORKER_PORTS = 5
# How often the supervisor looks at its services, and at their readiness while starting.
POLL_S = 0.5
# The living zone `dispatch run` shows (docs/simulator.md): a gentle rate, so the board moves
# within seconds and a person can follow each incident; a tenth of the units misbehave, so
# escalation and replacement show too. It runs an hour at a time, started again when it ends.
SIMULATOR_RATE = 0.2
SIMULATOR_RUN_S = 3600
SIMULATOR_MISBEHAVING = 0.1


def register(sub: Any) -> None:
    """Add the `run` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="start the infrastructure and every service; Ctrl-C stops them"
    )
    parser.add_argument(
        "--keep-infra",
        action="store_true",
        help="leave Kafka and PostgreSQL running on exit",
    )
    parser.add_argument(
        "--workers",
        type=int,
        choices=range(1, 9),
        metavar="N",
        help="worker processes for each stream stage and sinks (1-8); each route worker runs a "
        "reserve worker beside it",
    )
    parser.add_argument(
        "--no-simulator",
        dest="simulator",
        action="store_false",
        help="run the system bare: no simulated desks, devices and units",
    )
    parser.add_argument(
        "--simulator-rate",
        type=float,
        default=SIMULATOR_RATE,
        help=f"alarms a second the simulator raises (default {SIMULATOR_RATE:g})",
    )
    parser.set_defaults(handler=run_system)


def services(settings: Settings) -> list[ServiceSpec]:
    """Return the services `dispatch run` starts, with their readiness probes."""
    host = settings.gateway_host
    python = sys.executable
    specs = []
    extra_port = settings.stream_probe_port + EXTRA_WORKER_PORTS
    for n, stage in enumerate(STAGES):
        for k in range(1, settings.stream_workers + 1):
            if k == 1:
                port = settings.stream_probe_port + n
            else:
                port, extra_port = extra_port, extra_port + 1
            specs.append(
                ServiceSpec(
                    f"{stage} worker" if k == 1 else f"{stage} worker {k}",
                    # Static membership: restarted, the worker takes its partitions back at once.
                    (python, "-m", "streams", "--stage", stage, "--instance", str(k)),
                    f"http://{host}:{port}/readyz",
                    env={"DISPATCH_STREAM_PROBE_PORT": str(port)},
                )
            )
    specs.append(
        ServiceSpec(
            "intake API",
            (python, "-m", "consumers.intake"),
            f"http://{host}:{settings.intake_port}/readyz",
        )
    )
    specs.append(
        ServiceSpec(
            "push gateway",
            (python, "-m", "consumers.push"),
            f"http://{host}:{settings.push_port}/readyz",
        )
    )
    specs.append(
        ServiceSpec(
            "reconciler",
            (python, "-m", "consumers.reconciler"),
            f"http://{host}:{settings.reconciler_probe_port}/readyz",
        )
    )
    # Sinks share one consumer group and split its partitions; rows are keyed by event id,
    # so two never store an event twice (docs/scaling.md: two write about 1.5 times one).
    for k in range(1, settings.stream_workers + 1):
        if k == 1:
            port = settings.sink_probe_port
        else:
            port, extra_port = extra_port, extra_port + 1
        specs.append(
            ServiceSpec(
                "sink" if k == 1 else f"sink {k}",
                (python, "-m", "consumers.sink"),
                f"http://{host}:{port}/readyz",
                env={"DISPATCH_SINK_PROBE_PORT": str(port)},
            )
        )
    return specs


def simulator(rate: float) -> ServiceSpec:
    """Return the simulator's service: the demo zone's desks, hotline, devices and units
    through the public doors, leaving out the unit whose page `dispatch run` prints."""
    command = (
        sys.executable, "-m", "cli", "simulate", "--rate", f"{rate:g}",
        "--duration", str(SIMULATOR_RUN_S), "--misbehaving", str(SIMULATOR_MISBEHAVING),
        "--leave-out", DEMO_PAGE_UNIT,
    )  # fmt: skip
    return ServiceSpec("simulator", command, None)


def run_system(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Bring the stack up, declare the topics, supervise the services until SIGINT/SIGTERM."""
    if args.workers is not None:
        settings = settings.model_copy(update={"stream_workers": args.workers})
    statuses = stack.up(settings, say)
    print_table(statuses, say)
    created = asyncio.run(declare_catalog_topics(settings))
    say(f"topics created: {', '.join(created)}" if created else "topics: all present")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    env = dict(os.environ, DISPATCH_KAFKA_BOOTSTRAP=settings.bootstrap_servers)
    supervisor = Supervisor(services(settings), env, say)
    supervisor.start()
    simulation = Supervisor([], env, say)
    try:
        wait_until_ready(supervisor, settings, stop, say)
        if not stop.is_set():
            print_page_links(settings, say)
            if args.simulator:
                simulation = Supervisor([simulator(args.simulator_rate)], env, say)
                say(
                    f"simulator: {args.simulator_rate:g} alarms/s from desks, the hotline and "
                    f"devices, the zone's units but {DEMO_PAGE_UNIT} on duty "
                    "(--no-simulator runs the system bare)"
                )
                simulation.start()
        # A service that dies is started again (with backoff); the system stays up.
        while not stop.wait(timeout=POLL_S):
            supervisor.poll()
            simulation.poll()
    finally:
        simulation.stop()
        supervisor.stop()
        revoke_page_links(settings, say)
        if not args.keep_infra:
            stopped = stack.down(settings, say)
            say(f"stopped: {', '.join(stopped)}")
    return 0


def wait_until_ready(
    supervisor: Supervisor, settings: Settings, stop: threading.Event, say: Say
) -> None:
    """Say "running" once every service is ready; say which are not while they take long."""
    waited = 0.0
    told_at = 0.0
    while not stop.wait(timeout=POLL_S):
        supervisor.poll()
        waiting = supervisor.not_ready()
        if not waiting:
            say("system running: every service is ready; Ctrl-C to stop")
            return
        waited += POLL_S
        if waited - told_at >= settings.startup_timeout_s / 3:
            told_at = waited
            for name, why in waiting.items():
                say(f"still waiting for {name}: {why}")


# -- the pages and their demo tokens (docs/pages.md) ----------------------------------------------

# Whose pages `dispatch run` prints: a patrol of the demo zone, and an enterprise's desk.
DEMO_PAGE_UNIT = "cd-patrol-2"
DEMO_PAGE_ENTERPRISE = "ent-hengtong"


def print_page_links(settings: Settings, say: Say) -> None:
    """Print the addresses of the board, a unit page and a desk page, each with a demo token.

    The tokens are the simulator's demo principals' (made when missing): three, issued for
    this run, the previous run's revoked (simulator.principals.page_tokens), and revoked
    again when this run stops. They go in the URL fragment, which the browser never sends to
    a server; the page moves it into the tab's session storage and wipes it from the address
    bar. They are printed here, on the operator's own terminal, and never logged by a service.
    """
    try:
        links = asyncio.run(page_links(settings))
    # ValueError: a zone file that does not load, or a demo id taken by another principal;
    # IndexError: a zone without units or enterprises.
    except (OSError, TimeoutError, ValueError, IndexError, asyncpg.PostgresError, AuthError) as exc:
        say(f"pages: no demo tokens ({type(exc).__name__}: {exc}); sign in with your own")
        links = {name: _page_url(settings, path) for name, path in _PAGES.items()}
    say("pages (demo tokens, valid while this runs):")
    for name, url in links.items():
        say(f"  {name:<14} {url}")


_PAGES = {"commander board": "/board", "unit page": "/unit", "desk page": "/desk"}


def _page_url(settings: Settings, path: str, token: str | None = None) -> str:
    url = f"http://{settings.gateway_host}:{settings.push_port}{path}"
    return f"{url}#token={token}" if token else url


def page_principals(settings: Settings) -> list[str]:
    """Return whose tokens the pages get: the commander, a patrol's and an enterprise desk's."""
    zone = load_zone(settings.zone_file or default_zone_path())
    units = [u.id for u in zone.units]
    enterprises = [p.id for p in zone.places_of_type(PlaceType.ENTERPRISE)]
    unit = DEMO_PAGE_UNIT if DEMO_PAGE_UNIT in units else units[0]
    enterprise = DEMO_PAGE_ENTERPRISE if DEMO_PAGE_ENTERPRISE in enterprises else enterprises[0]
    return [COMMANDER_ID, unit, desk_id(enterprise)]


async def page_links(settings: Settings) -> dict[str, str]:
    """Return each page's address with a fresh demo token in its fragment."""
    zone = load_zone(settings.zone_file or default_zone_path())
    whose = page_principals(settings)
    conn = await asyncpg.connect(stack.postgres_url(settings))
    try:
        tokens = await page_tokens(conn, zone, whose)
    finally:
        await conn.close()
    return {
        name: _page_url(settings, path, tokens[principal_id].get_secret_value())
        for (name, path), principal_id in zip(_PAGES.items(), whose, strict=True)
    }


def revoke_page_links(settings: Settings, say: Say) -> None:
    """Revoke the tokens the page links carried, so they work no longer than the run."""

    async def revoke() -> int:
        conn = await asyncpg.connect(stack.postgres_url(settings), timeout=10)
        try:
            return await revoke_page_tokens(conn, page_principals(settings))
        finally:
            await conn.close()

    try:
        revoked = asyncio.run(revoke())
    except (OSError, TimeoutError, ValueError, IndexError, asyncpg.PostgresError) as exc:
        say(f"pages: demo tokens not revoked ({type(exc).__name__}); the next run revokes them")
        return
    if revoked:
        say(f"pages: {revoked} demo tokens revoked")
