"""`dispatch run`: the whole system on local defaults, in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from typing import Any

from cli.infra_commands import print_table
from dispatch.settings import Settings
from infra import stack
from infra.processes import Say
from infra.supervisor import ServiceSpec, Supervisor
from infra.topics import declare_catalog_topics

# One stream worker per stage: each its own process and consumer group member, so the stages
# use both cores of a small machine (docs/architecture.md). Each answers its probes on
# stream_probe_port + its place here.
STAGES = ("classify", "merge", "route")
# How often the supervisor looks at its services, and at their readiness while starting.
POLL_S = 0.5


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
    parser.set_defaults(handler=run_system)


def services(settings: Settings) -> list[ServiceSpec]:
    """Return the services `dispatch run` starts, with their readiness probes."""
    host = settings.gateway_host
    python = sys.executable
    specs = []
    for n, stage in enumerate(STAGES):
        port = settings.stream_probe_port + n
        specs.append(
            ServiceSpec(
                f"{stage} worker",
                # Static membership: restarted, the worker takes its partitions back at once.
                (python, "-m", "streams", "--stage", stage, "--instance", "1"),
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
    specs.append(
        ServiceSpec(
            "sink",
            (python, "-m", "consumers.sink"),
            f"http://{host}:{settings.sink_probe_port}/readyz",
        )
    )
    return specs


def run_system(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Bring the stack up, declare the topics, supervise the services until SIGINT/SIGTERM."""
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
    try:
        wait_until_ready(supervisor, settings, stop, say)
        # A service that dies is started again (with backoff); the system stays up.
        while not stop.wait(timeout=POLL_S):
            supervisor.poll()
    finally:
        supervisor.stop()
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
