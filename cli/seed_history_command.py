"""`dispatch seed-history`: write a reproducible demo history of the zone into the record.

The history (dispatch/history) is written through the sink's own writer straight into
PostgreSQL, never onto the live topics: on `alarms.raw` or `dispatch.assignments` the workers
and the gateway would act on it and page real units for two-year-old alarms. It is demo data
(docs/demo-history.md). The same options write the same events with the same ids, so a second
run writes nothing new; a run with other options is refused while one history is in the
record, because two histories would add up to doubled figures.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from cli.token_commands import EXIT_REFUSED, EXIT_USAGE, _run, cli_actor, fail
from consumers.auth import record as audit
from consumers.sink.writer import SinkRecord, WriteResult, write_records
from dispatch.classify import RulesFileError, default_rules_path, load_rules
from dispatch.history import (
    HistoryMonth,
    HistoryPlan,
    IncidentHistory,
    Tally,
    generate,
    plan_history,
)
from dispatch.settings import Settings
from dispatch.zone import ZoneFileError, default_zone_path, load_zone
from infra.processes import Say

MAX_MONTHS = 120
# Records per transaction: whole incidents, about this many events.
CHUNK_RECORDS = 4000
AUDIT_SUBJECT = "history:demo"
STARTED, FINISHED = "history.seed", "history.seeded"


def register(sub: Any) -> None:
    """Add the `seed-history` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "seed-history",
        help="write a reproducible demo history of the zone into the record (demo data)",
    )
    parser.add_argument("--months", type=int, default=24, help="months of history (default 24)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed, the same history")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        help="the history ends the day before this first of a month (default: the first of "
        "the current month in the zone's time zone)",
    )
    parser.add_argument(
        "--per-day",
        type=float,
        default=20.0,
        dest="per_day",
        help="alarms a day in the first of the last two years (default 20; the second has "
        "about 46 %% of that)",
    )
    parser.set_defaults(handler=seed_history)


def this_month(tz: ZoneInfo, now: datetime | None = None) -> date:
    """Return the first day of the current month in the zone's time zone."""
    local = (now or datetime.now(UTC)).astimezone(tz)
    return date(local.year, local.month, 1)


def seed_history(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Generate the history and write it into the record, month by month."""
    try:
        zone = load_zone(settings.zone_file or default_zone_path())
        rules = load_rules(settings.rules_file or default_rules_path())
    except (ZoneFileError, RulesFileError) as exc:
        return fail(str(exc), EXIT_USAGE)
    tz = ZoneInfo(zone.timezone)
    latest = this_month(tz)
    end = args.end or latest
    if end.day != 1 or end > latest:
        return fail(
            f"--end {end}: give the first day of a month, at the latest {latest} (the history "
            "must end before the live record begins)",
            EXIT_USAGE,
        )
    if not 1 <= args.months <= MAX_MONTHS:
        return fail(f"--months is from 1 to {MAX_MONTHS}, not {args.months}", EXIT_USAGE)
    if not 0 < args.per_day <= 1000:
        return fail(f"--per-day is above 0 and at most 1000, not {args.per_day:g}", EXIT_USAGE)
    plan = plan_history(zone, seed=args.seed, end=end, months=args.months, per_day=args.per_day)

    async def work(conn: asyncpg.Connection) -> int:
        earlier = await _other_history(conn, plan)
        if earlier is not None:
            return fail(
                f"the record already holds the demo history of {_options(earlier)}; another "
                "would add to it (doubled figures). Run with those options (it writes nothing "
                "new) or seed a fresh database",
                EXIT_REFUSED,
            )
        await audit(
            conn, actor=cli_actor(), action=STARTED, subject=AUDIT_SUBJECT, detail=plan.describe()
        )
        say(
            f"demo history of {zone.name}: {_options(plan.describe())}, "
            f"{plan.span.start} to {end} (exclusive), into the record (not onto the topics)"
        )
        tally = Tally(plan.span, zone)
        written = WriteResult()
        for month in generate(plan, zone, rules):
            result = WriteResult()
            for chunk in _chunks(month.incidents):
                result.add(await write_records(conn, chunk, zone=zone))
            tally.add(month)
            written.add(result)
            say(_progress(month, result))
        await audit(
            conn,
            actor=cli_actor(),
            action=FINISHED,
            subject=AUDIT_SUBJECT,
            detail=plan.describe() | {"records": written.records, "new_rows": _new(written)},
        )
        for line in tally.lines():
            say(line)
        say(_written(written))
        say("this is demo data (docs/demo-history.md)")
        return 0

    return _run(settings, say, work)


async def _other_history(conn: asyncpg.Connection, plan: HistoryPlan) -> dict[str, Any] | None:
    rows = await conn.fetch(
        "SELECT detail::text AS detail FROM audit_log WHERE action = $1 AND subject = $2 "
        "ORDER BY id",
        STARTED,
        AUDIT_SUBJECT,
    )
    wanted = plan.describe()
    for row in rows:
        detail: dict[str, Any] = json.loads(row["detail"])
        if {k: detail.get(k) for k in wanted} != wanted:
            return detail
    return None


def _options(plan: dict[str, Any]) -> str:
    return (
        f"--seed {plan.get('seed')} --months {plan.get('months')} --end {plan.get('end')} "
        f"--per-day {plan.get('per_day')}"
    )


def _chunks(incidents: Sequence[IncidentHistory]) -> Iterator[list[SinkRecord]]:
    chunk: list[SinkRecord] = []
    for incident in incidents:
        chunk.extend(SinkRecord(topic, event) for topic, event in incident.records)
        if len(chunk) >= CHUNK_RECORDS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _new(result: WriteResult) -> int:
    return result.alarms + result.incidents + result.events + result.units + result.positions


def _progress(month: HistoryMonth, result: WriteResult) -> str:
    alarms = sum(
        1 for incident in month.incidents for topic, _ in incident.records if topic == "alarms.raw"
    )
    new = _new(result)
    return (
        f"{month.month:%Y-%m}  {alarms:>5,} alarms  {len(month.incidents):>5,} incidents  "
        f"{result.records:>7,} events  {new:>7,} rows new" + ("" if new else " (already there)")
    )


def _written(result: WriteResult) -> str:
    return (
        f"written: {_new(result):,} new rows from {result.records:,} events (alarms "
        f"{result.alarms:,}, incidents {result.incidents:,}, timeline {result.events:,}, units "
        f"{result.units:,}, positions {result.positions:,})"
    )
