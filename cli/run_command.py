"""`dispatch run`: the whole system on local defaults, in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from typing import Any

from cli.infra_commands import print_table
from dispatch.settings import Settings
from infra import stack
from infra.processes import Say
from infra.topics import declare_catalog_topics


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
    """Bring the stack up, declare the topics, then wait for SIGINT or SIGTERM."""
    statuses = stack.up(settings, say)
    print_table(statuses, say)
    created = asyncio.run(declare_catalog_topics(settings))
    say(f"topics created: {', '.join(created)}" if created else "topics: all present")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    say("system running; Ctrl-C to stop")
    stop.wait()
    if not args.keep_infra:
        stopped = stack.down(settings, say)
        say(f"stopped: {', '.join(stopped)}")
    return 0
