"""Plan and generate a history: month by month, each incident lived through the stages."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dispatch.classify import Rules
from dispatch.events import EventModel, RawAlarm, SourceKind
from dispatch.history.alarms import AlarmMaker, caller
from dispatch.history.incidents import IncidentHistory, IncidentLife, World, ms
from dispatch.history.schedule import Span, calls_of_month, monthly_counts, span_of
from dispatch.history.units import HistoryUnits
from dispatch.policy import policy_of
from dispatch.zone import Zone

HISTORY_NAMESPACE = uuid.UUID("6d1f3c2a-8b4e-4f0a-9c7d-2e5b1a9f0c31")
# Every sixth alarm of a category is reported again within two minutes (the device fires
# again, a second caller rings) and merges into the first one's incident.
REPEAT_EVERY = 6
# Routing reads the units' home fixes as fresh however old: in the history they report all day.
FIX_NEVER_STALE = timedelta(days=365 * 100)


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """What to generate: the seed, the months and the first year's alarms a day."""

    seed: int
    span: Span
    per_day: float

    @property
    def namespace(self) -> uuid.UUID:
        """Return the namespace of this history's ids: another plan, other ids."""
        key = f"{self.seed}|{self.span.start}|{self.span.end}|{self.per_day:g}"
        return uuid.uuid5(HISTORY_NAMESPACE, key)

    def describe(self) -> dict[str, object]:
        """Return the plan as the options that repeat it."""
        months = len(self.span.months)
        return {
            "seed": self.seed,
            "months": months,
            "end": str(self.span.end),
            "per_day": self.per_day,
        }


@dataclass(frozen=True, slots=True)
class HistoryMonth:
    """One month of history: its incidents, each with its events in publication order."""

    month: date
    incidents: tuple[IncidentHistory, ...]

    def records(self) -> Iterator[tuple[str, EventModel]]:
        """Yield every event of the month with its topic, incident by incident."""
        for incident in self.incidents:
            yield from incident.records


def plan_history(zone: Zone, *, seed: int, end: date, months: int, per_day: float) -> HistoryPlan:
    """Return the plan of a history of `months` months ending just before `end` (local)."""
    if not per_day > 0:
        raise ValueError("per_day must be a positive number of alarms a day")
    return HistoryPlan(seed, span_of(end=end, months=months, tz=ZoneInfo(zone.timezone)), per_day)


def generate(plan: HistoryPlan, zone: Zone, rules: Rules) -> Iterator[HistoryMonth]:
    """Yield the history month by month, oldest first."""
    span = plan.span
    since = datetime(span.start.year, span.start.month, 1, tzinfo=span.tz).astimezone(UTC)
    policy = policy_of(zone)
    world = World(
        zone=zone,
        rules=rules,
        units=HistoryUnits(zone, since=since),
        routing=replace(policy.routing, position_max_age=FIX_NEVER_STALE),
        lifecycle=policy.lifecycle,
        merge_window=policy.merge_window,
        namespace=plan.namespace,
    )
    maker = AlarmMaker(zone, seed=plan.seed, namespace=plan.namespace)
    counts = monthly_counts(span, plan.per_day)
    # Counted over the whole history, so that each year has the same share of repeats.
    repeated: dict[str, int] = {}
    for month in span.months:
        incidents = []
        for n, call in enumerate(calls_of_month(span, month, counts, plan.seed)):
            key = f"{month:%Y%m}-{n}"
            rng = random.Random(f"incident:{plan.seed}:{key}")
            alarm = maker.alarm(call, key, rng)
            repeats: tuple[RawAlarm, ...] = ()
            repeated[call.category] = seen = repeated.get(call.category, 0) + 1
            if seen % REPEAT_EVERY == 0:
                repeats = (_again(alarm, key, plan, rng),)
            incidents.append(IncidentLife(world, call.scenario, rng).live(alarm, repeats))
        yield HistoryMonth(month, tuple(incidents))


def _again(alarm: RawAlarm, key: str, plan: HistoryPlan, rng: random.Random) -> RawAlarm:
    # The same place and words, so the same merge key; from the hotline, another caller.
    update: dict[str, object] = {
        "alarm_id": uuid.uuid5(plan.namespace, f"alarm:{key}:again"),
        "received_at": ms(alarm.received_at + timedelta(seconds=rng.uniform(30, 120))),
        "idempotency_key": f"{alarm.idempotency_key}:again",
    }
    if alarm.source_kind is SourceKind.HOTLINE:
        update |= caller(rng)
    return alarm.model_copy(update=update)
