"""When the history's alarms happen: how many per month and category, on which day, at what hour.

The counts are not drawn at random: each category's rate follows its season and falls at a
steady monthly rate whose twelfth power is the category's year-on-year factor, and the counts
are the running rounding of that rate. So any twelve months hold the factor times the twelve
before, up to one alarm, whatever the seed; the seed decides days, hours and everything else.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dispatch.events import Category
from dispatch.history.mix import MIX, Scenario

# The history's level is set by the first of the last two years (the year the fall is
# measured from): its average alarms a day is the caller's `per_day`.
REFERENCE_MONTHS = range(12, 24)


@dataclass(frozen=True, slots=True)
class Span:
    """The months of history: from the first day of `start` to the day before `end`, local."""

    start: date
    end: date
    tz: ZoneInfo

    @property
    def months(self) -> list[date]:
        """Return the first day of every month in the span, oldest first."""
        found, at = [], self.start
        while at < self.end:
            found.append(at)
            at = next_month(at)
        return found

    def months_before_end(self, month: date) -> int:
        """Return how many whole months lie between month's end and the span's end."""
        return (self.end.year - month.year) * 12 + self.end.month - month.month - 1


def next_month(day: date) -> date:
    """Return the first day of the month after day's."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def span_of(*, end: date, months: int, tz: ZoneInfo) -> Span:
    """Return the span of `months` whole months ending the day before `end` (a month's first)."""
    if end.day != 1:
        raise ValueError(f"the history ends at the start of a month, not on {end}")
    if months < 1:
        raise ValueError("the history needs at least one month")
    index = end.year * 12 + end.month - 1 - months
    return Span(date(index // 12, index % 12 + 1, 1), end, tz)


def monthly_rate(category: Category, months_before_end: int) -> float:
    """Return the category's level in a month relative to the reference year (its mean is 1)."""
    step = MIX[category].factor ** (1 / 12)  # the monthly fall
    norm = sum(step**-d for d in REFERENCE_MONTHS) / len(REFERENCE_MONTHS)
    return float(step**-months_before_end / norm)


def monthly_counts(span: Span, per_day: float) -> dict[tuple[date, Category], int]:
    """Return how many alarms of each category each month of the span holds."""
    counts: dict[tuple[date, Category], int] = {}
    for category, mix in MIX.items():
        season_mean = sum(mix.season) / 12
        running, given = 0.0, 0
        for month in span.months:
            days = calendar.monthrange(month.year, month.month)[1]
            running += (
                per_day
                * mix.share
                * days
                * mix.season[month.month - 1]
                / season_mean
                * monthly_rate(category, span.months_before_end(month))
            )
            counts[(month, category)] = round(running) - given
            given = round(running)
    return counts


def is_school_day(day: date) -> bool:
    """Tell whether pupils are at the gates: a weekday outside the holidays."""
    if day.weekday() >= 5:
        return False
    winter = (day.month == 1 and day.day >= 20) or (day.month == 2 and day.day <= 20)
    summer = (day.month == 7 and day.day >= 5) or day.month == 8
    national = day.month == 10 and day.day <= 7
    return not (winter or summer or national)


@dataclass(frozen=True, slots=True)
class Call:
    """One planned alarm: when (UTC), of which category, in which scenario."""

    at: datetime
    category: Category
    scenario: Scenario


def calls_of_month(
    span: Span, month: date, counts: dict[tuple[date, Category], int], seed: int
) -> list[Call]:
    """Return the month's calls, in time order; the same seed, the same calls."""
    days = [
        month + timedelta(days=n) for n in range(calendar.monthrange(month.year, month.month)[1])
    ]
    calls: list[Call] = []
    for category, mix in MIX.items():
        # One stream of chance per month and category: a month is the same whichever span holds it.
        rng = random.Random(f"history:{seed}:{month.isoformat()}:{category}")
        for _ in range(counts[(month, category)]):
            scenario = _scenario(rng, mix.scenarios, days)
            open_days = [d for d in days if is_school_day(d)] if scenario.school_days_only else days
            day = rng.choice(open_days)
            hour = rng.choices(range(24), weights=scenario.hours)[0]
            local = datetime(day.year, day.month, day.day, hour, tzinfo=span.tz)
            at = local + timedelta(seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
            calls.append(Call(at.astimezone(UTC), category, scenario))
    calls.sort(key=lambda call: (call.at, call.category))
    return calls


def _scenario(rng: random.Random, scenarios: tuple[Scenario, ...], days: list[date]) -> Scenario:
    # A month without school days (August) has no school-gate calls: the others take them.
    school = any(is_school_day(d) for d in days)
    usable = [s for s in scenarios if school or not s.school_days_only]
    return rng.choices(usable, weights=[s.weight for s in usable])[0]
