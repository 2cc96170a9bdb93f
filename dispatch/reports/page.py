"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no link out.

A control room may have no Internet access and a report is mailed around as one file, so the
page loads nothing: no CDN, no font, no script, no image file.
"""

from __future__ import annotations

from html import escape

from dispatch.reports.charts import charts_of
from dispatch.reports.model import Report
from dispatch.reports.tables import Table, change, day_span, percent, tables_of

_CSS = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #555; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 11em; }
.card .v { font-size: 1.6em; font-weight: bold; }
.card .d { font-size: 0.9em; }
.down { color: #2f8f4e; } .up { color: #c0392b; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #eee; padding: 0.25em 0.7em; text-align: left; }
th { background: #f5f7fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #666; font-size: 0.85em; }
.chart { max-width: 900px; }
details summary { cursor: pointer; color: #1f5fa8; }
"""
# Tables longer than this are folded (the per-unit intervals of a whole zone, the screening
# of two years): the page stays readable and still holds every figure.
_FOLD_ROWS = 40


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="n">{escape(c)}</td>' if i in table.numeric else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if len(table.rows) > _FOLD_ROWS:
        html = f"<details><summary>{len(table.rows)} rows</summary>{html}</details>"
    if table.note:
        html += f'<p class="note">{escape(table.note)}</p>'
    return html


def _card(title: str, value: str, pct: float | None, caption: str) -> str:
    tone = "" if pct is None else ("down" if pct < 0 else "up")
    return (
        f'<div class="card"><div>{escape(title)}</div><div class="v">{escape(value)}</div>'
        f'<div class="d {tone}">{escape(caption)}</div></div>'
    )


def _cards(report: Report) -> str:
    cards = [
        _card(c.label, str(c.current), c.yoy_pct, f"同比 YoY {change(c.yoy_pct)}")
        for c in report.changes[:4]
    ]
    nfpa = report.compliance.nfpa_1225
    cards.append(
        _card("NFPA 1225 ≤ 60 s", percent(nfpa.share), None, f"target {percent(nfpa.target_share)}")
    )
    for norm in report.compliance.arrival_norms:
        cards.append(
            _card(
                f"{norm.area} arrival ≤ {norm.limit_s // 60} min",
                percent(norm.share),
                None,
                f"{norm.within} of {norm.arrived}",
            )
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def render_page(report: Report) -> str:
    """Return the report as a whole HTML document."""
    charts = charts_of(report)
    sections = []
    for table in tables_of(report):
        chart = charts.get(table.key, "")
        figure = f'<div class="chart">{chart}</div>' if chart else ""
        sections.append(
            f"<section><h2>{escape(table.title)}</h2>{figure}{_table_html(table)}</section>"
        )
    period = day_span(report, report.period.start, report.period.end)
    title = f"{report.zone_name} — report {period}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{escape(report.zone_name)}</h1>"
        f'<p class="sub">Report for {escape(period)} ({escape(report.timezone)}); '
        f"{report.counts.alarms} alarms, {report.counts.incidents} incidents. "
        f"Generated {escape(report.local(report.generated_at).strftime('%Y-%m-%d %H:%M'))}. "
        "Every figure is defined in docs/reports.md.</p>"
        f"{_cards(report)}{''.join(sections)}</body></html>\n"
    )
