"""The demo history's mix: the article's falls by construction, every text its own category."""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

import pytest

from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.events import Category, RawAlarm, SourceKind
from dispatch.history import ARTICLE_RATIOS, GROUPS, MIX, Scenario
from dispatch.history.alarms import AlarmMaker, villages_of
from dispatch.history.schedule import (
    calls_of_month,
    is_school_day,
    monthly_counts,
    span_of,
)
from dispatch.triage import triage
from dispatch.zone import Zone, default_zone_path, load_zone

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 5, 1, 2, tzinfo=UTC)


@cache
def shipped() -> tuple[Zone, Rules]:
    return load_zone(default_zone_path()), load_rules(default_rules_path())


def test_the_first_years_shares_are_whole() -> None:
    assert sum(m.share for m in MIX.values()) == pytest.approx(1.0)
    assert set(MIX) == set(Category) - {Category.UNCLASSIFIED}


@pytest.mark.parametrize("group", ["all", "criminal", "public_order", "robbery_theft"])
def test_each_group_falls_as_the_article_says(group: str) -> None:
    categories = GROUPS.get(group, frozenset(MIX))
    first = sum(MIX[c].share for c in categories)
    second = sum(MIX[c].share * MIX[c].factor for c in categories)
    assert second / first == pytest.approx(ARTICLE_RATIOS[group], abs=0.0005)


def test_any_twelve_months_hold_the_factor_times_the_twelve_before() -> None:
    span = span_of(end=date(2026, 12, 1), months=24, tz=SHANGHAI)
    counts = monthly_counts(span, per_day=20.0)
    months = span.months
    for category, mix in MIX.items():
        first = sum(counts[(m, category)] for m in months[:12])
        second = sum(counts[(m, category)] for m in months[12:])
        # The running rounding is within one alarm of the rate in any span of months.
        assert second == pytest.approx(first * mix.factor, abs=2), category
    days = sum(calendar.monthrange(m.year, m.month)[1] for m in months[:12])
    assert sum(counts[(m, c)] for m in months[:12] for c in MIX) == pytest.approx(
        20 * days, rel=0.01
    )


def test_school_gates_are_quiet_at_weekends_and_in_the_holidays() -> None:
    assert is_school_day(date(2026, 11, 2))  # a Monday in term
    assert not is_school_day(date(2026, 11, 7))  # a Saturday
    assert not is_school_day(date(2026, 8, 12))
    assert not is_school_day(date(2026, 2, 2))
    span = span_of(end=date(2026, 9, 1), months=1, tz=SHANGHAI)
    (august,) = span.months
    calls = calls_of_month(span, august, monthly_counts(span, per_day=30.0), seed=1)
    assert calls
    assert not any(call.scenario.school_days_only for call in calls)


def _alarm(text: str, **where: object) -> RawAlarm:
    return RawAlarm.model_validate(
        {
            "alarm_id": uuid.uuid4(),
            "received_at": T0,
            "source_kind": SourceKind.HOTLINE,
            "source_id": "hotline",
            "text": text,
        }
        | where
    )


def _cases() -> list[tuple[Scenario, str, dict[str, object]]]:
    zone, _ = shipped()
    maker = AlarmMaker(zone, seed=1, namespace=uuid.uuid4())
    villages = [v for group in villages_of(zone).values() for v in group]
    cases = []
    for mix in MIX.values():
        for scenario in mix.scenarios:
            for text in scenario.texts:
                if scenario.villages:
                    for v in villages:
                        where = {"place_name": v.name, "position": v.position}
                        cases.append((scenario, text.format(place=v.name), where))
                for place in maker.places(scenario):
                    where = {"place_id": place.id}
                    if scenario.sensor is not None:  # a device's alarm, as AlarmMaker makes it
                        where |= {"source_kind": SourceKind.SENSOR} | maker.device(scenario, place)
                    cases.append((scenario, text.format(place=place.name), where))
    return cases


def test_every_text_at_every_place_is_its_scenarios_category() -> None:
    zone, rules = shipped()
    wrong = []
    for scenario, text, where in _cases():
        located = triage(zone, rules, _alarm(text, **where), now=T0)
        if located.category != scenario.category:
            wrong.append((scenario.category, located.category, text))
    assert wrong == []


def test_villages_lie_in_their_xihe_grids() -> None:
    zone, _ = shipped()
    for grid_id, villages in villages_of(zone).items():
        assert len(villages) == 2
        for village in villages:
            grid = zone.grid_at(village.position)
            assert grid is not None
            assert grid.id == grid_id
            assert zone.find_place_in_text(village.name) is None  # not a zone place
