"""The ledger's verdict on a run: counts, the undecided alarms, and each unit's screen."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from simulator.ledger import Ledger
from simulator.records import UnitRecord

MAX_ROWS = 15  # units listed, and undecided ids shown, on one screen


@dataclass(frozen=True)
class UnitAudit:
    """What one unit showed, against what the incidents say it was sent and stood down from."""

    unit_id: str
    jobs_shown: int
    shown_twice: int
    duplicates: int
    violations: tuple[str, ...]
    reconnects: int
    errors: int
    withdrawn_told: frozenset[uuid.UUID]
    withdrawn_expected: frozenset[uuid.UUID]

    @property
    def not_told(self) -> frozenset[uuid.UUID]:
        """Return the jobs the incidents withdrew that the unit never heard were withdrawn."""
        return self.withdrawn_expected - self.withdrawn_told

    @property
    def told_unexpectedly(self) -> frozenset[uuid.UUID]:
        """Return the withdrawals the unit heard of that no incident shows."""
        return self.withdrawn_told - self.withdrawn_expected


@dataclass(frozen=True)
class LedgerReport:
    """The end of a run: every receipted alarm decided, no job shown twice, every unit told."""

    sent: int
    receipted: int
    decided: int
    undecided: tuple[uuid.UUID, ...]
    dead_lettered: int
    incidents: int
    units: tuple[UnitAudit, ...]

    @property
    def shown_twice(self) -> int:
        """Return the jobs shown twice on any unit (must be 0)."""
        return sum(unit.shown_twice for unit in self.units)

    @property
    def holds(self) -> bool:
        """Tell whether the promise held: all decided, nothing twice, every unit told."""
        return (
            not self.undecided
            and self.shown_twice == 0
            and all(not u.not_told and not u.told_unexpectedly for u in self.units)
        )


def audit_unit(ledger: Ledger, record: UnitRecord) -> UnitAudit:
    """Compare one unit's record with the withdrawals the incidents show for it."""
    return UnitAudit(
        unit_id=record.unit_id,
        jobs_shown=len(record.jobs),
        shown_twice=record.shown_twice,
        duplicates=record.duplicates,
        violations=tuple(record.violations),
        reconnects=record.reconnects,
        errors=len(record.errors),
        withdrawn_told=frozenset(record.withdrawn_told),
        withdrawn_expected=frozenset(ledger.withdrawn.get(record.unit_id, ())),
    )


def audit(
    ledger: Ledger, *, sent: int, receipted: Iterable[uuid.UUID], units: Iterable[UnitRecord]
) -> LedgerReport:
    """Return the verdict on the receipted alarms and the units' records."""
    receipted = list(dict.fromkeys(receipted))
    undecided = tuple(ledger.undecided(receipted))
    return LedgerReport(
        sent=sent,
        receipted=len(receipted),
        decided=len(receipted) - len(undecided),
        undecided=undecided,
        dead_lettered=sum(1 for alarm_id in receipted if alarm_id in ledger.dead_lettered),
        incidents=len(ledger.incidents),
        units=tuple(audit_unit(ledger, record) for record in units),
    )


def summary(report: LedgerReport) -> str:
    """Return a one-screen summary of the report, for a person."""
    units = report.units
    lines = [
        f"alarms     sent {report.sent}, receipted {report.receipted}, decided "
        f"{report.decided}, undecided {len(report.undecided)}, dead-lettered "
        f"{report.dead_lettered}; incidents seen {report.incidents}",
        f"units      {len(units)}: jobs shown {sum(u.jobs_shown for u in units)}, shown twice "
        f"{report.shown_twice}, duplicates suppressed {sum(u.duplicates for u in units)}, "
        f"violations {sum(len(u.violations) for u in units)}, reconnects "
        f"{sum(u.reconnects for u in units)}, errors received {sum(u.errors for u in units)}",
        f"withdrawn  told {sum(len(u.withdrawn_told) for u in units)}, per the parties "
        f"{sum(len(u.withdrawn_expected) for u in units)}, never told "
        f"{sum(len(u.not_told) for u in units)}, told of no such withdrawal "
        f"{sum(len(u.told_unexpectedly) for u in units)}",
        f"verdict    {'HOLDS' if report.holds else 'BROKEN'}",
    ]
    busy = sorted(units, key=lambda u: (-u.jobs_shown, u.unit_id))
    noted = [u for u in busy if u.jobs_shown or u.violations or u.not_told or u.errors]
    if noted:
        lines.append(
            f"{'unit':<24}{'shown':>6}{'twice':>6}{'dups':>6}{'withdrawn':>11}"
            f"{'viol.':>6}{'reconn.':>8}{'errors':>7}"
        )
    for u in noted[:MAX_ROWS]:
        withdrawn = f"{len(u.withdrawn_told)}/{len(u.withdrawn_expected)}"
        lines.append(
            f"{u.unit_id:<24}{u.jobs_shown:>6}{u.shown_twice:>6}{u.duplicates:>6}"
            f"{withdrawn:>11}{len(u.violations):>6}{u.reconnects:>8}{u.errors:>7}"
        )
    if len(noted) > MAX_ROWS:
        lines.append(f"… and {len(noted) - MAX_ROWS} more units with jobs")
    if report.undecided:
        shown = ", ".join(str(a) for a in report.undecided[:MAX_ROWS])
        more = len(report.undecided) - MAX_ROWS
        lines.append(f"undecided: {shown}" + (f" … and {more} more" if more > 0 else ""))
    return "\n".join(lines)
