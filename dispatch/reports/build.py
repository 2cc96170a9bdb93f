"""Turn the raw figures of the record into the Report: names, zero rows, changes and shares.

Pure: the zone says which grids exist and which are urban; the figures say what happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from dispatch.events.alarms import Category, SourceKind
from dispatch.reports.definitions import (
    ALARMS_KEY,
    ALARMS_LABEL,
    CATEGORY_GROUPS,
    CIRCLE_MINUTES,
    INTERVALS,
    NFPA_PROCESSING_S,
    NFPA_TARGET_SHARE,
    SUBURBAN_ARRIVAL_S,
    URBAN_ARRIVAL_S,
    change_pct,
    share,
)
from dispatch.reports.figures import (
    NO_SPREAD,
    CategoryCounts,
    Figures,
    GridTimeliness,
    IntervalFigure,
    MutualAidFigures,
    PeriodCounts,
    ScreeningFigure,
    Spread,
)
from dispatch.reports.model import (
    ArrivalNorm,
    Change,
    Circle,
    Compliance,
    Count,
    Counts,
    HourCount,
    IntervalStat,
    KindSpread,
    MutualAid,
    Nfpa1225,
    PartyCount,
    Report,
    ScreeningRow,
    Span,
)
from dispatch.reports.period import Period
from dispatch.zone import GridArea, Zone

NO_GRID = "(no grid)"
NO_PLACE = "(no named place)"
_LABELS = {interval.key: interval.label for interval in INTERVALS}
_PARTY_KINDS = ("assignment", "mutual_aid_alert")


def build_report(
    *,
    zone: Zone,
    period: Period,
    month_before: Period,
    year_before: Period,
    figures: Figures,
    generated_at: datetime,
) -> Report:
    """Put the zone's names on the figures and work out every change and share."""
    return Report(
        zone_id=zone.id,
        zone_name=zone.name,
        timezone=zone.timezone,
        generated_at=generated_at,
        period=_span(period),
        month_before=_span(month_before),
        year_before=_span(year_before),
        counts=counts_of(zone, figures.current),
        changes=changes_of(figures.current, figures.month_before, figures.year_before),
        intervals=intervals_of(figures.intervals),
        compliance=compliance_of(zone, figures.timeliness),
        mutual_aid=mutual_aid_of(figures.mutual_aid),
        screening=screening_of(zone, period.months(ZoneInfo(zone.timezone)), figures.screening),
    )


def _span(period: Period) -> Span:
    return Span(start=period.start, end=period.end)


def grid_label(zone: Zone, grid_id: str | None) -> str:
    """Return a grid's name from the zone, its id when the zone has no such grid."""
    if grid_id is None:
        return NO_GRID
    names = {grid.id: grid.name for grid in zone.grids}
    return names.get(grid_id, grid_id)


def counts_of(zone: Zone, counts: PeriodCounts) -> Counts:
    """List every source kind, category, zone grid and hour, zeros included; places by count."""
    zone_grids = [grid.id for grid in zone.grids]
    extra_grids = sorted(
        (g for g in counts.by_grid if g not in zone_grids and g is not None), key=str
    )
    grids: list[str | None] = [*zone_grids, *extra_grids]
    if None in counts.by_grid:
        grids.append(None)
    places = sorted(counts.by_place.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    return Counts(
        alarms=counts.alarms,
        incidents=counts.incidents,
        cancelled=counts.cancelled,
        by_source_kind=[
            Count(key=kind.value, label=kind.value, count=counts.alarms_by_source.get(kind, 0))
            for kind in SourceKind
        ],
        by_category=[
            Count(key=c.value, label=c.value, count=counts.by_category.get(c, 0)) for c in Category
        ],
        by_grid=[
            Count(key=g, label=grid_label(zone, g), count=counts.by_grid.get(g, 0)) for g in grids
        ],
        by_place=[Count(key=p, label=p or NO_PLACE, count=n) for p, n in places],
        by_hour=[HourCount(hour=h, count=counts.by_hour.get(h, 0)) for h in range(24)],
    )


def changes_of(
    current: PeriodCounts, month_before: CategoryCounts, year_before: CategoryCounts
) -> list[Change]:
    """Alarms, the published groups, then every category: now, before, and the change in %."""

    def row(key: str, label: str, categories: Sequence[str], now: int, mb: int, yb: int) -> Change:
        return Change(
            key=key,
            label=label,
            categories=list(categories),
            current=now,
            month_before=mb,
            year_before=yb,
            mom_pct=change_pct(now, mb),
            yoy_pct=change_pct(now, yb),
        )

    def total(by_category: Mapping[str, int], categories: Sequence[str]) -> int:
        return sum(by_category.get(c, 0) for c in categories)

    rows = [
        row(ALARMS_KEY, ALARMS_LABEL, [], current.alarms, month_before.alarms, year_before.alarms)
    ]
    for group in CATEGORY_GROUPS:
        members = [c.value for c in Category if c in group.categories]
        rows.append(
            row(
                group.key,
                group.label,
                members,
                total(current.by_category, members),
                total(month_before.by_category, members),
                total(year_before.by_category, members),
            )
        )
    for category in Category:
        c = category.value
        rows.append(
            row(
                c,
                c,
                [c],
                current.by_category.get(c, 0),
                month_before.by_category.get(c, 0),
                year_before.by_category.get(c, 0),
            )
        )
    return rows


def _stat(interval: str, scope: str, key: str | None, spread: Spread) -> IntervalStat:
    return IntervalStat.model_validate(
        {
            "interval": interval,
            "label": _LABELS.get(interval, interval),
            "scope": scope,
            "key": key,
            "n": spread.n,
            "p50_s": spread.p50,
            "p90_s": spread.p90,
            "p99_s": spread.p99,
        }
    )


def intervals_of(figures: Sequence[IntervalFigure]) -> list[IntervalStat]:
    """Every interval overall (empty ones too), then per grid and per unit as found."""
    overall = {f.interval: f.spread for f in figures if f.scope == "overall"}
    rows = [_stat(i.key, "overall", None, overall.get(i.key, NO_SPREAD)) for i in INTERVALS]
    order = {interval.key: n for n, interval in enumerate(INTERVALS)}
    for scope in ("grid", "unit"):
        found = [f for f in figures if f.scope == scope]
        found.sort(key=lambda f: (f.key is None, f.key or "", order.get(f.interval, 99)))
        rows += [_stat(f.interval, scope, f.key, f.spread) for f in found]
    return rows


def compliance_of(zone: Zone, timeliness: Sequence[GridTimeliness]) -> Compliance:
    """Add the grids up against NFPA 1225, the urban/suburban norm of each, and the circles."""
    areas = {grid.id: grid.area for grid in zone.grids}
    dispatched = sum(t.dispatched for t in timeliness)
    within = sum(t.processed_within for t in timeliness)
    processing_share = share(within, dispatched)
    norms = []
    for area, limit in ((GridArea.URBAN, URBAN_ARRIVAL_S), (GridArea.SUBURBAN, SUBURBAN_ARRIVAL_S)):
        mine = [t for t in timeliness if t.grid_id is not None and areas.get(t.grid_id) is area]
        arrived = sum(t.arrived for t in mine)
        on_time = sum(t.arrived_within.get(limit, 0) for t in mine)
        norms.append(
            ArrivalNorm(
                area=area.value,
                limit_s=limit,
                arrived=arrived,
                within=on_time,
                share=share(on_time, arrived),
            )
        )
    arrived_all = sum(t.arrived for t in timeliness)
    circles = []
    for minutes in CIRCLE_MINUTES:
        inside = sum(t.arrived_within.get(60 * minutes, 0) for t in timeliness)
        circles.append(
            Circle(
                minutes=minutes,
                limit_s=60 * minutes,
                arrived=arrived_all,
                within=inside,
                share=share(inside, arrived_all),
            )
        )
    return Compliance(
        nfpa_1225=Nfpa1225(
            limit_s=NFPA_PROCESSING_S,
            target_share=NFPA_TARGET_SHARE,
            dispatched=dispatched,
            within=within,
            share=processing_share,
            met=None if processing_share is None else processing_share >= NFPA_TARGET_SHARE,
            never_dispatched=sum(t.not_dispatched for t in timeliness),
        ),
        arrival_norms=norms,
        arrived_outside_grids=sum(
            t.arrived for t in timeliness if t.grid_id is None or t.grid_id not in areas
        ),
        circles=circles,
        not_arrived=sum(t.not_arrived for t in timeliness),
    )


def _kind_spreads(spreads: Mapping[str, Spread]) -> list[KindSpread]:
    kinds = [*_PARTY_KINDS, *sorted(k for k in spreads if k not in _PARTY_KINDS)]
    out = []
    for kind in kinds:
        s = spreads.get(kind, NO_SPREAD)
        out.append(KindSpread(kind=kind, n=s.n, p50_s=s.p50, p90_s=s.p90, p99_s=s.p99))
    return out


def mutual_aid_of(figures: MutualAidFigures) -> MutualAid:
    """Name the mutual-aid figures and work out the mean answering parties per incident."""
    histogram = figures.answered_per_incident
    answered_total = sum(parties * n for parties, n in histogram.items())
    incidents = sum(histogram.values())
    return MutualAid(
        enterprise_incidents=figures.enterprise_incidents,
        incidents_alerted=figures.incidents_alerted,
        parties_alerted=figures.parties_alerted,
        parties_answered=figures.parties_answered,
        mutual_aid_answered=figures.mutual_aid_answered,
        mean_answered_per_incident=(answered_total / incidents) if incidents else None,
        answered_per_incident=[
            PartyCount(parties=p, incidents=histogram[p]) for p in sorted(histogram)
        ],
        answer_s=_kind_spreads(figures.answer),
        arrival_s=_kind_spreads(figures.arrival),
    )


def screening_of(
    zone: Zone, months: Sequence[str], figures: Sequence[ScreeningFigure]
) -> list[ScreeningRow]:
    """One row per month and grid of the zone (zeros included), then grids outside the zone."""
    found: dict[tuple[str, str | None, str], ScreeningFigure] = {
        (f.month, f.grid_id, f.category): f for f in figures
    }
    zone_grids: list[str | None] = [grid.id for grid in zone.grids]
    extra = sorted({f.grid_id for f in figures if f.grid_id not in zone_grids}, key=_none_last)
    rows = []
    for month in months:
        for grid_id in [*zone_grids, *extra]:
            dispute = found.get((month, grid_id, Category.DISPUTE.value))
            hazard = found.get((month, grid_id, Category.HAZARD.value))
            d, ds = (dispute.found, dispute.settled) if dispute else (0, 0)
            h, hs = (hazard.found, hazard.settled) if hazard else (0, 0)
            rows.append(
                ScreeningRow(
                    month=month,
                    grid_id=grid_id,
                    grid_name=grid_label(zone, grid_id),
                    disputes=d,
                    disputes_settled=ds,
                    hazards=h,
                    hazards_resolved=hs,
                    settled_share=share(ds + hs, d + h),
                )
            )
    return rows


def _none_last(grid_id: str | None) -> tuple[bool, str]:
    return (grid_id is None, grid_id or "")
