"""`dispatch run`: the whole system on local defaults, in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from cli.infra_commands import print_table
from dispatch.settings import Settings
from infra import stack
from infra.processes import Say
from infra.topics import declare_catalog_topics

# The services `dispatch run` starts, each a module (and its arguments) run with this
# interpreter. One stream worker per stage: each its own process and consumer group, so the
# stages use both cores of a small machine (docs/architecture.md).
SERVICES = (
    ("classify worker", ("streams", "--stage", "classify")),
    ("merge worker", ("streams", "--stage", "merge")),
    ("route worker", ("streams", "--stage", "route")),
    ("intake API", ("consumers.intake",)),
    ("push gateway", ("consumers.push",)),
)


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


def run_system(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Bring the stack up, declare the topics, start the services, wait for SIGINT/SIGTERM."""
    statuses = stack.up(settings, say)
    print_table(statuses, say)
    created = asyncio.run(declare_catalog_topics(settings))
    say(f"topics created: {', '.join(created)}" if created else "topics: all present")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    env = dict(os.environ, DISPATCH_KAFKA_BOOTSTRAP=settings.bootstrap_servers)
    children = []
    for name, command in SERVICES:
        # Each in its own session: Ctrl-C sends SIGINT to the terminal's whole foreground
        # process group, and a service must get exactly one stop request, the SIGTERM below.
        child = subprocess.Popen([sys.executable, "-m", *command], env=env, start_new_session=True)
        children.append((name, child))
        say(f"{name} started (pid {child.pid})")
    say("system running; Ctrl-C to stop")
    failed = None
    # A service that dies must not leave the system looking up: stop everything and say so.
    while not stop.wait(timeout=0.5):
        failed = next((name for name, child in children if child.poll() is not None), None)
        if failed:
            break
    for _, child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        say(f"{name} stopped (exit {child.returncode})")
    if not args.keep_infra:
        stopped = stack.down(settings, say)
        say(f"stopped: {', '.join(stopped)}")
    if failed:
        say(f"error: the {failed} exited unexpectedly; see its output above")
        return 1
    return 0
