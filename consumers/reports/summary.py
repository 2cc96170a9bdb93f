"""Gather every figure of a report from the record in one snapshot, and build the Report."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from consumers.reports import queries
from dispatch.reports import Period, Report, build_report, month_before, year_before
from dispatch.reports.figures import Figures
from dispatch.zone import Zone


async def collect_figures(
    conn: asyncpg.Connection, *, period: Period, compared: tuple[Period, Period], timezone: str
) -> Figures:
    """Run every query of the report in one read-only, repeatable-read transaction.

    One snapshot: a sink writing meanwhile cannot make the counts and the percentiles of
    one report disagree.
    """
    start, end = period.start, period.end
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return Figures(
            current=await queries.period_counts(conn, start=start, end=end, timezone=timezone),
            month_before=await queries.category_counts(
                conn, start=compared[0].start, end=compared[0].end
            ),
            year_before=await queries.category_counts(
                conn, start=compared[1].start, end=compared[1].end
            ),
            intervals=await queries.interval_figures(conn, start=start, end=end),
            timeliness=await queries.grid_timeliness(conn, start=start, end=end),
            mutual_aid=await queries.mutual_aid_figures(conn, start=start, end=end),
            screening=await queries.screening_figures(
                conn, start=start, end=end, timezone=timezone
            ),
        )


async def summarize(
    conn: asyncpg.Connection, *, zone: Zone, period: Period, now: datetime
) -> Report:
    """Return the report of period for zone, compared month on month and year on year."""
    tz = ZoneInfo(zone.timezone)
    compared = (month_before(period, tz), year_before(period, tz))
    figures = await collect_figures(conn, period=period, compared=compared, timezone=zone.timezone)
    return build_report(
        zone=zone,
        period=period,
        month_before=compared[0],
        year_before=compared[1],
        figures=figures,
        generated_at=now,
    )
