"""The demo history generator: reproducible, valid events, the article's falls, real timings."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from functools import cache

import pytest

from dispatch.classify import default_rules_path, load_rules
from dispatch.events import (
    ClassifiedAlarm,
    EventModel,
    IncidentState,
    RawAlarm,
    decode,
    encode,
    spec_for,
)
from dispatch.history import HistoryMonth, Tally, generate, plan_history
from dispatch.zone import default_zone_path, load_zone

END = date(2026, 12, 1)


@cache
def history(*, seed: int, months: int, per_day: float) -> tuple[HistoryMonth, ...]:
    zone, rules = load_zone(default_zone_path()), load_rules(default_rules_path())
    plan = plan_history(zone, seed=seed, end=END, months=months, per_day=per_day)
    return tuple(generate(plan, zone, rules))


def records(months: tuple[HistoryMonth, ...]) -> list[tuple[str, EventModel]]:
    return [record for month in months for record in month.records()]


@cache
def two_years() -> Tally:
    zone = load_zone(default_zone_path())
    plan = plan_history(zone, seed=7, end=END, months=24, per_day=4.0)
    tally = Tally(plan.span, zone)
    for month in history(seed=7, months=24, per_day=4.0):
        tally.add(month)
    return tally


def test_the_same_seed_gives_the_same_history_byte_for_byte() -> None:
    first = records(history(seed=3, months=2, per_day=6.0))
    again = records(generate_fresh(seed=3))
    assert [(t, encode(e)) for t, e in first] == [(t, encode(e)) for t, e in again]
    other = records(history(seed=4, months=2, per_day=6.0))
    assert {encode(e) for _, e in first}.isdisjoint({encode(e) for _, e in other})


def generate_fresh(*, seed: int) -> tuple[HistoryMonth, ...]:
    """Generate without the cache, from freshly loaded zone and rules."""
    zone, rules = load_zone(default_zone_path()), load_rules(default_rules_path())
    plan = plan_history(zone, seed=seed, end=END, months=2, per_day=6.0)
    return tuple(generate(plan, zone, rules))


def test_every_event_is_valid_on_its_own_topic_in_the_past() -> None:
    found = records(history(seed=3, months=2, per_day=6.0))
    topics = Counter(topic for topic, _ in found)
    assert set(topics) >= {
        "alarms.raw",
        "alarms.classified",
        "dispatch.assignments",
        "responses.events",
        "incidents.state",
        "units.status",
    }
    ids: Counter[object] = Counter()
    for topic, event in found:
        assert spec_for(type(event)).name == topic
        assert decode(type(event), encode(event)) == event  # what the sink reads back
        key = next(
            getattr(event, f)
            for f in ("event_id", "assignment_id", "alarm_id")
            if hasattr(event, f)
        )
        ids[(topic, key)] += 1
    # Every id once on its topic: writing the history again is a no-op, never a clash.
    assert max(ids.values()) == 1
    now = datetime.now(UTC)
    raws = [e for _, e in found if isinstance(e, RawAlarm)]
    assert all(a.received_at < datetime(2026, 12, 1, tzinfo=UTC) < now for a in raws)
    assert all(a.idempotency_key and a.idempotency_key.startswith("demo-history:3:") for a in raws)


def test_every_alarm_is_classified_as_planned_and_every_incident_ends() -> None:
    for month in history(seed=3, months=2, per_day=6.0):
        for incident in month.incidents:
            planned = incident.scenario.category
            classified = [e for _, e in incident.records if isinstance(e, ClassifiedAlarm)]
            assert {a.category for a in classified} == {planned}
            assert incident.incident.state in (IncidentState.RESOLVED, IncidentState.CANCELLED)


@pytest.mark.parametrize("group", ["all", "criminal", "public_order", "robbery_theft"])
def test_the_second_year_falls_as_the_article_says(group: str) -> None:
    tally = two_years()
    wanted = {"all": -0.538, "criminal": -0.51, "public_order": -0.503, "robbery_theft": -0.30}
    alarms = tally.change(group)
    incidents = tally.change(group, tally.incidents)
    assert alarms == pytest.approx(wanted[group], abs=0.01)
    assert incidents == pytest.approx(wanted[group], abs=0.01)


def test_processing_and_arrival_look_like_a_working_zone() -> None:
    tally = two_years()
    done, count = tally.processed
    assert 0.9 < done / count < 1.0  # mostly under 60 s, not all
    for area, (within, arrived) in tally.arrived.items():
        assert arrived > 100, area
        assert 0.8 < within / arrived < 0.98, area  # mostly within the norm, some slower
    assert any(line.startswith("  year on year, all alarms: -5") for line in tally.lines())
