"""The report's charts, drawn with matplotlib into SVG text for the page to inline.

No pyplot: each chart is its own Figure, so nothing global is left behind and no display
backend is needed. Text is drawn as paths (no font needed by the browser) and the SVG carries
no metadata, DOCTYPE or link, so the page stays self-contained. Labels are ids and English
words only: the fonts matplotlib ships have no CJK glyphs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.typing import RcKeyType

from dispatch.reports.definitions import (
    CATEGORY_GROUPS,
    NFPA_TARGET_SHARE,
    SUBURBAN_ARRIVAL_S,
    URBAN_ARRIVAL_S,
)
from dispatch.reports.model import Report

NOW, MONTH_BEFORE, YEAR_BEFORE = "#1f5fa8", "#9bb8d8", "#e39b3b"
GOOD, BAD, GREY = "#2f8f4e", "#c0392b", "#7f8c8d"
_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "dispatch-report",  # the same report draws the same SVG
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_SIZE = re.compile(r'(<svg[^>]*?)\swidth="[^"]*"\s+height="[^"]*"')


def svg_of(figure: Figure) -> str:
    """Return the figure as an inline `<svg>` element that scales to its container."""
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = _METADATA.sub("", _PROLOGUE.sub("", out.getvalue(), count=1))
    return _SIZE.sub(r'\1 width="100%"', text, count=1)


def _figure(width: float = 7.5, height: float = 3.2) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots()


def _whole_numbers(ax: Axes) -> None:
    # Counts: no tick at 0.25 of an incident.
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _label_bars(ax: Axes, bars: BarContainer, texts: Sequence[str]) -> None:
    ax.bar_label(bars, labels=list(texts), padding=2, fontsize=7)


def change_chart(report: Report) -> str:
    """Draw alarms and the published groups: now, the month before and the year before."""
    keys = ["alarms", *(g.key for g in CATEGORY_GROUPS)]
    rows = {c.key: c for c in report.changes}
    with mpl.rc_context(_STYLE):
        figure = Figure(figsize=(7.5, 3.2), layout="constrained")
        left, right = figure.subplots(1, 2, width_ratios=[1, 3])
        for ax, chosen in ((left, keys[:1]), (right, keys[1:])):
            xs = range(len(chosen))
            for offset, attribute, colour, name in (
                (-0.27, "year_before", YEAR_BEFORE, "year before"),
                (0.0, "month_before", MONTH_BEFORE, "month before"),
                (0.27, "current", NOW, "now"),
            ):
                values = [getattr(rows[k], attribute) for k in chosen]
                bars = ax.bar([x + offset for x in xs], values, 0.27, color=colour, label=name)
                _label_bars(ax, bars, [str(v) for v in values])
            ax.set_xticks(list(xs), [_yoy_label(k, rows[k].yoy_pct) for k in chosen])
        figure.legend(
            *right.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=7
        )
        left.set_ylabel("count")
        _whole_numbers(left)
        _whole_numbers(right)
        figure.suptitle("Alarms and cases: now, month before, year before (YoY change)")
        return svg_of(figure)


def _yoy_label(key: str, pct: float | None) -> str:
    return f"{key}\n{'YoY n/a' if pct is None else f'YoY {pct:+.1f} %'}"


def category_chart(report: Report) -> str:
    """Draw incidents per category, now against the year before."""
    rows = [c for c in report.changes if c.categories == [c.key]]
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 3.4)
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r.year_before for r in rows], 0.4, color=YEAR_BEFORE)
        ax.bar([x + 0.2 for x in xs], [r.current for r in rows], 0.4, color=NOW)
        ax.set_xticks(list(xs), [r.key for r in rows], rotation=35, ha="right")
        ax.legend(["year before", "now"], fontsize=7)
        _whole_numbers(ax)
        ax.set_title("Incidents by category, now and a year before")
        return svg_of(figure)


def hour_chart(report: Report) -> str:
    """Draw incidents per local hour of day."""
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 2.6)
        hours = report.counts.by_hour
        ax.bar([h.hour for h in hours], [h.count for h in hours], color=NOW)
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel(f"hour of day ({report.timezone})")
        _whole_numbers(ax)
        ax.set_title("Incidents by hour of day")
        return svg_of(figure)


def grid_chart(report: Report) -> str:
    """Draw incidents per grid."""
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 2.8)
        grids = report.counts.by_grid
        bars = ax.bar([g.key or "(none)" for g in grids], [g.count for g in grids], color=NOW)
        _label_bars(ax, bars, [str(g.count) for g in grids])
        _whole_numbers(ax)
        ax.set_title("Incidents by grid")
        return svg_of(figure)


def interval_chart(report: Report) -> str:
    """Draw P50, P90 and P99 of every interval up to arrival over all incidents, in minutes.

    The time on scene (arrived → closed) is left to the table: it runs to hours and would
    squash every bar of the response to nothing.
    """
    stats = [s for s in report.intervals if s.scope == "overall" and s.interval != "on_scene"]
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 3.6)
        ys = range(len(stats))
        for offset, attribute, colour in (
            (-0.27, "p50_s", MONTH_BEFORE),
            (0.0, "p90_s", NOW),
            (0.27, "p99_s", YEAR_BEFORE),
        ):
            values = [(getattr(s, attribute) or 0.0) / 60 for s in stats]
            ax.barh([y + offset for y in ys], values, 0.27, color=colour)
        ax.set_yticks(list(ys), [s.label.replace("→", "->") for s in stats])
        ax.invert_yaxis()
        ax.set_xlabel("minutes")
        figure.legend(["P50", "P90", "P99"], loc="outside lower center", ncols=3, fontsize=7)
        ax.set_title("Response intervals up to arrival, all incidents")
        return svg_of(figure)


def grid_response_chart(report: Report) -> str:
    """Draw each grid's P50 and P90 from reception to arrival against the two arrival norms."""
    stats = [s for s in report.intervals if s.scope == "grid" and s.interval == "response"]
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 3.0)
        xs = range(len(stats))
        for offset, attribute, colour, name in (
            (-0.2, "p50_s", MONTH_BEFORE, "P50"),
            (0.2, "p90_s", NOW, "P90"),
        ):
            values = [(getattr(s, attribute) or 0.0) / 60 for s in stats]
            ax.bar([x + offset for x in xs], values, 0.4, color=colour, label=name)
        for minutes, name in (
            (URBAN_ARRIVAL_S // 60, "urban"),
            (SUBURBAN_ARRIVAL_S // 60, "suburban"),
        ):
            ax.axhline(minutes, color=GREY, linestyle="--", linewidth=1)
            ax.annotate(
                f"{name} norm {minutes} min",
                (1.0, minutes),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize=7,
                color=GREY,
            )
        ax.set_xticks(list(xs), [s.key or "(none)" for s in stats])
        ax.set_ylabel("minutes")
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title("Received -> arrived by grid")
        return svg_of(figure)


def compliance_chart(report: Report) -> str:
    """Draw the share within each norm, with NFPA 1225's 90 % target as a line."""
    c = report.compliance
    names = [f"NFPA 1225 <= {c.nfpa_1225.limit_s} s"]
    shares = [c.nfpa_1225.share]
    names += [f"{n.area} arrival <= {n.limit_s // 60} min" for n in c.arrival_norms]
    shares += [n.share for n in c.arrival_norms]
    names += [f"{k.minutes}-min circle" for k in c.circles]
    shares += [k.share for k in c.circles]
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 2.8)
        values = [100 * (s or 0.0) for s in shares]
        # Only NFPA 1225 sets a share to reach; the arrival norms and circles are shown plain.
        nfpa = shares[0]
        colours = [GREY if nfpa is None else (GOOD if nfpa >= NFPA_TARGET_SHARE else BAD)]
        colours += [NOW] * (len(shares) - 1)
        bars = ax.barh(names, values, color=colours)
        _label_bars(ax, bars, ["n/a" if s is None else f"{100 * s:.1f} %" for s in shares])
        ax.axvline(100 * NFPA_TARGET_SHARE, color=GREY, linestyle="--", linewidth=1)
        ax.set_xlim(0, 110)
        ax.invert_yaxis()
        ax.set_xlabel("% of incidents (dashed: the NFPA 1225 target, 90 %)")
        ax.set_title("Compliance")
        return svg_of(figure)


def mutual_aid_chart(report: Report) -> str:
    """Draw how many enterprise incidents were answered by 0, 1, 2, ... parties."""
    counts = report.mutual_aid.answered_per_incident
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 2.6)
        bars = ax.bar([str(p.parties) for p in counts], [p.incidents for p in counts], color=NOW)
        _label_bars(ax, bars, [str(p.incidents) for p in counts])
        ax.set_xlabel("parties that answered")
        ax.set_ylabel("enterprise incidents")
        _whole_numbers(ax)
        ax.set_title("Mutual aid: parties answering each enterprise alarm")
        return svg_of(figure)


def screening_chart(report: Report) -> str:
    """Draw each grid's disputes and hazards over the period, and how many were settled."""
    grids: dict[str, list[int]] = {}
    for r in report.screening:
        totals = grids.setdefault(r.grid_id or "(none)", [0, 0, 0, 0])
        for i, value in enumerate((r.disputes, r.disputes_settled, r.hazards, r.hazards_resolved)):
            totals[i] += value
    with mpl.rc_context(_STYLE):
        figure, ax = _figure(7.5, 3.0)
        xs = range(len(grids))
        width = 0.2
        for i, (name, colour) in enumerate(
            (
                ("disputes", YEAR_BEFORE),
                ("settled", GOOD),
                ("hazards", BAD),
                ("resolved", NOW),
            )
        ):
            values = [totals[i] for totals in grids.values()]
            ax.bar([x + (i - 1.5) * width for x in xs], values, width, color=colour, label=name)
        ax.set_xticks(list(xs), list(grids))
        ax.legend(fontsize=7)
        _whole_numbers(ax)
        ax.set_title("Grid screening: disputes and hazards found and settled, per grid")
        return svg_of(figure)


def charts_of(report: Report) -> dict[str, str]:
    """Return every chart of the report as inline SVG, keyed by the section it illustrates."""
    return {
        "changes": change_chart(report),
        "by_category": category_chart(report),
        "by_hour": hour_chart(report),
        "by_grid": grid_chart(report),
        "intervals_overall": interval_chart(report),
        "intervals_grid": grid_response_chart(report),
        "compliance": compliance_chart(report),
        "mutual_aid": mutual_aid_chart(report),
        "screening": screening_chart(report),
    }
