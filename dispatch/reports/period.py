"""The span a report covers and the spans it is compared with, in the zone's local time.

A period is half-open, [start, end): `--from 2026-11-01 --to 2026-12-01` is November, so
consecutive periods never count an incident twice. A date means local midnight of that day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# Longer spans are refused: the grid screening alone would list thousands of months.
MAX_PERIOD = timedelta(days=3660)
# Bounds outside these years are refused: a year before year 1, or the month after year 9999,
# is no date, and no record is that old or that new.
MIN_YEAR, MAX_YEAR = 1900, 9000


class PeriodError(ValueError):
    """Raised when a report's bounds are unreadable or do not make a period; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of time, [start, end), both aware."""

    start: datetime
    end: datetime

    def whole_months(self, tz: ZoneInfo) -> int | None:
        """Return how many calendar months the period is, or None unless it is whole months."""
        start, end = self.start.astimezone(tz), self.end.astimezone(tz)
        if not (_is_month_start(start) and _is_month_start(end)):
            return None
        return (end.year - start.year) * 12 + end.month - start.month

    def months(self, tz: ZoneInfo) -> list[str]:
        """Return every local month the period touches, as `YYYY-MM`, oldest first."""
        local = self.start.astimezone(tz)
        month = date(local.year, local.month, 1)
        last = (self.end - timedelta(microseconds=1)).astimezone(tz)
        out: list[str] = []
        while (month.year, month.month) <= (last.year, last.month):
            out.append(f"{month.year:04d}-{month.month:02d}")
            month = _add_months_date(month, 1)
        return out


def _is_month_start(local: datetime) -> bool:
    return local.day == 1 and local.time() == datetime.min.time()


def _add_months_date(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    # 29 February a year back is 28 February; 31 March a month back is 28/29 February.
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def shift_months(instant: datetime, months: int, tz: ZoneInfo) -> datetime:
    """Return the same local wall-clock time `months` calendar months later (or earlier)."""
    local = instant.astimezone(tz)
    day = _add_months_date(local.date(), months)
    return datetime.combine(day, local.time(), tzinfo=tz)


def month_start(instant: datetime, tz: ZoneInfo) -> datetime:
    """Return local midnight of the first day of the instant's local month."""
    local = instant.astimezone(tz)
    return datetime(local.year, local.month, 1, tzinfo=tz)


def last_full_month(now: datetime, tz: ZoneInfo) -> Period:
    """Return the last calendar month that has ended, in local time."""
    end = month_start(now, tz)
    return Period(shift_months(end, -1, tz), end)


def parse_bound(text: str, *, field: str, tz: ZoneInfo) -> datetime:
    """Read `YYYY-MM-DD` (local midnight) or an ISO 8601 instant (local when it has no offset)."""
    value = text.strip()
    try:
        if len(value) == 10:
            instant = datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=tz)
        else:
            instant = datetime.fromisoformat(value)
    except ValueError:
        raise PeriodError(
            field, f"{text!r} is not a date (2026-11-01) or an instant (2026-11-01T08:00:00+08:00)"
        ) from None
    instant = instant if instant.tzinfo is not None else instant.replace(tzinfo=tz)
    if not MIN_YEAR <= instant.year <= MAX_YEAR:
        raise PeriodError(field, f"{text!r} is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return instant


def report_period(start: str | None, end: str | None, *, now: datetime, tz: ZoneInfo) -> Period:
    """Return the period of `from`/`to`: neither gives the last full month, `from` alone runs
    to now, `to` alone starts a calendar month earlier."""
    if start is None and end is None:
        return last_full_month(now, tz)
    start_at = parse_bound(start, field="from", tz=tz) if start is not None else None
    end_at = parse_bound(end, field="to", tz=tz) if end is not None else now
    if start_at is None:
        start_at = shift_months(end_at, -1, tz)
    if start_at >= end_at:
        raise PeriodError("to", "must be after from (the period is [from, to), to excluded)")
    if end_at - start_at > MAX_PERIOD:
        raise PeriodError("to", f"the period may be at most {MAX_PERIOD.days} days long")
    return Period(start_at, end_at)


def month_before(period: Period, tz: ZoneInfo) -> Period:
    """Return the period compared month on month (环比): the previous as many calendar months
    when the period is whole months, else the span of the same length just before it."""
    months = period.whole_months(tz)
    if months is not None:
        return Period(shift_months(period.start, -months, tz), period.start)
    return Period(period.start - (period.end - period.start), period.start)


def year_before(period: Period, tz: ZoneInfo) -> Period:
    """Return the same local dates a year earlier (同比)."""
    return Period(shift_months(period.start, -12, tz), shift_months(period.end, -12, tz))
