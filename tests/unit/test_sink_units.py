"""The sink's unit rows and the thinning of positions (consumers/sink/units.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from consumers.sink.units import THIN_AFTER_S, Fix, fixes_of, thin, unit_rows
from dispatch.events import Position, UnitAvailability, UnitStatus

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# About 11 m of latitude: well inside the 50 m of the resolution.
STEP = 0.0001


def fix(seconds: float, lat_steps: float = 0, status: str = "available") -> Fix:
    return Fix("u-1", T0 + timedelta(seconds=seconds), 31.7 + lat_steps * STEP, 113.4, status)


def report(
    seconds: float,
    *,
    status: UnitAvailability = UnitAvailability.AVAILABLE,
    lat: float | None = 31.7,
    presence: bool = False,
    fixed_at_s: float | None = None,
) -> UnitStatus:
    return UnitStatus(
        event_id=uuid.uuid4(),
        unit_id="u-1",
        status=status,
        position=Position(lat=lat, lon=113.4) if lat is not None else None,
        reported_at=T0 + timedelta(seconds=seconds),
        position_at=None if fixed_at_s is None else T0 + timedelta(seconds=fixed_at_s),
        presence=presence,
    )


def test_a_unit_standing_still_keeps_one_fix_every_30_s() -> None:
    fixes = [fix(s) for s in range(0, 100, 10)]
    assert [f.at for f in thin(None, fixes)] == [T0 + timedelta(seconds=s) for s in (0, 30, 60, 90)]


def test_a_move_of_50_m_is_kept_at_once() -> None:
    # 5 steps of ~11 m: 55 m from the last kept fix, 5 s later.
    kept = thin(fix(0), [fix(2, 2), fix(5, 5), fix(7, 5.5)])
    assert kept == [fix(5, 5)]


def test_thinning_counts_from_the_last_kept_fix_not_the_last_seen() -> None:
    # 22 m every 5 s: never 50 m from the fix before, but 66 m from the kept one at 15 s.
    fixes = [fix(5 * n, 2 * n) for n in range(1, 5)]
    assert thin(fix(0), fixes) == [fix(15, 6)]


def test_another_status_is_kept_even_close_by() -> None:
    assert thin(fix(0), [fix(1, 0, "assigned")]) == [fix(1, 0, "assigned")]


def test_a_fix_not_later_than_the_last_kept_is_dropped_so_a_replay_keeps_nothing() -> None:
    history = [fix(s, s) for s in range(0, 300, 45)]
    kept = thin(None, history)
    assert kept == history
    assert thin(kept[-1], history) == []
    assert thin(fix(THIN_AFTER_S), [fix(THIN_AFTER_S, 9)]) == []


def test_fixes_are_timed_by_their_fix_not_by_the_report() -> None:
    # A presence record repeats a fix taken earlier: it is that fix, not a new one.
    fixes = fixes_of([report(0), report(60, presence=True, fixed_at_s=0), report(90, lat=None)])
    assert [f.at for f in fixes["u-1"]] == [T0, T0]


def test_presence_records_never_change_a_status() -> None:
    rows = unit_rows(
        [
            report(0, status=UnitAvailability.ASSIGNED),
            report(5, status=UnitAvailability.AVAILABLE, presence=True, fixed_at_s=0),
        ]
    )
    (row,) = rows
    assert (row.status, row.status_at) == ("assigned", T0)
    assert (row.reported_at, row.presence) == (T0 + timedelta(seconds=5), True)


def test_a_batch_of_presence_records_alone_says_no_status() -> None:
    (row,) = unit_rows([report(5, presence=True, fixed_at_s=0)])
    assert row.status_at is None
    assert row.fix_at == T0


def test_the_newest_fix_and_the_newest_status_win_whatever_the_order_read() -> None:
    rows = unit_rows(
        [
            report(30, status=UnitAvailability.BUSY, lat=31.71),
            report(10, status=UnitAvailability.ASSIGNED, lat=31.72),
        ]
    )
    (row,) = rows
    assert (row.status, row.lat, row.fix_at) == ("busy", 31.71, T0 + timedelta(seconds=30))
    assert row.reported_at == T0 + timedelta(seconds=30)
