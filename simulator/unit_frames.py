"""What a unit's phone does with each frame the gateway sends (docs/protocol.md)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dispatch.events import Position
from simulator.crew import Order, Reply
from simulator.records import STAND_DOWN, ShownJob, Verdict

if TYPE_CHECKING:
    from simulator.unit_client import UnitClient

# Frames of the commander's and desks' channels: a unit channel must never carry them.
BOARD_FRAMES = frozenset({"incident", "unit_status"})


class ConnectionLost(Exception):
    """Raised when a frame cannot be sent or answered because the connection ended."""


def parse_job(frame: dict[str, Any]) -> tuple[ShownJob, Position]:
    """Return the job of a job frame and where it is; raise ValueError when it is malformed."""
    try:
        job = frame["assignment"]
        withdraws, updates = job.get("withdraws"), job.get("updates")
        dispatched_at = job.get("dispatched_at")
        shown = ShownJob(
            seq=int(frame["seq"]),
            assignment_id=uuid.UUID(job["assignment_id"]),
            incident_id=uuid.UUID(job["incident_id"]),
            kind=str(job["kind"]),
            shown_at=datetime.now(UTC),
            withdraws=uuid.UUID(withdraws) if withdraws else None,
            updates=uuid.UUID(updates) if updates else None,
            dispatched_at=datetime.fromisoformat(dispatched_at) if dispatched_at else None,
        )
        where = Position(lat=job["position"]["lat"], lon=job["position"]["lon"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"malformed job frame: {type(exc).__name__}: {exc}") from exc
    return shown, where


class FrameHandler:
    """Handle the gateway's frames for one unit; keeps the flash (the last seq acknowledged)."""

    def __init__(self, client: UnitClient) -> None:
        self.client = client
        # The flash: the highest seq shown and acknowledged; None while the phone has no
        # record of its own (a new phone, or after resume_ahead): it says hello with null and
        # takes the gateway's record from the resume.
        self.acked: int | None = None
        self.retry_after_s: float | None = None
        self._asked: int | None = None
        self._gaps: set[tuple[int, int]] = set()

    async def handle(self, message: str | bytes) -> bool:
        """Handle one frame; return True when it is the resume that starts the channel."""
        record = self.client.record
        try:
            frame = json.loads(message)
            kind = str(frame["type"])
        except (ValueError, TypeError, KeyError):
            record.unknown_frames.append("unparseable")
            return False
        if kind == "welcome":
            await self._welcome(frame)
        elif kind == "resume":
            after_seq = int(frame["after_seq"])
            self.client.screen.resumed(
                asked=self._asked, after_seq=after_seq, last_seq=int(frame["last_seq"])
            )
            if self.acked is None:
                self.client.screen.adopt(after_seq)
                self.acked = after_seq
            return True
        elif kind == "job":
            await self._job(frame)
        elif kind == "ok":
            self.client.answered(frame.get("ref"), Reply(ok=True))
        elif kind == "error":
            self._error(frame)
        elif kind in BOARD_FRAMES:
            record.violations.append(f"{kind} frame on the unit channel")
        else:
            record.unknown_frames.append(kind)
        return False

    async def _welcome(self, frame: dict[str, Any]) -> None:
        channel, unit_id = frame.get("channel"), frame.get("unit_id")
        if (channel, unit_id) != ("unit", self.client.unit_id):
            self.client.record.violations.append(f"welcome to channel {channel} as {unit_id}")
        self._asked = self.acked
        await self.client.send({"type": "hello", "last_acked_seq": self._asked})

    async def _job(self, frame: dict[str, Any]) -> None:
        client = self.client
        try:
            job, where = parse_job(frame)
        except ValueError as exc:
            client.record.violations.append(str(exc))
            return
        gap = (client.screen.last_shown, job.seq)
        verdict = client.screen.offer(job, past_gap=gap in self._gaps)
        if verdict is Verdict.GAP:
            # Resume from the last job shown, once: the gateway sends everything after it.
            self._gaps.add(gap)
            await client.resync()
            return
        if verdict is not Verdict.SHOWN:
            return
        await client.ack(job.seq)
        if job.kind == STAND_DOWN and job.withdraws is not None:
            client.crew.withdraw(job.withdraws)
        elif job.kind == "assignment":
            client.crew.take(Order(job.seq, job.assignment_id, where))
        # A mutual-aid alert is answered by its acknowledgement; an update (what a later alarm
        # changed about a job) is read by the crew on its way, and answered by nothing.

    def _error(self, frame: dict[str, Any]) -> None:
        code, message = str(frame.get("code")), str(frame.get("message"))
        self.client.record.errors.append((code, message))
        if isinstance(frame.get("retry_after_s"), int | float):
            self.retry_after_s = float(frame["retry_after_s"])
        if code == "resume_ahead":
            # Our flash is ahead of the gateway's outbox: forget it, as the docs say.
            self.client.screen.forget()
            self.acked = None
        self.client.answered(frame.get("ref"), Reply(ok=False, code=code, message=message))
