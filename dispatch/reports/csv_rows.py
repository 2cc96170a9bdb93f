"""The report as CSV in long form: one figure per row, so a spreadsheet can pivot it.

Columns: section, scope, key, label, metric, value. Numbers are raw (seconds, fractions,
percent changes unrounded); an unknown figure is an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from dispatch.reports.model import Report

HEADER = ("section", "scope", "key", "label", "metric", "value")
Row = tuple[str, str, str, str, str, str]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _row(section: str, scope: str, key: object, label: str, metric: str, value: object) -> Row:
    return (section, scope, _cell(key), label, metric, _cell(value))


def rows_of(report: Report) -> Iterator[Row]:
    """Yield every figure of the report as one row."""
    p = report
    for name, span in (
        ("period", p.period),
        ("month_before", p.month_before),
        ("year_before", p.year_before),
    ):
        yield _row("period", name, "", p.timezone, "start", span.start.isoformat())
        yield _row("period", name, "", p.timezone, "end", span.end.isoformat())
    for metric in ("alarms", "incidents", "cancelled"):
        yield _row("counts", "total", "", "", metric, getattr(p.counts, metric))
    for scope in ("by_source_kind", "by_category", "by_grid", "by_place"):
        for count in getattr(p.counts, scope):
            yield _row("counts", scope, count.key, count.label, "count", count.count)
    for hour in p.counts.by_hour:
        yield _row("counts", "by_hour", hour.hour, f"{hour.hour:02d}:00", "count", hour.count)
    for c in p.changes:
        for metric in ("current", "month_before", "year_before", "mom_pct", "yoy_pct"):
            yield _row(
                "changes", "+".join(c.categories), c.key, c.label, metric, getattr(c, metric)
            )
    for s in p.intervals:
        for metric in ("n", "p50_s", "p90_s", "p99_s"):
            yield _row(
                f"interval:{s.interval}", s.scope, s.key, s.label, metric, getattr(s, metric)
            )
    nfpa = p.compliance.nfpa_1225
    for metric in ("limit_s", "target_share", "dispatched", "within", "share", "met"):
        yield _row("compliance", "nfpa_1225", "", "", metric, getattr(nfpa, metric))
    yield _row("compliance", "nfpa_1225", "", "", "never_dispatched", nfpa.never_dispatched)
    for norm in p.compliance.arrival_norms:
        for metric in ("limit_s", "arrived", "within", "share"):
            yield _row("compliance", "arrival_norm", norm.area, "", metric, getattr(norm, metric))
    for circle in p.compliance.circles:
        for metric in ("limit_s", "arrived", "within", "share"):
            value = getattr(circle, metric)
            yield _row("compliance", "circle", circle.minutes, "", metric, value)
    for metric in ("arrived_outside_grids", "not_arrived"):
        yield _row("compliance", "total", "", "", metric, getattr(p.compliance, metric))
    m = p.mutual_aid
    for metric in (
        "enterprise_incidents",
        "incidents_alerted",
        "parties_alerted",
        "parties_answered",
        "mutual_aid_answered",
        "mean_answered_per_incident",
    ):
        yield _row("mutual_aid", "total", "", "", metric, getattr(m, metric))
    for pc in m.answered_per_incident:
        yield _row("mutual_aid", "answered_per_incident", pc.parties, "", "incidents", pc.incidents)
    for scope, spreads in (("answer", m.answer_s), ("arrival", m.arrival_s)):
        for k in spreads:
            for metric in ("n", "p50_s", "p90_s", "p99_s"):
                yield _row("mutual_aid", scope, k.kind, "", metric, getattr(k, metric))
    for r in p.screening:
        for metric in (
            "disputes",
            "disputes_settled",
            "hazards",
            "hazards_resolved",
            "settled_share",
        ):
            yield _row("screening", r.month, r.grid_id, r.grid_name, metric, getattr(r, metric))


def csv_text(report: Report) -> str:
    """Return the whole report as CSV text (a header row, then rows_of)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows_of(report))
    return out.getvalue()
