"""The `dispatch` console script: one entry point, subcommands per area."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from cli import (
    dlq_command,
    infra_commands,
    report_command,
    run_command,
    seed_history_command,
    simulate_command,
    token_commands,
    triage_command,
)
from consumers.kafka_client import kafka_problem
from dispatch.settings import Settings
from infra.errors import InfraError


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dispatch",
        description="Alarm dispatch and multi-party response. Settings come from DISPATCH_* "
        "environment variables (see docs/settings.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    infra_commands.register(sub)
    token_commands.register(sub)
    run_command.register(sub)
    triage_command.register(sub)
    simulate_command.register(sub)
    dlq_command.register(sub)
    report_command.register(sub)
    seed_history_command.register(sub)
    return parser


def say(line: str) -> None:
    """Print one line for the person at the terminal."""
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the settings once, run the subcommand, map errors to one line."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        where = f"setting DISPATCH_{field.upper()}: " if field else "settings: "
        print(f"dispatch: error: {where}{first['msg']}", file=sys.stderr)
        return 2
    if (problem := kafka_problem(settings)) is not None:
        print(f"dispatch: error: {problem}", file=sys.stderr)
        return 2
    try:
        code: int = args.handler(args, settings, say)
    except InfraError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
