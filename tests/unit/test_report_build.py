"""The report built from raw figures: names, zero rows, changes and shares worked out by hand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch.reports import Period, Report, build_report
from dispatch.reports.definitions import change_pct
from dispatch.reports.figures import (
    CategoryCounts,
    Figures,
    GridTimeliness,
    IntervalFigure,
    MutualAidFigures,
    PeriodCounts,
    ScreeningFigure,
    Spread,
)
from dispatch.zone import Zone, default_zone_path, load_zone

CST = ZoneInfo("Asia/Shanghai")
NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=CST), datetime(2026, 12, 1, tzinfo=CST))
OCTOBER = Period(datetime(2026, 10, 1, tzinfo=CST), datetime(2026, 11, 1, tzinfo=CST))
NOVEMBER_2025 = Period(datetime(2025, 11, 1, tzinfo=CST), datetime(2025, 12, 1, tzinfo=CST))


@pytest.fixture(scope="module")
def zone() -> Zone:
    """Return the demo zone: cd-* grids urban, xh-* suburban, in Asia/Shanghai."""
    return load_zone(default_zone_path())


def sample_figures() -> Figures:
    """Return a small set of raw figures whose report the tests work out by hand."""
    return Figures(
        current=PeriodCounts(
            alarms=13,
            alarms_by_source={"desk": 6, "sensor": 5, "guard": 2},
            incidents=10,
            cancelled=1,
            by_category={"theft": 3, "robbery": 2, "fight": 1, "dispute": 3, "hazard": 1},
            by_grid={"cd-g01": 6, "xh-g02": 3, None: 1},
            by_place={"随州站广场": 4, None: 3, "城东公园": 3},
            by_hour={8: 4, 21: 6},
        ),
        month_before=CategoryCounts(
            alarms=10, by_category={"theft": 4, "robbery": 1, "intrusion": 5, "fight": 2}
        ),
        year_before=CategoryCounts(
            alarms=26, by_category={"theft": 6, "robbery": 4, "fight": 0, "dispute": 2}
        ),
        intervals=(
            IntervalFigure("response", "overall", None, Spread(4, 230.0, 367.0, 396.7)),
            IntervalFigure("response", "grid", "xh-g02", Spread(1, 290.0, 290.0, 290.0)),
            IntervalFigure("response", "grid", "cd-g01", Spread(3, 170.0, 354.0, 395.4)),
            IntervalFigure("classify", "grid", "cd-g01", Spread(3, 2.0, 2.0, 2.0)),
            IntervalFigure("processing", "unit", "cd-patrol-1", Spread(2, 60.0, 84.0, 89.4)),
        ),
        timeliness=(
            GridTimeliness("cd-g01", 5, 1, 4, 3, {60: 1, 180: 2, 300: 2, 600: 3}, 3),
            GridTimeliness("xh-g02", 3, 0, 3, 2, {60: 0, 180: 0, 300: 1, 600: 2}, 1),
            # A grid the zone does not have: no norm, but its arrivals are in the circles.
            GridTimeliness("elsewhere", 1, 0, 1, 1, {60: 1, 180: 1, 300: 1, 600: 1}, 0),
        ),
        mutual_aid=MutualAidFigures(
            enterprise_incidents=4,
            incidents_alerted=2,
            parties_alerted=5,
            parties_answered=6,
            mutual_aid_answered=4,
            answered_per_incident={0: 1, 1: 1, 2: 1, 3: 1},
            answer={"mutual_aid_alert": Spread(4, 30.0, 50.0, 59.0)},
            arrival={},
        ),
        screening=(
            ScreeningFigure("2026-11", "cd-g01", "dispute", 2, 1),
            ScreeningFigure("2026-11", "cd-g01", "hazard", 1, 1),
            ScreeningFigure("2026-11", "xh-g02", "dispute", 1, 0),
        ),
    )


def report(zone: Zone) -> Report:
    """Build the report of sample_figures for November 2026."""
    return build_report(
        zone=zone,
        period=NOVEMBER,
        month_before=OCTOBER,
        year_before=NOVEMBER_2025,
        figures=sample_figures(),
        generated_at=datetime(2026, 12, 6, 10, tzinfo=CST),
    )


def test_change_pct_is_relative_to_the_earlier_figure() -> None:
    assert change_pct(6, 13) == pytest.approx(-53.846, abs=1e-3)  # the seed article's -53.8 %
    assert change_pct(5, 4) == 25.0
    assert change_pct(3, 0) is None


def test_changes_count_the_published_groups_from_their_categories(zone: Zone) -> None:
    changes = {c.key: c for c in report(zone).changes}
    alarms = changes["alarms"]
    assert (alarms.current, alarms.month_before, alarms.year_before) == (13, 10, 26)
    assert alarms.mom_pct == 30.0
    assert alarms.yoy_pct == -50.0
    # criminal = robbery + theft + intrusion: now 2+3+0 = 5, October 1+4+5 = 10, a year
    # before 4+6+0 = 10.
    criminal = changes["criminal"]
    assert criminal.categories == ["robbery", "theft", "intrusion"]
    assert (criminal.current, criminal.month_before, criminal.year_before) == (5, 10, 10)
    assert (criminal.mom_pct, criminal.yoy_pct) == (-50.0, -50.0)
    # robbery + theft: 5, October 5, a year before 10.
    rt = changes["robbery_theft"]
    assert (rt.current, rt.month_before, rt.year_before) == (5, 5, 10)
    assert (rt.mom_pct, rt.yoy_pct) == (0.0, -50.0)
    # public order = fight: 1, October 2, a year before 0 (no base: no percentage).
    po = changes["public_order"]
    assert (po.current, po.month_before, po.year_before, po.mom_pct, po.yoy_pct) == (
        1,
        2,
        0,
        -50.0,
        None,
    )
    dispute = changes["dispute"]
    assert (dispute.current, dispute.year_before, dispute.yoy_pct) == (3, 2, 50.0)
    # Every category has its row, the ones with nothing in any period too.
    assert changes["medical"].current == 0
    assert changes["medical"].mom_pct is None
    assert [c.key for c in report(zone).changes][:4] == [
        "alarms",
        "criminal",
        "public_order",
        "robbery_theft",
    ]


def test_counts_list_every_kind_zeros_included(zone: Zone) -> None:
    counts = report(zone).counts
    assert [(c.key, c.count) for c in counts.by_source_kind] == [
        ("desk", 6),
        ("guard", 2),
        ("sensor", 5),
        ("hotline", 0),
        ("commander", 0),
    ]
    by_grid = {c.key: (c.label, c.count) for c in counts.by_grid}
    assert len(by_grid) == 9  # the zone's 8 grids and the incidents outside every grid
    assert by_grid["cd-g01"] == ("城东新区第一网格(火车站片区) Chengdong grid 1, station area", 6)
    assert by_grid["cd-g02"][1] == 0
    assert by_grid[None] == ("(no grid)", 1)
    # Places by count; among equal counts the named ones first, by name.
    assert [(c.key, c.count) for c in counts.by_place] == [
        ("随州站广场", 4),
        ("城东公园", 3),
        (None, 3),
    ]
    assert len(counts.by_hour) == 24
    assert counts.by_hour[8].count == 4
    assert counts.by_hour[21].count == 6
    assert sum(h.count for h in counts.by_hour) == 10


def test_intervals_list_every_interval_overall_then_grids_and_units(zone: Zone) -> None:
    stats = report(zone).intervals
    overall = [s for s in stats if s.scope == "overall"]
    assert [s.interval for s in overall] == [
        "classify",
        "dispatch",
        "deliver",
        "accept",
        "travel",
        "on_scene",
        "processing",
        "response",
    ]
    response = next(s for s in overall if s.interval == "response")
    assert (response.n, response.p50_s, response.p90_s, response.p99_s) == (4, 230.0, 367.0, 396.7)
    classify = overall[0]
    assert (classify.n, classify.p50_s) == (0, None)
    grids = [(s.key, s.interval) for s in stats if s.scope == "grid"]
    assert grids == [("cd-g01", "classify"), ("cd-g01", "response"), ("xh-g02", "response")]
    unit = next(s for s in stats if s.scope == "unit")
    assert (unit.key, unit.interval, unit.p90_s) == ("cd-patrol-1", "processing", 84.0)
    assert unit.label == "received → dispatched"


def test_compliance_adds_grids_up_by_their_area(zone: Zone) -> None:
    c = report(zone).compliance
    # NFPA: 5 + 3 + 1 dispatched, 4 + 3 + 1 of them within 60 s: 8/9, under 90 %.
    assert (c.nfpa_1225.dispatched, c.nfpa_1225.within) == (9, 8)
    assert c.nfpa_1225.share == pytest.approx(8 / 9)
    assert c.nfpa_1225.met is False
    assert c.nfpa_1225.never_dispatched == 1
    urban, suburban = c.arrival_norms
    # cd-g01 is urban: 3 arrivals, 2 within 300 s; xh-g02 suburban: 2 arrivals, 2 within 600 s.
    assert (urban.area, urban.limit_s, urban.arrived, urban.within) == ("urban", 300, 3, 2)
    assert urban.share == pytest.approx(2 / 3)
    assert (suburban.area, suburban.limit_s, suburban.arrived, suburban.within) == (
        "suburban",
        600,
        2,
        2,
    )
    assert suburban.share == 1.0
    assert c.arrived_outside_grids == 1
    # Circles over all 6 arrivals: within 60 s 1 + 0 + 1, 180 s 2 + 0 + 1, 300 s 2 + 1 + 1.
    assert [(k.minutes, k.arrived, k.within) for k in c.circles] == [
        (1, 6, 2),
        (3, 6, 3),
        (5, 6, 4),
    ]
    assert c.circles[2].share == pytest.approx(4 / 6)
    assert c.not_arrived == 4


def test_mutual_aid_mean_is_over_enterprise_incidents(zone: Zone) -> None:
    m = report(zone).mutual_aid
    # 0 + 1 + 2 + 3 answering parties over 4 incidents.
    assert m.mean_answered_per_incident == 1.5
    assert [(p.parties, p.incidents) for p in m.answered_per_incident] == [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 1),
    ]
    kinds = {k.kind: k for k in m.answer_s}
    assert kinds["assignment"].n == 0
    assert kinds["assignment"].p50_s is None
    assert (kinds["mutual_aid_alert"].n, kinds["mutual_aid_alert"].p90_s) == (4, 50.0)


def test_screening_has_a_row_per_grid_and_month(zone: Zone) -> None:
    rows = report(zone).screening
    assert len(rows) == 8  # one month, the zone's 8 grids
    by_grid = {r.grid_id: r for r in rows}
    cd = by_grid["cd-g01"]
    assert (cd.month, cd.disputes, cd.disputes_settled, cd.hazards, cd.hazards_resolved) == (
        "2026-11",
        2,
        1,
        1,
        1,
    )
    assert cd.settled_share == pytest.approx(2 / 3)
    assert by_grid["xh-g02"].settled_share == 0.0
    assert by_grid["xh-g04"].disputes == 0
    assert by_grid["xh-g04"].settled_share is None


def test_report_round_trips_through_json(zone: Zone) -> None:
    built = report(zone)
    again = Report.model_validate_json(built.model_dump_json())
    assert again == built
    assert built.model_dump(mode="json")["period"] == {
        "start": "2026-10-31T16:00:00.000Z",
        "end": "2026-11-30T16:00:00.000Z",
    }
