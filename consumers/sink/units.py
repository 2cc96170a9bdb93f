"""What units.status becomes: the current row per unit and the thinned position history.

Pure, so tested without a database. The resolution of the history (docs/record.md): a fix is
kept when it is at least THIN_AFTER_S after the unit's last kept fix, at least THIN_BEYOND_M
from it, or in another status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dispatch.events import UnitStatus
from dispatch.zone.geo import Point, haversine_m

THIN_AFTER_S = 30.0
THIN_BEYOND_M = 50.0


@dataclass(slots=True)
class UnitRow:
    """A batch's reports of one unit folded together, in record_units' terms.

    status_at is the reported_at of the latest status report (None when the batch held only
    presence records, which never change a status); fix_at the time of the latest fix.
    """

    unit_id: str
    status: str
    status_at: datetime | None
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    fix_at: datetime | None
    reported_at: datetime
    presence: bool


def fix_time(status: UnitStatus) -> datetime | None:
    """Return when a report's position was fixed (None: it carries none)."""
    if status.position is None:
        return None
    return status.position_at or status.reported_at


def unit_rows(statuses: Iterable[UnitStatus]) -> list[UnitRow]:
    """Fold a batch's units.status records to one row per unit."""
    rows: dict[str, UnitRow] = {}
    for report in statuses:
        row = rows.get(report.unit_id)
        if row is None:
            row = rows[report.unit_id] = UnitRow(
                report.unit_id,
                report.status,
                None,
                None,
                None,
                None,
                None,
                report.reported_at,
                report.presence,
            )
        elif report.reported_at >= row.reported_at:
            row.reported_at, row.presence = report.reported_at, report.presence
        # A presence record repeats the last known status: it never changes one.
        if not report.presence and (row.status_at is None or report.reported_at >= row.status_at):
            row.status, row.status_at = report.status, report.reported_at
        at = fix_time(report)
        position = report.position
        if position is not None and at is not None and (row.fix_at is None or at >= row.fix_at):
            row.lat, row.lon, row.accuracy_m = position.lat, position.lon, position.accuracy_m
            row.fix_at = at
    return list(rows.values())


@dataclass(frozen=True, slots=True)
class Fix:
    """One kept point of a unit's position history."""

    unit_id: str
    at: datetime
    lat: float
    lon: float
    status: str


def fixes_of(statuses: Iterable[UnitStatus]) -> dict[str, list[Fix]]:
    """Return each unit's fixes in the batch, in the order read."""
    fixes: dict[str, list[Fix]] = {}
    for report in statuses:
        at = fix_time(report)
        if report.position is None or at is None:
            continue
        position = report.position
        fix = Fix(report.unit_id, at, position.lat, position.lon, report.status)
        fixes.setdefault(report.unit_id, []).append(fix)
    return fixes


def thin(last_kept: Fix | None, fixes: Sequence[Fix]) -> list[Fix]:
    """Return the fixes to keep: each later than the last kept one and at least THIN_AFTER_S
    after it, THIN_BEYOND_M from it, or in another status.

    A fix no later than the last kept one is dropped: it is history already thinned (a
    replayed record) or a repeat of a known fix (a presence record), so a replay keeps nothing
    more than the first reading did.
    """
    kept: list[Fix] = []
    last = last_kept
    for fix in fixes:
        if last is not None:
            if fix.at <= last.at:
                continue
            far = haversine_m(Point(fix.lat, fix.lon), Point(last.lat, last.lon)) >= THIN_BEYOND_M
            late = (fix.at - last.at).total_seconds() >= THIN_AFTER_S
            if not (far or late or fix.status != last.status):
                continue
        kept.append(fix)
        last = fix
    return kept
