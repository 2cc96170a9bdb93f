"""The report as the API returns it and the CLI prints it: one model, every figure named.

docs/reports.md defines each figure. Times are seconds; shares are fractions (0.9 = 90 %);
a percentile or share with nothing to measure is null, never 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from dispatch.events.base import UtcTimestamp


class ReportModel(BaseModel):
    """Base of every part of the report: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(ReportModel):
    """A half-open span [start, end)."""

    start: UtcTimestamp
    end: UtcTimestamp


class Count(ReportModel):
    """How many of one kind: key is the id counted (null: none given), label its name."""

    key: str | None
    label: str
    count: int


class HourCount(ReportModel):
    """Incidents received in one local hour of day (0-23)."""

    hour: int
    count: int


class Counts(ReportModel):
    """The period's alarms and incidents, by source, category, grid, place and hour of day."""

    alarms: int
    incidents: int
    cancelled: int
    by_source_kind: list[Count]
    by_category: list[Count]
    by_grid: list[Count]
    by_place: list[Count]
    by_hour: list[HourCount]


class Change(ReportModel):
    """A figure of the period against the period before (环比) and a year before (同比)."""

    key: str
    label: str
    categories: list[str]
    current: int
    month_before: int
    year_before: int
    mom_pct: float | None
    yoy_pct: float | None


class IntervalStat(ReportModel):
    """Percentiles of one response interval overall, for one grid or for one unit."""

    interval: str
    label: str
    scope: Literal["overall", "grid", "unit"]
    key: str | None
    n: int
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None


class Nfpa1225(ReportModel):
    """Alarm processing (received → dispatched) against NFPA 1225: 60 s for 90 %."""

    limit_s: int
    target_share: float
    dispatched: int
    within: int
    share: float | None
    met: bool | None
    never_dispatched: int


class ArrivalNorm(ReportModel):
    """Arrivals (received → arrived) of one kind of grid against its Chinese norm."""

    area: Literal["urban", "suburban"]
    limit_s: int
    arrived: int
    within: int
    share: float | None


class Circle(ReportModel):
    """The share of arrivals inside one response circle (1, 3 or 5 minutes)."""

    minutes: int
    limit_s: int
    arrived: int
    within: int
    share: float | None


class Compliance(ReportModel):
    """The period's incidents against NFPA 1225, the arrival norms and the response circles."""

    nfpa_1225: Nfpa1225
    arrival_norms: list[ArrivalNorm]
    arrived_outside_grids: int
    circles: list[Circle]
    not_arrived: int


class PartyCount(ReportModel):
    """Enterprise incidents answered by exactly this many parties."""

    parties: int
    incidents: int


class KindSpread(ReportModel):
    """Percentiles of one kind of party's times (assignment or mutual_aid_alert)."""

    kind: str
    n: int
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None


class MutualAid(ReportModel):
    """Who answered the enterprises' alarms, and how fast (一方有警,八方响应)."""

    enterprise_incidents: int
    incidents_alerted: int
    parties_alerted: int
    parties_answered: int
    mutual_aid_answered: int
    mean_answered_per_incident: float | None
    answered_per_incident: list[PartyCount]
    answer_s: list[KindSpread]
    arrival_s: list[KindSpread]


class ScreeningRow(ReportModel):
    """One grid's disputes and hazards in one local month (网格排查), and how many settled."""

    month: str
    grid_id: str | None
    grid_name: str
    disputes: int
    disputes_settled: int
    hazards: int
    hazards_resolved: int
    settled_share: float | None


class Report(ReportModel):
    """Every figure of one period of one zone."""

    zone_id: str
    zone_name: str
    timezone: str
    generated_at: UtcTimestamp
    period: Span
    month_before: Span
    year_before: Span
    counts: Counts
    changes: list[Change]
    intervals: list[IntervalStat]
    compliance: Compliance
    mutual_aid: MutualAid
    screening: list[ScreeningRow]

    def local(self, instant: datetime) -> datetime:
        """Return the instant in the zone's local time."""
        return instant.astimezone(ZoneInfo(self.timezone))
