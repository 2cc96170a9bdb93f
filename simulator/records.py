"""What a simulated unit's phone shows and keeps: exactly-once display and the unit's record.

docs/protocol.md (Sequence numbers): a client that shows only the job whose seq is one above
the last it showed, and resumes with that number, shows every job exactly once, in order.
`Screen` is that rule and nothing else, so it is tested without a network.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

STAND_DOWN = "stand_down"
UPDATE = "update"
# Frames of the job stream that are not jobs: they withdraw one, or tell what changed about one.
NOTICES = frozenset({STAND_DOWN, UPDATE})


class Verdict(StrEnum):
    """What the screen did with one job frame."""

    SHOWN = "shown"
    DUPLICATE = "duplicate"
    GAP = "gap"


@dataclass(frozen=True)
class ShownJob:
    """One job as the unit showed it."""

    seq: int
    assignment_id: uuid.UUID
    incident_id: uuid.UUID
    kind: str
    shown_at: datetime
    withdraws: uuid.UUID | None = None
    updates: uuid.UUID | None = None
    dispatched_at: datetime | None = None  # the job's (a stand-down's: when it was withdrawn)

    @property
    def is_job(self) -> bool:
        """Tell a job or an alert from a notice about one (a stand-down, an update)."""
        return self.kind not in NOTICES


@dataclass
class UnitRecord:
    """Everything one unit saw and did, for the ledger."""

    unit_id: str
    shown: list[ShownJob] = field(default_factory=list)
    shown_twice: int = 0
    duplicates: int = 0
    violations: list[str] = field(default_factory=list)
    reconnects: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    unknown_frames: list[str] = field(default_factory=list)

    @property
    def withdrawn_told(self) -> set[uuid.UUID]:
        """Return the assignment ids the unit was told are withdrawn."""
        return {job.withdraws for job in self.shown if job.withdraws is not None}

    @property
    def updates_told(self) -> int:
        """Return how many updates (what a later alarm changed about a job) were shown."""
        return sum(1 for job in self.shown if job.kind == UPDATE)

    @property
    def jobs(self) -> list[ShownJob]:
        """Return the jobs and alerts shown, stand-downs and updates left out."""
        return [job for job in self.shown if job.is_job]


class Screen:
    """Show each job once, in seq order; keep the last seq shown across reconnects."""

    def __init__(self, record: UnitRecord) -> None:
        self.record = record
        self.last_shown = 0
        # The lowest seq the current connection may send (after its resume's after_seq).
        self.after_seq = 0
        self._assignment_ids: set[uuid.UUID] = set()

    def resumed(self, *, asked: int | None, after_seq: int, last_seq: int) -> None:
        """Note a resume frame; record a violation when it does not answer what was asked."""
        if asked is not None and after_seq != asked:
            self.record.violations.append(f"resume after_seq {after_seq} for hello {asked}")
        if last_seq < after_seq:
            self.record.violations.append(f"resume last_seq {last_seq} < after_seq {after_seq}")
        self.after_seq = after_seq

    def offer(self, job: ShownJob, *, past_gap: bool = False) -> Verdict:
        """Show the job if its seq is the next one; count a duplicate; record a gap.

        past_gap shows a job after a gap anyway (recorded all the same): a gap that a resume
        did not fill will never be filled, and a phone must go on showing new jobs.
        """
        if job.seq <= self.last_shown:
            self.record.duplicates += 1
            if job.seq <= self.after_seq:
                self.record.violations.append(
                    f"seq {job.seq} sent at or below the resume's after_seq {self.after_seq}"
                )
            return Verdict.DUPLICATE
        if job.seq > self.last_shown + 1:
            self.record.violations.append(f"gap: seq {job.seq} after {self.last_shown}")
            if not past_gap:
                return Verdict.GAP
        self.last_shown = job.seq
        if job.assignment_id in self._assignment_ids:
            # A second seq for one assignment: the device would show the same job twice.
            self.record.shown_twice += 1
        self._assignment_ids.add(job.assignment_id)
        self.record.shown.append(job)
        return Verdict.SHOWN

    def adopt(self, after_seq: int) -> None:
        """Go on after the gateway's record, as a phone without its own does (hello: null)."""
        self.last_shown = after_seq

    def forget(self) -> None:
        """Start again from nothing, as after `resume_ahead` (the gateway lost our history)."""
        self.last_shown = 0
        self.after_seq = 0


class Changes:
    """Something changed (a job shown, a record read): wake whoever waits on a condition."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()

    async def notify(self) -> None:
        """Wake every waiter so it checks its condition again."""
        async with self._condition:
            self._condition.notify_all()

    async def wait_for(self, check: Callable[[], bool]) -> None:
        """Wait until check() is true; it is checked again after every change."""
        async with self._condition:
            await self._condition.wait_for(check)
