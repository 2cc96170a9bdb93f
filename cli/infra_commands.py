"""`dispatch infra up | down | status`."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from dispatch.settings import Settings
from infra import stack
from infra.processes import Say, ServiceStatus


def register(sub: Any) -> None:
    """Add the `infra` subcommand group."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "infra", help="start, stop or inspect the local Kafka broker and PostgreSQL server"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="start what is not running (idempotent)").set_defaults(
        handler=infra_up
    )
    actions.add_parser("down", help="stop everything that `up` started").set_defaults(
        handler=infra_down
    )
    actions.add_parser("status", help="what runs, where, and whether it is healthy").set_defaults(
        handler=infra_status
    )
    actions.add_parser(
        "env", help="print shell exports that point other tools at the running services"
    ).set_defaults(handler=infra_env)


def infra_up(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Start the local stack and print where it listens."""
    statuses = stack.up(settings, say)
    print_table(statuses, say)
    say(f"KAFKA_BOOTSTRAP={settings.bootstrap_servers}")
    return 0


def infra_down(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Stop the local stack."""
    stopped = stack.down(settings, say)
    say(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def infra_status(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Print the state of each service; exit 3 when any is not healthy."""
    statuses = stack.status(settings)
    print_table(statuses, say)
    return 0 if all(s.healthy for s in statuses) else 3


def print_table(statuses: list[ServiceStatus], say: Say) -> None:
    """Print one line per service."""
    say(f"{'service':<9} {'state':<9} {'pid':<8} {'address':<25} {'health':<8} detail")
    for s in statuses:
        state = "external" if not s.managed else ("running" if s.pid else "stopped")
        pid = str(s.pid) if s.pid else "-"
        health = "healthy" if s.healthy else "DOWN"
        say(f"{s.name:<9} {state:<9} {pid:<8} {s.address:<25} {health:<8} {s.detail}")


def infra_env(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Print `export` lines (with the Postgres password) for `eval "$(dispatch infra env)"`."""
    say(f"export DISPATCH_KAFKA_BOOTSTRAP={shlex.quote(settings.bootstrap_servers)}")
    say(f"export DISPATCH_POSTGRES_URL={shlex.quote(stack.postgres_url(settings))}")
    return 0
