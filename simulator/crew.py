"""The crew behind a unit's phone: answers each job it is shown, drives there, works, resolves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dispatch.events import Position
from simulator.behaviour import Behaviour, Leg, Misbehaviour, Whereabouts
from simulator.tasks import cancel_and_wait

# Replies to `respond` that end the job for the crew: it was withdrawn, or is not ours.
JOB_GONE = frozenset({"job_withdrawn", "unknown_assignment"})


@dataclass(frozen=True)
class Reply:
    """The gateway's answer to one frame: ok, or the error code and message."""

    ok: bool
    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class Order:
    """A job the crew is to carry out: its seq on the unit's channel and where to go."""

    seq: int
    assignment_id: uuid.UUID
    position: Position


Request = Callable[[dict[str, Any]], Awaitable[Reply]]


class Crew:
    """Carry out one job at a time, as the behaviour says; tell the phone when status changes."""

    def __init__(self, behaviour: Behaviour, home: Position, request: Request) -> None:
        self.behaviour = behaviour
        self.whereabouts = Whereabouts(home)
        self.status = "available"
        self.status_changed = asyncio.Event()
        self._request = request
        self._orders: asyncio.Queue[Order] = asyncio.Queue()
        self._withdrawn: set[uuid.UUID] = set()
        self._current: tuple[uuid.UUID, asyncio.Task[None]] | None = None

    def take(self, order: Order) -> None:
        """Queue a job shown on the phone; a crew that never answers does nothing with it."""
        if self.behaviour.misbehaviour not in (Misbehaviour.NEVER_ACK, Misbehaviour.IGNORE):
            self._orders.put_nowait(order)

    def withdraw(self, assignment_id: uuid.UUID) -> None:
        """Drop a withdrawn job, stopping it if the crew is on it."""
        self._withdrawn.add(assignment_id)
        if self._current is not None and self._current[0] == assignment_id:
            self._current[1].cancel()

    @property
    def waiting(self) -> int:
        """Return how many jobs wait for the crew."""
        return self._orders.qsize()

    def is_withdrawn(self, assignment_id: uuid.UUID) -> bool:
        """Tell whether the crew was told a job is withdrawn."""
        return assignment_id in self._withdrawn

    def position(self) -> Position:
        """Return where the crew is now."""
        return self.whereabouts.at(asyncio.get_running_loop().time())

    async def work(self) -> None:
        """Take the queued jobs one after another, until cancelled."""
        while True:
            order = await self._orders.get()
            if order.assignment_id in self._withdrawn:
                continue
            task = asyncio.create_task(self._carry_out(order))
            self._current = (order.assignment_id, task)
            try:
                await asyncio.wait([task])
            finally:
                self._current = None
                await cancel_and_wait([task])
            if task.cancelled():  # withdrawn while on it: stop where we are, free again
                self.whereabouts.stop(asyncio.get_running_loop().time())
            else:
                task.result()  # a crew that fails is a bug of the simulator: let it show
            self._set_status("available")

    async def _carry_out(self, order: Order) -> None:
        knobs = self.behaviour
        await asyncio.sleep(knobs.real_s(knobs.think_s))
        if knobs.misbehaviour is Misbehaviour.DECLINE:
            await self._answer(order, "decline", knobs.decline_reason)
            return
        if not await self._answer(order, "accept"):
            return
        self._set_status("assigned")
        if not await self._answer(order, "en_route"):
            return
        loop = asyncio.get_running_loop()
        start = self.whereabouts.at(loop.time())
        leg = Leg(
            start, order.position, loop.time(), knobs.real_s(knobs.travel_s(start, order.position))
        )
        self.whereabouts.drive(leg)
        await asyncio.sleep(leg.duration_s)
        if not await self._answer(order, "on_scene"):
            return
        self._set_status("busy")
        await asyncio.sleep(knobs.real_s(knobs.work_s))
        await self._answer(order, "resolved")

    async def _answer(self, order: Order, action: str, reason: str | None = None) -> bool:
        """Send one answer (twice for a unit that repeats itself); False once the job is gone."""
        frame: dict[str, Any] = {"type": "respond", "seq": order.seq, "action": action}
        if reason is not None:
            frame["reason"] = reason
        times = 2 if self.behaviour.misbehaviour is Misbehaviour.ACK_TWICE else 1
        replies = [await self._request(frame) for _ in range(times)]
        return not any(reply.code in JOB_GONE for reply in replies)

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.status_changed.set()
