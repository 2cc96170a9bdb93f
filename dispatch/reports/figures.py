"""The raw figures the record queries return, before the report puts names and shares on them.

consumers/reports fills these from PostgreSQL; dispatch/reports/build.py turns them into the
Report. Plain frozen dataclasses: nothing here reads or validates input from outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Spread:
    """How many values an interval had and its 50th, 90th and 99th percentiles in seconds."""

    n: int
    p50: float | None
    p90: float | None
    p99: float | None


NO_SPREAD = Spread(0, None, None, None)


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """Counts of one period: alarms, and incidents by category, grid, place and hour."""

    alarms: int
    alarms_by_source: Mapping[str, int]
    incidents: int
    cancelled: int
    by_category: Mapping[str, int]
    by_grid: Mapping[str | None, int]
    by_place: Mapping[str | None, int]
    by_hour: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class CategoryCounts:
    """What a comparison period needs: its alarms and its incidents per category."""

    alarms: int
    by_category: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class IntervalFigure:
    """One interval's spread overall (key None), for one grid, or for one unit."""

    interval: str
    scope: str  # "overall", "grid" or "unit"
    key: str | None
    spread: Spread


@dataclass(frozen=True, slots=True)
class GridTimeliness:
    """One grid's incidents against the norms (grid None: incidents outside every grid)."""

    grid_id: str | None
    dispatched: int
    not_dispatched: int
    processed_within: int  # dispatched within the NFPA processing limit
    arrived: int
    arrived_within: Mapping[int, int]  # seconds limit -> incidents arrived within it
    not_arrived: int


@dataclass(frozen=True, slots=True)
class MutualAidFigures:
    """The parties that answered enterprise alarms, and how fast."""

    enterprise_incidents: int
    incidents_alerted: int
    parties_alerted: int
    parties_answered: int
    mutual_aid_answered: int
    # answering parties per incident -> incidents with that many
    answered_per_incident: Mapping[int, int]
    # party kind (assignment, mutual_aid_alert) -> received → first answer
    answer: Mapping[str, Spread] = field(default_factory=dict)
    # party kind -> received → arrived
    arrival: Mapping[str, Spread] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScreeningFigure:
    """Disputes or hazards of one grid in one local month, and how many were settled."""

    month: str  # YYYY-MM
    grid_id: str | None
    category: str
    found: int
    settled: int


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything the queries found for one report: the period and its two comparisons."""

    current: PeriodCounts
    month_before: CategoryCounts
    year_before: CategoryCounts
    intervals: tuple[IntervalFigure, ...]
    timeliness: tuple[GridTimeliness, ...]
    mutual_aid: MutualAidFigures
    screening: tuple[ScreeningFigure, ...]
