"""A report's period and the periods it is compared with, in the zone's local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.reports import (
    Period,
    PeriodError,
    last_full_month,
    month_before,
    report_period,
    year_before,
)

CST = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Return a wall-clock time in China Standard Time."""
    return datetime(year, month, day, hour, minute, tzinfo=CST)


def test_last_full_month_is_counted_in_local_time() -> None:
    # 2026-11-30T16:30Z is already 1 December 00:30 in Suizhou: November has ended there.
    period = last_full_month(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), CST)
    assert period == Period(local(2026, 11, 1), local(2026, 12, 1))
    # ...while at 15:59Z it is still 30 November 23:59: the last full month is October.
    period = last_full_month(datetime(2026, 11, 30, 15, 59, tzinfo=UTC), CST)
    assert period == Period(local(2026, 10, 1), local(2026, 11, 1))


def test_january_reaches_back_into_the_previous_year() -> None:
    period = last_full_month(local(2027, 1, 15, 9), CST)
    assert period == Period(local(2026, 12, 1), local(2027, 1, 1))


def test_neither_bound_gives_the_last_full_month() -> None:
    now = local(2026, 12, 6, 18)
    assert report_period(None, None, now=now, tz=CST) == last_full_month(now, CST)


def test_dates_are_local_midnights_and_to_is_excluded() -> None:
    period = report_period("2026-11-01", "2026-12-01", now=local(2026, 12, 6), tz=CST)
    assert period.start == local(2026, 11, 1)
    assert period.end == local(2026, 12, 1)
    assert period.start.astimezone(UTC) == datetime(2026, 10, 31, 16, tzinfo=UTC)


def test_instants_keep_their_offset_and_a_naive_one_is_local() -> None:
    period = report_period(
        "2026-11-01T08:00:00+00:00", "2026-11-02T08:00:00", now=local(2026, 12, 6), tz=CST
    )
    assert period.start == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert period.end == local(2026, 11, 2, 8)


def test_from_alone_runs_to_now_and_to_alone_starts_a_month_earlier() -> None:
    now = local(2026, 12, 6, 18)
    assert report_period("2026-12-01", None, now=now, tz=CST) == Period(local(2026, 12, 1), now)
    assert report_period(None, "2026-03-31", now=now, tz=CST) == Period(
        local(2026, 2, 28), local(2026, 3, 31)
    )


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        ("2026-13-01", "2026-12-01", "from", "is not a date"),
        ("2026-11-01", "yesterday", "to", "is not a date"),
        ("2026-12-01", "2026-12-01", "to", "must be after from"),
        ("2026-12-02", "2026-12-01", "to", "must be after from"),
        ("2010-01-01", "2026-12-01", "to", "at most 3660 days"),
        # A year before year 1, or the month after 9999, is no date: refused, not a crash.
        ("0001-01-01", "0001-02-01", "from", "outside the years 1900 to 9000"),
        ("9999-01-01", "9999-12-31", "from", "outside the years 1900 to 9000"),
        ("2026-11-01", "9999-12-31T23:59:59-12:00", "to", "outside the years 1900 to 9000"),
    ],
)
def test_bad_bounds_name_the_field(start: str, end: str, field: str, words: str) -> None:
    with pytest.raises(PeriodError) as caught:
        report_period(start, end, now=local(2026, 12, 6), tz=CST)
    assert caught.value.field == field
    assert words in caught.value.message


def test_month_on_month_of_whole_months_is_the_calendar_months_before() -> None:
    november = Period(local(2026, 11, 1), local(2026, 12, 1))
    assert month_before(november, CST) == Period(local(2026, 10, 1), local(2026, 11, 1))
    first_quarter = Period(local(2027, 1, 1), local(2027, 4, 1))
    assert month_before(first_quarter, CST) == Period(local(2026, 10, 1), local(2027, 1, 1))


def test_month_on_month_of_a_part_month_is_the_same_length_just_before() -> None:
    ten_days = Period(local(2026, 11, 11), local(2026, 11, 21))
    assert month_before(ten_days, CST) == Period(local(2026, 11, 1), local(2026, 11, 11))
    assert ten_days.whole_months(CST) is None


def test_year_on_year_is_the_same_local_dates_a_year_earlier() -> None:
    november = Period(local(2026, 11, 1), local(2026, 12, 1))
    assert year_before(november, CST) == Period(local(2025, 11, 1), local(2025, 12, 1))
    # 29 February has no twin: the year before ends on the 28th.
    leap_day = Period(local(2028, 2, 29), local(2028, 3, 1))
    assert year_before(leap_day, CST) == Period(local(2027, 2, 28), local(2027, 3, 1))


def test_months_lists_every_local_month_touched() -> None:
    period = Period(local(2026, 11, 15), local(2027, 1, 10))
    assert period.months(CST) == ["2026-11", "2026-12", "2027-01"]
    # Ending at a month's first midnight does not touch that month.
    assert Period(local(2026, 11, 1), local(2026, 12, 1)).months(CST) == ["2026-11"]
    # The same instants in UTC would start in October: the zone's months count.
    assert Period(local(2026, 11, 1), local(2026, 12, 1)).months(ZoneInfo("UTC")) == [
        "2026-10",
        "2026-11",
    ]


def test_a_day_is_24_hours_in_a_zone_without_daylight_saving() -> None:
    period = report_period("2026-11-01", "2026-11-02", now=local(2026, 12, 6), tz=CST)
    assert period.end - period.start == timedelta(hours=24)
