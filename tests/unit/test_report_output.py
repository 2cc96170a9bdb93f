"""The report's three outputs from one hand-built report: terminal tables, CSV and the page."""

from __future__ import annotations

import csv
import io
import re

import pytest

from dispatch.reports import Report
from dispatch.reports.csv_rows import HEADER, csv_text
from dispatch.reports.page import render_page
from dispatch.reports.tables import Table, duration, render_report_text, render_text, width
from dispatch.zone import default_zone_path, load_zone
from tests.unit.test_report_build import report

# The only URLs an inline SVG may carry: its XML namespaces, which name, never load.
_NAMESPACES = re.compile(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"')


@pytest.fixture(scope="module")
def built() -> Report:
    """Return the report of the hand-built figures of test_report_build."""
    return report(load_zone(default_zone_path()))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.0, "0.0s"),
        (59.94, "59.9s"),
        (60.0, "1m00s"),
        (400.0, "6m40s"),
        (3599.4, "59m59s"),
        (7500.0, "2h05m"),
        (-2.5, "-2.5s"),
    ],
)
def test_durations_read_as_minutes_and_seconds(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_columns_line_up_with_chinese_names() -> None:
    table = Table("t", ("grid", "n"), [("淅河镇", "3"), ("cd-g01", "12")], frozenset({1}))
    lines = render_text(table).splitlines()
    assert width("淅河镇") == 6
    # Every row is as wide as the header: the CJK name counts two columns per character.
    assert {width(line) for line in lines[2:]} == {width(lines[3])}
    assert lines[4] == "淅河镇   3"
    assert lines[5] == "cd-g01  12"


def test_terminal_report_has_every_section_and_the_headline_change(built: Report) -> None:
    text = render_report_text(built)
    for title in (
        "Change per category",
        "Alarms by source",
        "Incidents by category",
        "Incidents by grid",
        "Incidents by place",
        "Incidents by hour of day (Asia/Shanghai)",
        "Response intervals, all incidents",
        "Response intervals by grid",
        "Response intervals by unit",
        "Compliance",
        "Mutual aid at enterprise alarms",
        "Grid screening",
    ):
        assert title in text
    alarms = next(line for line in text.splitlines() if line.startswith("报警总量 alarms"))
    assert alarms.split()[2:] == ["13", "10", "+30.0", "%", "26", "-50.0", "%"]
    nfpa = next(line for line in text.splitlines() if line.startswith("NFPA 1225"))
    assert nfpa.split()[-6:] == ["9", "8", "88.9", "%", "NOT", "met"]
    assert "received → arrived       4  3m50s  6m07s  6m37s" in text


def test_csv_has_one_figure_per_row_with_raw_numbers(built: Report) -> None:
    rows = list(csv.reader(io.StringIO(csv_text(built))))
    assert tuple(rows[0]) == HEADER
    assert all(len(row) == len(HEADER) for row in rows)
    figures = {(r[0], r[1], r[2], r[4]): r[5] for r in rows[1:]}
    assert figures[("changes", "", "alarms", "yoy_pct")] == "-50.0"
    assert figures[("changes", "robbery+theft+intrusion", "criminal", "current")] == "5"
    assert figures[("changes", "fight", "public_order", "yoy_pct")] == ""  # no base
    assert figures[("interval:response", "overall", "", "p99_s")] == "396.7"
    assert figures[("interval:classify", "overall", "", "p50_s")] == ""
    assert figures[("interval:processing", "unit", "cd-patrol-1", "p90_s")] == "84.0"
    assert figures[("compliance", "nfpa_1225", "", "met")] == "False"
    assert figures[("compliance", "arrival_norm", "urban", "within")] == "2"
    assert figures[("compliance", "circle", "5", "within")] == "4"
    assert figures[("mutual_aid", "total", "", "mean_answered_per_incident")] == "1.5"
    assert figures[("screening", "2026-11", "cd-g01", "disputes_settled")] == "1"
    assert figures[("counts", "by_hour", "21", "count")] == "6"
    assert figures[("counts", "by_place", "", "count")] == "3"  # the unnamed place
    assert figures[("period", "year_before", "", "start")] == "2025-10-31T16:00:00+00:00"


@pytest.fixture(scope="module")
def page(built: Report) -> str:
    """Render the page once (matplotlib takes seconds), with a place name that needs escaping."""
    places = [built.counts.by_place[0].model_copy(update={"label": "<script>alert(1)</script>"})]
    counts = built.counts.model_copy(update={"by_place": places})
    return render_page(built.model_copy(update={"counts": counts}))


def test_page_is_self_contained_with_inline_charts(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 9
    assert page.count("</svg>") == 9
    for loader in ("<script", "<img", "<link", "<iframe", "src=", "@import"):
        assert loader not in page
    # url() only for the charts' own clip paths inside the same SVG.
    assert re.findall(r"url\((?!#)", page) == []
    assert "http" not in _NAMESPACES.sub("", page)
    # The headline figures are on the page as text, not only inside the charts.
    assert "报警总量 alarms" in page
    assert "同比 YoY -50.0 %" in page


def test_page_escapes_what_the_record_holds(page: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
