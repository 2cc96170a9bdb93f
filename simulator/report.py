"""The ledger's verdict on a run: counts, the undecided alarms, and each unit's screen."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from simulator.ledger import EVER, Ledger
from simulator.records import UnitRecord

MAX_ROWS = 15  # units listed, and undecided ids shown, on one screen


@dataclass(frozen=True)
class UnitAudit:
    """What one unit showed of a run's incidents, against what their parties say it was sent
    and stood down from."""

    unit_id: str
    jobs_sent: frozenset[uuid.UUID]
    jobs_shown: frozenset[uuid.UUID]
    shown_twice: int
    duplicates: int
    violations: tuple[str, ...]
    reconnects: int
    errors: tuple[str, ...]  # the codes of the error frames received
    updates: int
    withdrawn_told: frozenset[uuid.UUID]
    withdrawn_expected: frozenset[uuid.UUID]

    @property
    def not_shown(self) -> frozenset[uuid.UUID]:
        """Return the jobs and alerts the parties show sent that the unit never showed."""
        return self.jobs_sent - self.jobs_shown

    @property
    def not_told(self) -> frozenset[uuid.UUID]:
        """Return the jobs the incidents withdrew that the unit never heard were withdrawn."""
        return self.withdrawn_expected - self.withdrawn_told

    @property
    def told_unexpectedly(self) -> frozenset[uuid.UUID]:
        """Return the withdrawals the unit heard of that no incident shows."""
        return self.withdrawn_told - self.withdrawn_expected

    @property
    def consistent(self) -> bool:
        """Tell whether the unit showed every job sent and heard of exactly every withdrawal."""
        return not (self.not_shown or self.not_told or self.told_unexpectedly)


@dataclass(frozen=True)
class LedgerReport:
    """The end of a run: every receipted alarm decided, no job shown twice, every unit told."""

    sent: int
    receipted: int
    decided: int
    undecided: tuple[uuid.UUID, ...]
    dead_lettered: int
    incidents: int  # of this run's alarms
    units_on_jobs: int  # units sent to this run's incidents and still on them
    units: tuple[UnitAudit, ...]

    @property
    def shown_twice(self) -> int:
        """Return the jobs shown twice on any unit (must be 0)."""
        return sum(unit.shown_twice for unit in self.units)

    @property
    def holds(self) -> bool:
        """Tell whether the promise held: all decided, nothing twice, every unit shown and told."""
        return (
            not self.undecided
            and self.shown_twice == 0
            and all(unit.consistent for unit in self.units)
        )

    @property
    def at_rest(self) -> bool:
        """Tell whether the run has come to rest: all decided, no unit still on a job of it,
        and every unit has shown its jobs and heard of its withdrawals."""
        return (
            not self.undecided
            and self.units_on_jobs == 0
            and all(unit.consistent for unit in self.units)
        )


def audit_unit(
    record: UnitRecord,
    incidents: set[uuid.UUID],
    sent: set[uuid.UUID],
    withdrawn: set[uuid.UUID],
    since: datetime = EVER,
) -> UnitAudit:
    """Compare one unit's record of a run's incidents with what their parties show."""
    ours = [
        job
        for job in record.shown
        if job.incident_id in incidents and (job.dispatched_at or since) >= since
    ]
    return UnitAudit(
        unit_id=record.unit_id,
        jobs_sent=frozenset(sent),
        jobs_shown=frozenset(job.assignment_id for job in ours if job.is_job),
        shown_twice=record.shown_twice,
        duplicates=record.duplicates,
        violations=tuple(record.violations),
        reconnects=record.reconnects,
        errors=tuple(code for code, _ in record.errors),
        updates=record.updates_told,
        withdrawn_told=frozenset(job.withdraws for job in ours if job.withdraws is not None),
        withdrawn_expected=frozenset(withdrawn),
    )


def audit(
    ledger: Ledger,
    *,
    sent: int,
    receipted: Iterable[uuid.UUID],
    units: Iterable[UnitRecord],
    since: datetime = EVER,
) -> LedgerReport:
    """Return the verdict on the receipted alarms, their incidents and the units' records;
    jobs and withdrawals count from `since`, the start of the run (a run's alarm may merge
    into an older incident, whose earlier jobs belong to an earlier run)."""
    receipted = list(dict.fromkeys(receipted))
    undecided = tuple(ledger.undecided(receipted))
    incidents = ledger.incidents_of(receipted)
    jobs = ledger.jobs_sent(incidents, since)
    withdrawn = ledger.jobs_withdrawn(incidents, since)
    return LedgerReport(
        sent=sent,
        receipted=len(receipted),
        decided=len(receipted) - len(undecided),
        undecided=undecided,
        dead_lettered=sum(1 for alarm_id in receipted if alarm_id in ledger.dead_lettered),
        incidents=len(incidents),
        units_on_jobs=ledger.units_still_on(incidents, since),
        units=tuple(
            audit_unit(
                r, incidents, jobs.get(r.unit_id, set()), withdrawn.get(r.unit_id, set()), since
            )
            for r in units
        ),
    )


def summary(report: LedgerReport) -> str:
    """Return a one-screen summary of the report, for a person."""
    units = report.units
    lines = [
        f"alarms     sent {report.sent}, receipted {report.receipted}, decided "
        f"{report.decided}, undecided {len(report.undecided)}, dead-lettered "
        f"{report.dead_lettered}; incidents {report.incidents}, units still on them "
        f"{report.units_on_jobs}",
        f"jobs       sent per the parties {sum(len(u.jobs_sent) for u in units)}, shown "
        f"{sum(len(u.jobs_shown) for u in units)}, never shown "
        f"{sum(len(u.not_shown) for u in units)}; updates shown {sum(u.updates for u in units)}",
        f"units      {len(units)}: shown twice "
        f"{report.shown_twice}, duplicates suppressed {sum(u.duplicates for u in units)}, "
        f"violations {sum(len(u.violations) for u in units)}, reconnects "
        f"{sum(u.reconnects for u in units)}, errors (frames, failed connects) "
        f"{_counted(u.errors for u in units)}",
        f"withdrawn  told {sum(len(u.withdrawn_told) for u in units)}, per the parties "
        f"{sum(len(u.withdrawn_expected) for u in units)}, never told "
        f"{sum(len(u.not_told) for u in units)}, told of no such withdrawal "
        f"{sum(len(u.told_unexpectedly) for u in units)}",
        f"verdict    {'HOLDS' if report.holds else 'BROKEN'}",
    ]
    busy = sorted(units, key=lambda u: (u.consistent, not u.violations, -len(u.jobs_sent)))
    noted = [u for u in busy if u.jobs_sent or u.jobs_shown or u.violations or u.errors]
    if noted:
        lines.append(
            f"{'unit':<24}{'shown':>8}{'twice':>6}{'dups':>6}{'withdrawn':>11}"
            f"{'viol.':>6}{'reconn.':>8}{'errors':>7}"
        )
    for u in noted[:MAX_ROWS]:
        shown = f"{len(u.jobs_shown)}/{len(u.jobs_sent)}"
        withdrawn = f"{len(u.withdrawn_told)}/{len(u.withdrawn_expected)}"
        lines.append(
            f"{u.unit_id:<24}{shown:>8}{u.shown_twice:>6}{u.duplicates:>6}"
            f"{withdrawn:>11}{len(u.violations):>6}{u.reconnects:>8}{len(u.errors):>7}"
        )
    if len(noted) > MAX_ROWS:
        lines.append(f"… and {len(noted) - MAX_ROWS} more units with jobs")
    for u in [u for u in units if u.violations][:5]:
        lines.append(f"violation  {u.unit_id}: {u.violations[0]}")
    if report.undecided:
        shown = ", ".join(str(a) for a in report.undecided[:MAX_ROWS])
        more = len(report.undecided) - MAX_ROWS
        lines.append(f"undecided: {shown}" + (f" … and {more} more" if more > 0 else ""))
    return "\n".join(lines)


def _counted(codes: Iterable[tuple[str, ...]]) -> str:
    counts = Counter(code for some in codes for code in some)
    if not counts:
        return "0"
    return ", ".join(f"{code} {n}" for code, n in counts.most_common())
