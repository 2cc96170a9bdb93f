"""Exactly-once display: a job is shown only when its seq is the next one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from simulator.records import STAND_DOWN, Screen, ShownJob, UnitRecord, Verdict


def job(
    seq: int,
    assignment_id: uuid.UUID | None = None,
    *,
    kind: str = "assignment",
    withdraws: uuid.UUID | None = None,
) -> ShownJob:
    """Return a job frame's job with a seq (a fresh assignment unless one is given)."""
    return ShownJob(
        seq=seq,
        assignment_id=assignment_id or uuid.uuid4(),
        incident_id=uuid.uuid4(),
        kind=kind,
        shown_at=datetime.now(UTC),
        withdraws=withdraws,
    )


def screen() -> Screen:
    return Screen(UnitRecord("cd-patrol-1"))


def test_jobs_in_order_are_each_shown() -> None:
    s = screen()
    assert [s.offer(job(n)) for n in (1, 2, 3)] == [Verdict.SHOWN] * 3
    assert s.last_shown == 3
    assert [j.seq for j in s.record.shown] == [1, 2, 3]
    assert (s.record.duplicates, s.record.violations, s.record.shown_twice) == (0, [], 0)


def test_a_seq_at_or_below_the_last_shown_is_a_duplicate_and_not_shown() -> None:
    s = screen()
    first = job(1)
    s.offer(first)
    s.offer(job(2))
    assert s.offer(first) is Verdict.DUPLICATE
    assert s.offer(job(2)) is Verdict.DUPLICATE
    assert len(s.record.shown) == 2
    assert s.record.duplicates == 2
    # Resent within a connection that resumed from 0 (a unit that never acked): no violation.
    assert s.record.violations == []


def test_a_seq_at_or_below_the_resumes_after_seq_is_a_violation() -> None:
    s = screen()
    s.offer(job(1))
    s.offer(job(2))
    s.resumed(asked=2, after_seq=2, last_seq=3)
    assert s.offer(job(2)) is Verdict.DUPLICATE
    assert s.record.violations == ["seq 2 sent at or below the resume's after_seq 2"]


def test_a_gap_is_a_violation_and_is_not_shown_unless_it_is_past_filling() -> None:
    s = screen()
    s.offer(job(1))
    assert s.offer(job(3)) is Verdict.GAP
    assert s.last_shown == 1
    assert s.record.violations == ["gap: seq 3 after 1"]
    assert s.offer(job(3), past_gap=True) is Verdict.SHOWN
    assert s.last_shown == 3
    assert len(s.record.violations) == 2


def test_one_assignment_under_two_seqs_counts_as_shown_twice() -> None:
    s = screen()
    same = uuid.uuid4()
    s.offer(job(1, same))
    assert s.offer(job(2, same)) is Verdict.SHOWN
    assert s.record.shown_twice == 1


def test_a_resume_that_does_not_answer_the_hello_is_a_violation() -> None:
    s = screen()
    s.resumed(asked=5, after_seq=4, last_seq=3)
    assert s.record.violations == [
        "resume after_seq 4 for hello 5",
        "resume last_seq 3 < after_seq 4",
    ]
    s.resumed(asked=None, after_seq=7, last_seq=7)  # null: the gateway's own record decides
    assert len(s.record.violations) == 2


def test_forget_starts_from_nothing() -> None:
    s = screen()
    s.offer(job(1))
    s.forget()
    assert s.offer(job(1)) is Verdict.SHOWN


def test_the_record_tells_jobs_from_stand_downs() -> None:
    s = screen()
    first = job(1)
    s.offer(first)
    s.offer(job(2, kind=STAND_DOWN, withdraws=first.assignment_id))
    assert s.record.jobs == [first]
    assert s.record.withdrawn_told == {first.assignment_id}
