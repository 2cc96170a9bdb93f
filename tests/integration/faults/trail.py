"""Why a scenario did not come to rest, for the failure's own message.

CI shows a failing test's message, not its captured output: the message names what the
ledger still waits for (undecided alarms, units still on jobs, jobs never shown, withdrawals
never told) and, for each job a unit never showed, its trail: every record of the pipeline's
topics that names it (units.reservations, dispatch.assignments, responses.events,
incidents.state) and the push gateway's outbox row. A failure then shows where the job
stopped, not only that it did.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

import asyncpg

from consumers.db.pool import connection
from dispatch.events import (
    DISPATCH_ASSIGNMENTS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    UNITS_RESERVATIONS,
)
from dispatch.settings import Settings
from infra.stack import postgres_url
from simulator.report import LedgerReport, summary
from tests.integration.faults.topics import records_to_end

TOPICS = (UNITS_RESERVATIONS, DISPATCH_ASSIGNMENTS, RESPONSES_EVENTS, INCIDENTS_STATE)
SHOWN_CHARS = 600  # of a record's value, per line
LISTED = 5  # ids listed per kind of wait


async def why_not_at_rest(settings: Settings, report: LedgerReport, waited_s: float) -> str:
    """Return what the run still waits for, with the trail of every job never shown."""
    units = report.units
    not_shown = {job: u.unit_id for u in units for job in u.not_shown}
    lines = [
        f"the run did not come to rest within {waited_s:g} s",
        *summary(report).splitlines()[:5],
        f"undecided alarms: {[str(a) for a in report.undecided[:LISTED]]}",
        f"never shown: {[f'{job} to {unit}' for job, unit in list(not_shown.items())[:LISTED]]}",
        "withdrawals never told: "
        f"{[f'{job} to {u.unit_id}' for u in units for job in u.not_told][:LISTED]}",
        "withdrawals told of no such job: "
        f"{[f'{job} to {u.unit_id}' for u in units for job in u.told_unexpectedly][:LISTED]}",
    ]
    trails = await job_trails(
        settings.bootstrap_servers,
        settings.kafka_partitions,
        postgres_url(settings),
        list(not_shown)[:LISTED],
    )
    return "\n".join([*lines, *trails])


async def job_trails(
    bootstrap: str, partitions: int, postgres: str, jobs: Collection[uuid.UUID]
) -> list[str]:
    """Return, for each job, the lines of every topic record and outbox row that name it."""
    if not jobs:
        return []
    needles = {str(job).encode(): job for job in jobs}
    lines: dict[uuid.UUID, list[str]] = {job: [] for job in jobs}
    async for one in records_to_end(bootstrap, [spec.name for spec in TOPICS], partitions):
        value = one.value or b""
        for needle, job in needles.items():
            if needle in value:
                text = value[:SHOWN_CHARS].decode(errors="replace")
                lines[job].append(
                    f"  {one.topic}[{one.partition}]@{one.offset} t={one.timestamp}: {text}"
                )
    pool = await asyncpg.create_pool(postgres, min_size=1, max_size=1)
    try:
        async with connection(pool) as conn:
            rows = await conn.fetch(
                "SELECT unit_id, seq, assignment_id, stored_at, delivered_at, acked_at "
                "FROM unit_outbox WHERE assignment_id = ANY($1::uuid[])",
                list(jobs),
            )
    finally:
        await pool.close()
    for row in rows:
        lines[row["assignment_id"]].append(f"  unit_outbox: {dict(row)}")
    out = []
    for job, found in lines.items():
        out.append(f"job {job}:" + ("" if found else " named by no record and no outbox row"))
        out.extend(found)
    return out
