"""The report as titled tables of text cells, shared by the terminal and the HTML page.

Cells are formatted here once: durations as `1m05s`, shares as `83.3 %`, changes as
`-53.8 %`, a figure with nothing to measure as `-`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dispatch.reports.model import Count, IntervalStat, KindSpread, Report

DASH = "-"
PLACES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table: a header row, text rows, and which columns are numbers (right-aligned)."""

    title: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    numeric: frozenset[int] = frozenset()
    note: str | None = None
    key: str = field(default="")


def duration(seconds: float | None) -> str:
    """Format seconds for a person: `45.0s`, `6m40s`, `2h05m`; `-` when unknown."""
    if seconds is None:
        return DASH
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s < 60:
        return f"{sign}{s:.1f}s"
    whole = round(s)
    if whole < 3600:
        return f"{sign}{whole // 60}m{whole % 60:02d}s"
    return f"{sign}{whole // 3600}h{whole % 3600 // 60:02d}m"


def percent(fraction: float | None) -> str:
    """Format a share (0.833) as `83.3 %`; `-` when there was nothing to share."""
    return DASH if fraction is None else f"{fraction * 100:.1f} %"


def change(pct: float | None) -> str:
    """Format a change in percent with its sign (`-53.8 %`, `+25.0 %`); `-` with no base."""
    return DASH if pct is None else f"{pct:+.1f} %"


def day_span(report: Report, start: datetime, end: datetime) -> str:
    """Format a period in the zone's local time, `2026-11-01 00:00 to 2026-12-01 00:00`."""
    a, b = report.local(start), report.local(end)
    return f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M}"


def width(text: str) -> int:
    """Return how many terminal columns text takes (a CJK character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_text(table: Table) -> str:
    """Render a table for a terminal with aligned columns."""
    cells = [table.headers, *table.rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(table.headers))]

    def line(row: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - width(cell))
            parts.append(pad + cell if i in table.numeric else cell + pad)
        return "  ".join(parts).rstrip()

    out = [table.title, "=" * width(table.title), line(table.headers)]
    out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in table.rows]
    if table.note:
        out.append(table.note)
    return "\n".join(out)


def tables_of(report: Report) -> list[Table]:
    """Return every table of the report in reading order."""
    return [
        _changes(report),
        _counted(report, "by_source_kind", "Alarms by source", "source"),
        _counted(report, "by_category", "Incidents by category", "category"),
        _counted(report, "by_grid", "Incidents by grid", "grid"),
        _places(report),
        _hours(report),
        _intervals(report, "overall", "Response intervals, all incidents"),
        _intervals(report, "grid", "Response intervals by grid"),
        _intervals(report, "unit", "Response intervals by unit (its own job's milestones)"),
        _compliance(report),
        _mutual_aid(report),
        _spreads(report.mutual_aid.answer_s, "Mutual aid: received → a party's first answer"),
        _spreads(report.mutual_aid.arrival_s, "Mutual aid: received → a party's arrival"),
        _screening(report),
    ]


def _changes(report: Report) -> Table:
    rows = [
        (
            c.label,
            str(c.current),
            str(c.month_before),
            change(c.mom_pct),
            str(c.year_before),
            change(c.yoy_pct),
        )
        for c in report.changes
    ]
    return Table(
        "Change per category: month on month (环比) and year on year (同比)",
        ("figure", "now", "month before", "MoM", "year before", "YoY"),
        rows,
        frozenset({1, 2, 3, 4, 5}),
        note=(
            f"now: {day_span(report, report.period.start, report.period.end)}; "
            f"month before: {day_span(report, report.month_before.start, report.month_before.end)}"
            f"; year before: {day_span(report, report.year_before.start, report.year_before.end)}"
        ),
        key="changes",
    )


def _counted(report: Report, attribute: str, title: str, what: str) -> Table:
    counts: list[Count] = getattr(report.counts, attribute)
    total = sum(c.count for c in counts)
    rows: list[tuple[str, ...]]
    if attribute == "by_grid":
        rows = [
            (c.key or "(none)", c.label, str(c.count), percent(c.count / total if total else None))
            for c in counts
        ]
        return Table(
            title, (what, "name", "count", "share"), rows, frozenset({2, 3}), key=attribute
        )
    rows = [(c.label, str(c.count), percent(c.count / total if total else None)) for c in counts]
    return Table(title, (what, "count", "share"), rows, frozenset({1, 2}), key=attribute)


def _places(report: Report) -> Table:
    places = report.counts.by_place
    total = sum(c.count for c in places)
    rows = [
        (c.label, str(c.count), percent(c.count / total if total else None))
        for c in places[:PLACES_SHOWN]
    ]
    note = None
    if len(places) > PLACES_SHOWN:
        rest = sum(c.count for c in places[PLACES_SHOWN:])
        note = f"{len(places) - PLACES_SHOWN} more places with {rest} incidents (all in --csv)"
    return Table(
        "Incidents by place", ("place", "count", "share"), rows, frozenset({1, 2}), note, "by_place"
    )


def _hours(report: Report) -> Table:
    # One row across: 24 narrow columns read better than 24 lines.
    hours = report.counts.by_hour
    return Table(
        f"Incidents by hour of day ({report.timezone})",
        tuple(f"{h.hour:02d}" for h in hours),
        [tuple(str(h.count) for h in hours)],
        frozenset(range(len(hours))),
        key="by_hour",
    )


def _stat_row(stat: IntervalStat) -> tuple[str, ...]:
    return (
        stat.label,
        str(stat.n),
        duration(stat.p50_s),
        duration(stat.p90_s),
        duration(stat.p99_s),
    )


def _intervals(report: Report, scope: str, title: str) -> Table:
    stats = [s for s in report.intervals if s.scope == scope]
    if scope == "overall":
        return Table(
            title,
            ("interval", "n", "P50", "P90", "P99"),
            [_stat_row(s) for s in stats],
            frozenset({1, 2, 3, 4}),
            key="intervals_overall",
        )
    name = "grid" if scope == "grid" else "unit"
    rows = [((s.key or "(none)"), *_stat_row(s)) for s in stats]
    return Table(
        title,
        (name, "interval", "n", "P50", "P90", "P99"),
        rows,
        frozenset({2, 3, 4, 5}),
        key=f"intervals_{scope}",
    )


def _compliance(report: Report) -> Table:
    c = report.compliance
    nfpa = c.nfpa_1225
    verdict = DASH if nfpa.met is None else ("met" if nfpa.met else "NOT met")
    rows = [
        (
            f"NFPA 1225: processed ≤ {nfpa.limit_s} s (target {percent(nfpa.target_share)})",
            str(nfpa.dispatched),
            str(nfpa.within),
            percent(nfpa.share),
            verdict,
        )
    ]
    for norm in c.arrival_norms:
        rows.append(
            (
                f"arrival, {norm.area} grids ≤ {norm.limit_s // 60} min",
                str(norm.arrived),
                str(norm.within),
                percent(norm.share),
                "",
            )
        )
    for circle in c.circles:
        rows.append(
            (
                f"{circle.minutes}-minute circle",
                str(circle.arrived),
                str(circle.within),
                percent(circle.share),
                "",
            )
        )
    note = (
        f"never dispatched: {nfpa.never_dispatched}; no arrival recorded: {c.not_arrived}; "
        f"arrivals outside the zone's grids (no norm): {c.arrived_outside_grids}"
    )
    return Table(
        "Compliance",
        ("norm", "measured", "within", "share", "verdict"),
        rows,
        frozenset({1, 2, 3}),
        note,
        "compliance",
    )


def _mutual_aid(report: Report) -> Table:
    m = report.mutual_aid
    rows = [
        ("enterprise incidents", str(m.enterprise_incidents)),
        ("with mutual-aid alerts", str(m.incidents_alerted)),
        ("guards alerted", str(m.parties_alerted)),
        ("parties that answered", str(m.parties_answered)),
        ("guards that answered", str(m.mutual_aid_answered)),
        (
            "answering parties per incident (mean)",
            DASH if m.mean_answered_per_incident is None else f"{m.mean_answered_per_incident:.2f}",
        ),
    ]
    rows += [
        (
            f"incidents answered by {p.parties} {'party' if p.parties == 1 else 'parties'}",
            str(p.incidents),
        )
        for p in m.answered_per_incident
    ]
    return Table(
        "Mutual aid at enterprise alarms (一方有警,八方响应)",
        ("figure", "value"),
        rows,
        frozenset({1}),
        key="mutual_aid",
    )


def _spreads(spreads: list[KindSpread], title: str) -> Table:
    rows = [
        (s.kind, str(s.n), duration(s.p50_s), duration(s.p90_s), duration(s.p99_s)) for s in spreads
    ]
    return Table(title, ("party", "n", "P50", "P90", "P99"), rows, frozenset({1, 2, 3, 4}))


def _screening(report: Report) -> Table:
    rows = [
        (
            r.month,
            r.grid_id or "(none)",
            str(r.disputes),
            str(r.disputes_settled),
            str(r.hazards),
            str(r.hazards_resolved),
            percent(r.settled_share),
        )
        for r in report.screening
    ]
    return Table(
        "Grid screening (网格排查): disputes and hazards per grid and month",
        ("month", "grid", "disputes", "settled", "hazards", "resolved", "settled share"),
        rows,
        frozenset({2, 3, 4, 5, 6}),
        key="screening",
    )


def render_report_text(report: Report) -> str:
    """Render the whole report for a terminal."""
    head = (
        f"{report.zone_name}: report for "
        f"{day_span(report, report.period.start, report.period.end)} ({report.timezone}); "
        f"{report.counts.alarms} alarms, {report.counts.incidents} incidents "
        f"({report.counts.cancelled} cancelled)"
    )
    return "\n\n".join([head, *(render_text(t) for t in tables_of(report))]) + "\n"
