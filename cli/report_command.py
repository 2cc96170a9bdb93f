"""`dispatch report`: the zone's figures for a period, from the record in PostgreSQL.

A table on the terminal by default; `--csv FILE` writes one figure per row and `--html FILE`
a self-contained page with charts. The period defaults to the last full month in the zone's
time zone, compared with the month before and the same month a year before. docs/reports.md
defines every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import asyncpg

from consumers.db import MigrationError, migrate
from consumers.reports import summarize
from dispatch.reports import Period, PeriodError, Report, report_period
from dispatch.reports.csv_rows import csv_text
from dispatch.reports.tables import render_report_text
from dispatch.settings import Settings
from dispatch.zone import Zone, ZoneFileError, default_zone_path, load_zone
from infra import stack
from infra.processes import Say

# Exit codes as the other commands use them: 1 when the store cannot answer, 2 for bad input.
EXIT_REFUSED = 1
EXIT_USAGE = 2
_CONNECT_TIMEOUT_S = 10


def register(sub: Any) -> None:
    """Add the `report` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="the zone's figures for a period: counts, changes, response times, norms",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="DATE",
        help="first day, YYYY-MM-DD in the zone's time zone, or an ISO 8601 instant "
        "(default: the first day of the last full month)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        metavar="DATE",
        help="the day after the last, excluded: --from 2026-11-01 --to 2026-12-01 is November "
        "(default: with --from, now; else the first day of this month)",
    )
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write the figures as CSV")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="write a self-contained page with charts"
    )
    parser.set_defaults(handler=report)


def fail(message: str, code: int) -> int:
    """Print one error line and return the exit code."""
    print(f"dispatch: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def _server(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 5432}"
    except ValueError:
        return "the configured server"


def _scrub(message: str, url: str) -> str:
    # A malformed URL's error may quote it: never print the password.
    try:
        password = urlsplit(url).password
    except ValueError:
        return message
    for form in {password, unquote(password)} if password else set():
        message = message.replace(form, "***")
    return message


class StoreUnavailable(Exception):
    """Raised when PostgreSQL cannot be reached; the message says where and why."""


async def _build(settings: Settings, zone: Zone, period: Period, say: Say) -> Report:
    url = stack.postgres_url(settings)
    try:
        conn = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        hint = "" if settings.postgres_is_external else " (is it running? `dispatch infra up`)"
        reason = _scrub(str(e) or type(e).__name__, url)
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {_server(url)}{hint}: {reason}"
        ) from None
    try:
        # A fresh database gets the record tables, and an empty report rather than an error.
        applied = await migrate(conn)
        if applied:
            say(f"database schema: applied {', '.join(applied)}")
        return await summarize(conn, zone=zone, period=period, now=datetime.now(UTC))
    finally:
        await conn.close()


def write_atomically(path: Path, text: str) -> None:
    """Write text to path through a temporary file beside it, so a reader never sees half."""
    directory = path.parent if str(path.parent) else Path()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        # mkstemp makes the file private (0600); a report gets the mode any new file would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def report(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Build the report of the period and print it or write the files asked for."""
    try:
        zone = load_zone(settings.zone_file or default_zone_path())
    except ZoneFileError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        period = report_period(
            args.start, args.end, now=datetime.now(UTC), tz=ZoneInfo(zone.timezone)
        )
    except PeriodError as exc:
        return fail(f"--{exc.field}: {exc.message}", EXIT_USAGE)
    try:
        built = asyncio.run(_build(settings, zone, period, say))
    except StoreUnavailable as exc:
        return fail(str(exc), EXIT_REFUSED)
    except MigrationError as exc:
        return fail(str(exc), EXIT_REFUSED)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        return fail(f"database: {exc}", EXIT_REFUSED)
    # matplotlib is imported only when a page is asked for: every other `dispatch` command
    # and the table would otherwise pay for it at start.
    from dispatch.reports.page import render_page

    outputs = [(args.csv, csv_text), (args.html, render_page)]
    for path, render in outputs:
        if path is None:
            continue
        try:
            write_atomically(path, render(built))
        except OSError as exc:
            return fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_REFUSED)
        say(f"wrote {path}")
    if args.csv is None and args.html is None:
        say(render_report_text(built).rstrip("\n"))
    return 0
