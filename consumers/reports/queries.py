"""The report's queries over the record tables (migration 0012), one function per figure.

Every value comes in as a bind parameter. The statements are put together once, at import,
from this module's own constants and those of dispatch/reports/definitions.py (interval
names, milestone columns), never from input. An incident belongs to a period by when it was
received (its first alarm), else when the record first saw it; docs/reports.md defines each
figure in words.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import asyncpg

from dispatch.reports.definitions import (
    ARRIVAL_LIMITS_S,
    INTERVALS,
    NFPA_PROCESSING_S,
    PERCENTILES,
    SCREENED,
    UNIT_INTERVAL_KEYS,
)
from dispatch.reports.figures import (
    CategoryCounts,
    GridTimeliness,
    IntervalFigure,
    MutualAidFigures,
    PeriodCounts,
    ScreeningFigure,
    Spread,
)

# The incidents of the period [$1, $2); `received` is the instant the period is judged by.
_INCIDENTS = """
    SELECT i.*, coalesce(i.received_at, i.opened_at) AS received
    FROM record_incidents i
    WHERE coalesce(i.received_at, i.opened_at) >= $1
      AND coalesce(i.received_at, i.opened_at) < $2
"""
_ENTERPRISE_INCIDENTS = _INCIDENTS + "  AND i.enterprise_id IS NOT NULL\n"

# Every party of those incidents (CTE `inc`) with its own milestones, read from `parties`
# (the timestamps as the incidents.state event writes them: ISO 8601 in UTC).
_PARTIES = """
    SELECT i.incident_id, i.grid_id, i.received, i.classified_at, i.closed_at,
           p->>'unit_id' AS unit_id,
           p->>'kind' AS kind,
           (p->>'dispatched_at')::timestamptz AS dispatched,
           (p->>'delivered_at')::timestamptz AS delivered,
           (p->>'acked_at')::timestamptz AS acked,
           (p->>'accepted_at')::timestamptz AS accepted,
           (p->>'arrived_at')::timestamptz AS arrived
    FROM inc i CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(i.parties) = 'array' THEN i.parties ELSE '[]'::jsonb END
    ) AS p
"""

# Milestone name (definitions.INTERVALS) -> column, of the incident and of one party.
_INCIDENT_MILESTONES = {
    "received": "received",
    "classified": "classified_at",
    "dispatched": "dispatched_at",
    "delivered": "delivered_at",
    "accepted": "accepted_at",
    "arrived": "on_scene_at",
    "closed": "closed_at",
}
_PARTY_MILESTONES = {
    "received": "received",
    "classified": "classified_at",
    "dispatched": "dispatched",
    "delivered": "delivered",
    "accepted": "accepted",
    "arrived": "arrived",
    "closed": "closed_at",
}


def _spans(keys: tuple[str, ...], columns: dict[str, str]) -> str:
    """Return a VALUES list of (interval name, start, end) over the row `x`."""
    rows = [
        f"('{i.key}', x.{columns[i.start]}, x.{columns[i.end]})" for i in INTERVALS if i.key in keys
    ]
    return "VALUES " + ", ".join(rows)


_ALARMS_BY_SOURCE = """
SELECT source_kind, count(*) AS n FROM record_alarms
WHERE received_at >= $1 AND received_at < $2 GROUP BY source_kind
"""

_PERIOD_COUNTS = f"""
WITH inc AS ({_INCIDENTS})
SELECT category, grid_id, place_name,
       extract(hour FROM received AT TIME ZONE $3)::int AS hour,
       count(*) AS n,
       count(*) FILTER (WHERE state = 'cancelled') AS cancelled
FROM inc GROUP BY category, grid_id, place_name, hour
"""  # noqa: S608  # splices this module's own constants, never input

_CATEGORY_COUNTS = f"""
WITH inc AS ({_INCIDENTS})
SELECT category, count(*) AS n FROM inc GROUP BY category
"""  # noqa: S608  # splices this module's own constants, never input

_INTERVALS_BY_GRID = f"""
WITH inc AS ({_INCIDENTS}),
spans AS (
    SELECT x.grid_id, s.name, extract(epoch FROM s.finish - s.start)::float8 AS seconds
    FROM inc x CROSS JOIN LATERAL ({_spans(tuple(i.key for i in INTERVALS), _INCIDENT_MILESTONES)})
        AS s(name, start, finish)
    WHERE s.start IS NOT NULL AND s.finish IS NOT NULL
)
SELECT name, grid_id, GROUPING(grid_id) = 1 AS overall, count(*) AS n,
       percentile_cont($3::float8[]) WITHIN GROUP (ORDER BY seconds) AS p
FROM spans GROUP BY GROUPING SETS ((name), (name, grid_id))
"""  # noqa: S608  # splices this module's own constants, never input

_INTERVALS_BY_UNIT = f"""
WITH inc AS ({_INCIDENTS}),
parties AS ({_PARTIES}),
spans AS (
    SELECT x.unit_id, s.name, extract(epoch FROM s.finish - s.start)::float8 AS seconds
    FROM parties x CROSS JOIN LATERAL ({_spans(UNIT_INTERVAL_KEYS, _PARTY_MILESTONES)})
        AS s(name, start, finish)
    WHERE x.kind = 'assignment' AND s.start IS NOT NULL AND s.finish IS NOT NULL
)
SELECT name, unit_id, count(*) AS n,
       percentile_cont($3::float8[]) WITHIN GROUP (ORDER BY seconds) AS p
FROM spans GROUP BY name, unit_id
"""  # noqa: S608  # splices this module's own constants, never input

_TIMELINESS = f"""
WITH inc AS ({_INCIDENTS})
SELECT grid_id,
       count(dispatched_at) AS dispatched,
       count(*) - count(dispatched_at) AS not_dispatched,
       count(*) FILTER (
           WHERE dispatched_at - received <= make_interval(secs => $3)
       ) AS processed_within,
       count(on_scene_at) AS arrived,
       count(*) - count(on_scene_at) AS not_arrived
FROM inc GROUP BY grid_id
"""  # noqa: S608  # splices this module's own constants, never input

_ARRIVALS_WITHIN = f"""
WITH inc AS ({_INCIDENTS})
SELECT grid_id, t.limit_s,
       count(*) FILTER (
           WHERE on_scene_at - received <= make_interval(secs => t.limit_s)
       ) AS n
FROM inc CROSS JOIN unnest($3::int[]) AS t(limit_s)
WHERE on_scene_at IS NOT NULL
GROUP BY grid_id, t.limit_s
"""  # noqa: S608  # splices this module's own constants, never input

# Each party of an enterprise incident, and when it first answered: acknowledged, accepted
# or arrived, whichever came first (least() skips the missing ones).
_ANSWERS = f"""
inc AS ({_ENTERPRISE_INCIDENTS}),
parties AS (
    SELECT incident_id, kind, received, arrived,
           least(acked, accepted, arrived) AS answered_at
    FROM ({_PARTIES}) AS party
)
"""  # noqa: S608  # splices this module's own constants, never input

_MUTUAL_AID_INCIDENTS = f"""
WITH {_ANSWERS}
SELECT i.incident_id,
       count(p.kind) FILTER (WHERE p.kind = 'mutual_aid_alert') AS alerted,
       count(p.answered_at) AS answered,
       count(p.answered_at) FILTER (WHERE p.kind = 'mutual_aid_alert') AS aid_answered
FROM inc i LEFT JOIN parties p ON p.incident_id = i.incident_id
GROUP BY i.incident_id
"""  # noqa: S608  # splices this module's own constants, never input

_MUTUAL_AID_SPREADS = f"""
WITH {_ANSWERS}
SELECT kind,
       count(answered_at) AS answer_n,
       percentile_cont($3::float8[]) WITHIN GROUP (
           ORDER BY extract(epoch FROM answered_at - received)::float8
       ) FILTER (WHERE answered_at IS NOT NULL) AS answer_p,
       count(arrived) AS arrival_n,
       percentile_cont($3::float8[]) WITHIN GROUP (
           ORDER BY extract(epoch FROM arrived - received)::float8
       ) FILTER (WHERE arrived IS NOT NULL) AS arrival_p
FROM parties GROUP BY kind
"""  # noqa: S608  # splices this module's own constants, never input

_SCREENING = f"""
WITH inc AS ({_INCIDENTS})
SELECT to_char(received AT TIME ZONE $3, 'YYYY-MM') AS month, grid_id, category,
       count(*) AS found, count(resolved_at) AS settled
FROM inc WHERE category = ANY($4::text[])
GROUP BY month, grid_id, category
"""  # noqa: S608  # splices this module's own constants, never input


def _spread(n: int, p: list[float] | None) -> Spread:
    if not n or p is None:
        return Spread(n, None, None, None)
    return Spread(n, p[0], p[1], p[2])


async def alarm_counts(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> dict[str, int]:
    """Return the alarms received in [start, end) per source kind."""
    rows = await conn.fetch(_ALARMS_BY_SOURCE, start, end)
    return {row["source_kind"]: row["n"] for row in rows}


async def period_counts(
    conn: asyncpg.Connection, *, start: datetime, end: datetime, timezone: str
) -> PeriodCounts:
    """Count alarms by source, and incidents by category, grid, place and local hour."""
    by_source = await alarm_counts(conn, start=start, end=end)
    rows = await conn.fetch(_PERIOD_COUNTS, start, end, timezone)
    by_category: dict[str, int] = defaultdict(int)
    by_grid: dict[str | None, int] = defaultdict(int)
    by_place: dict[str | None, int] = defaultdict(int)
    by_hour: dict[int, int] = defaultdict(int)
    for row in rows:
        by_category[row["category"]] += row["n"]
        by_grid[row["grid_id"]] += row["n"]
        by_place[row["place_name"]] += row["n"]
        by_hour[row["hour"]] += row["n"]
    return PeriodCounts(
        alarms=sum(by_source.values()),
        alarms_by_source=by_source,
        incidents=sum(row["n"] for row in rows),
        cancelled=sum(row["cancelled"] for row in rows),
        by_category=dict(by_category),
        by_grid=dict(by_grid),
        by_place=dict(by_place),
        by_hour=dict(by_hour),
    )


async def category_counts(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> CategoryCounts:
    """Count a comparison period's alarms and its incidents per category."""
    by_source = await alarm_counts(conn, start=start, end=end)
    rows = await conn.fetch(_CATEGORY_COUNTS, start, end)
    return CategoryCounts(
        alarms=sum(by_source.values()), by_category={row["category"]: row["n"] for row in rows}
    )


async def interval_figures(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> tuple[IntervalFigure, ...]:
    """Return each interval's percentiles overall and per grid, and per unit from its party."""
    percentiles = list(PERCENTILES)
    by_grid = await conn.fetch(_INTERVALS_BY_GRID, start, end, percentiles)
    by_unit = await conn.fetch(_INTERVALS_BY_UNIT, start, end, percentiles)
    figures = [
        IntervalFigure(
            row["name"],
            "overall" if row["overall"] else "grid",
            None if row["overall"] else row["grid_id"],
            _spread(row["n"], row["p"]),
        )
        for row in by_grid
    ]
    figures += [
        IntervalFigure(row["name"], "unit", row["unit_id"], _spread(row["n"], row["p"]))
        for row in by_unit
    ]
    return tuple(figures)


async def grid_timeliness(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> tuple[GridTimeliness, ...]:
    """Count per grid the incidents dispatched and arrived at, and how many within each limit."""
    rows = await conn.fetch(_TIMELINESS, start, end, NFPA_PROCESSING_S)
    within_rows = await conn.fetch(_ARRIVALS_WITHIN, start, end, list(ARRIVAL_LIMITS_S))
    within: dict[str | None, dict[int, int]] = defaultdict(dict)
    for row in within_rows:
        within[row["grid_id"]][row["limit_s"]] = row["n"]
    return tuple(
        GridTimeliness(
            grid_id=row["grid_id"],
            dispatched=row["dispatched"],
            not_dispatched=row["not_dispatched"],
            processed_within=row["processed_within"],
            arrived=row["arrived"],
            arrived_within=within.get(row["grid_id"], {}),
            not_arrived=row["not_arrived"],
        )
        for row in rows
    )


async def mutual_aid_figures(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> MutualAidFigures:
    """Count the parties of each enterprise incident that answered, and time their answers."""
    per_incident = await conn.fetch(_MUTUAL_AID_INCIDENTS, start, end)
    spreads = await conn.fetch(_MUTUAL_AID_SPREADS, start, end, list(PERCENTILES))
    histogram: dict[int, int] = defaultdict(int)
    for row in per_incident:
        histogram[row["answered"]] += 1
    return MutualAidFigures(
        enterprise_incidents=len(per_incident),
        incidents_alerted=sum(1 for row in per_incident if row["alerted"]),
        parties_alerted=sum(row["alerted"] for row in per_incident),
        parties_answered=sum(row["answered"] for row in per_incident),
        mutual_aid_answered=sum(row["aid_answered"] for row in per_incident),
        answered_per_incident=dict(histogram),
        answer={row["kind"]: _spread(row["answer_n"], row["answer_p"]) for row in spreads},
        arrival={row["kind"]: _spread(row["arrival_n"], row["arrival_p"]) for row in spreads},
    )


async def screening_figures(
    conn: asyncpg.Connection, *, start: datetime, end: datetime, timezone: str
) -> tuple[ScreeningFigure, ...]:
    """Count disputes and hazards per local month and grid, and how many were resolved."""
    categories = [c.value for c in SCREENED]
    rows = await conn.fetch(_SCREENING, start, end, timezone, categories)
    return tuple(
        ScreeningFigure(row["month"], row["grid_id"], row["category"], row["found"], row["settled"])
        for row in rows
    )
