"""`GET /v1/reports/summary`: the figures of `dispatch report` as JSON, for the commander.

The same period rules and the same queries as the command line (consumers/reports), so the
page a commander's browser draws and the file the command writes never disagree.
docs/reports.md defines every figure. A report changes nothing, so it writes no audit entry.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations at run
# time, and `Depends(caller)` names a local of install_reports_api.
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response

from consumers.auth import Principal
from consumers.auth.policy import can_read_reports
from consumers.intake.errors import ApiError, documented, field_error
from consumers.reports import summarize
from dispatch.reports import PeriodError, Report, report_period
from dispatch.zone import Zone

SUMMARY_PATH = "/v1/reports/summary"
_RECORD_DOWN = "the record (PostgreSQL) is unavailable; no report could be made"

Caller = Callable[..., Awaitable[Principal]]
Connection = Callable[[str], AbstractAsyncContextManager[asyncpg.Connection]]

From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=64,
        description="First day (YYYY-MM-DD, the zone's local midnight) or an ISO 8601 instant; "
        "default: the first day of the last full month.",
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=64,
        description="The end, excluded (from=2026-11-01&to=2026-12-01 is November); default: "
        "now when `from` is given, else the first day of this month.",
    ),
]


def install_reports_api(
    app: FastAPI,
    *,
    caller: Caller,
    connection: Connection,
    zone: Zone,
    now: Callable[[], datetime],
) -> None:
    """Add the report endpoint to app."""
    tz = ZoneInfo(zone.timezone)

    @app.get(
        SUMMARY_PATH,
        response_model=Report,
        responses=documented(401, 403, 422, 429, 503),
    )
    async def report_summary(
        principal: Annotated[Principal, Depends(caller)],
        start: From = None,
        end: To = None,
    ) -> Any:
        """Return every figure of the period: counts, changes month on month and year on
        year, response-interval percentiles, the norms, mutual aid and the grid screening."""
        if not can_read_reports(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not read reports")
        try:
            period = report_period(start, end, now=now(), tz=tz)
        except PeriodError as exc:
            raise field_error(422, f"invalid period: {exc.field}", exc.field, exc.message) from None
        async with connection(_RECORD_DOWN) as conn:
            report = await summarize(conn, zone=zone, period=period, now=now())
        # Serialised once here; FastAPI would validate the model a second time.
        return Response(report.model_dump_json(), media_type="application/json")
