"""The ledger's verdict and its one-screen summary."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    Category,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    Priority,
)
from dispatch.triage import provisional_incident_id
from simulator.ledger import Ledger
from simulator.records import STAND_DOWN, ShownJob, UnitRecord
from simulator.report import audit, summary


def cancelled(alarm_id: uuid.UUID, unit_id: str, assignment_id: uuid.UUID) -> IncidentStateChange:
    """Return the change that cancels the incident an alarm opened, standing a unit down."""
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=provisional_incident_id(alarm_id),
        state=IncidentState.CANCELLED,
        actor="commander-duty",
        at=datetime.now(UTC),
        priority=Priority.P3,
        category=Category.THEFT,
        timing=IncidentTiming(),
        parties=(
            Party(
                unit_id=unit_id,
                assignment_id=assignment_id,
                role=AssignmentRole.PRIMARY,
                kind=AssignmentKind.ASSIGNMENT,
                state=PartyState.CANCELLED,
            ),
        ),
    )


def shown(
    seq: int, alarm_id: uuid.UUID, assignment_id: uuid.UUID, withdraws: uuid.UUID | None = None
) -> ShownJob:
    """Return a job (or a stand-down) of the incident an alarm opened, as a unit showed it."""
    return ShownJob(
        seq=seq,
        assignment_id=assignment_id,
        incident_id=provisional_incident_id(alarm_id),
        kind=STAND_DOWN if withdraws else "assignment",
        shown_at=datetime.now(UTC),
        withdraws=withdraws,
    )


def test_a_run_where_everything_held() -> None:
    alarm, job = uuid.uuid4(), uuid.uuid4()
    ledger = Ledger()
    ledger.add_change(cancelled(alarm, "cd-patrol-1", job))
    unit = UnitRecord(
        "cd-patrol-1", shown=[shown(1, alarm, job), shown(2, alarm, uuid.uuid4(), job)]
    )
    report = audit(ledger, sent=2, receipted=[alarm, alarm], units=[unit])
    assert (report.sent, report.receipted, report.decided, report.undecided) == (2, 1, 1, ())
    assert report.units[0].jobs_shown == {job}
    assert report.units[0].consistent
    assert (report.holds, report.at_rest) == (True, True)
    assert "verdict    HOLDS" in summary(report)


def test_a_run_with_an_undecided_alarm_and_an_untold_unit_is_broken() -> None:
    decided, lost, job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ledger = Ledger()
    ledger.add_change(cancelled(decided, "cd-patrol-1", job))
    unit = UnitRecord("cd-patrol-1", shown=[shown(1, decided, job)], shown_twice=1)
    report = audit(ledger, sent=3, receipted=[decided, lost], units=[unit])
    assert report.undecided == (lost,)
    assert report.units[0].not_told == {job}
    assert report.units[0].not_shown == frozenset()
    assert report.shown_twice == 1
    assert not report.holds
    text = summary(report)
    assert "verdict    BROKEN" in text
    assert f"undecided: {lost}" in text
    assert len(text.splitlines()) <= 25


def test_only_this_runs_incidents_count_and_a_job_never_shown_is_noted() -> None:
    ours, earlier, job, old_job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ledger = Ledger()
    ledger.add_change(cancelled(ours, "cd-patrol-1", job))
    ledger.add_change(cancelled(earlier, "cd-patrol-1", old_job))
    # The unit's phone showed neither the job nor its stand-down; the earlier run's are no
    # concern of this run.
    report = audit(ledger, sent=1, receipted=[ours], units=[UnitRecord("cd-patrol-1")])
    assert report.units[0].not_shown == {job}
    assert report.units[0].not_told == {job}
    assert not report.holds
