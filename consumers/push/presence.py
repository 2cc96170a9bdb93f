"""Presence: while a unit is connected, the gateway says so on `units.status`.

A connected unit is there even when its device has not sent a position for a while (parked,
or a client that reports too rarely). Every `interval_s`, and at once when a unit connects,
the gateway publishes a presence record for each connected unit whose last report it knows:
a `UnitStatus` with `presence: true`, `reported_at` now, and the last known status and
position with that fix's own time in `position_at`. It reports nothing new: the route stage
changes no availability for it and keeps the fix's real age (streams.units_board). When the
unit disconnects it leaves the hub, and its presence stops. See docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka.errors import KafkaError

from consumers.push.outbox import cancel
from dispatch.events import UnitStatus, encode, key_of

if TYPE_CHECKING:
    # The hub's board feed starts the beacon: a runtime import would be circular.
    from consumers.push.sessions import Hub

log = logging.getLogger(__name__)

PRESENCE_INTERVAL_S = 30.0
"""How often a connected unit is announced: the interval a unit on duty reports at, too."""

Send = Callable[[str, bytes, bytes], Awaitable[object]]


def presence_of(last: UnitStatus, *, now: datetime) -> UnitStatus:
    """Return the presence record of a connected unit whose last report is last."""
    return UnitStatus(
        event_id=uuid.uuid4(),
        unit_id=last.unit_id,
        status=last.status,
        position=last.position,
        position_at=(last.position_at or last.reported_at) if last.position else None,
        reported_at=now,
        presence=True,
    )


class PresenceBeacon:
    """Announce every connected unit on `units.status`, periodically and when it connects."""

    def __init__(
        self, *, hub: Hub, send: Send, topic: str, interval_s: float = PRESENCE_INTERVAL_S
    ) -> None:
        self._hub = hub
        self._send = send
        self._topic = topic
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.announced = 0

    async def start(self) -> None:
        """Start announcing."""
        self._task = asyncio.create_task(self._run(), name="presence-beacon")

    async def stop(self) -> None:
        """Stop announcing."""
        if self._task is not None:
            await cancel(self._task)

    async def beat(self, unit_ids: Iterable[str] | None = None) -> int:
        """Announce the given connected units (default: all); return how many were announced."""
        now = datetime.now(UTC)
        connected = self._hub.unit_ids
        count = 0
        for unit_id in connected if unit_ids is None else connected & set(unit_ids):
            last = self._hub.last_report(unit_id)
            if last is None:
                continue  # nothing known to repeat yet: its first report will be
            record = presence_of(last, now=now)
            await self._send(self._topic, encode(record), key_of(record))
            count += 1
        self.announced += count
        return count

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._interval_s
        while True:
            try:
                async with asyncio.timeout(max(0.0, due - loop.time())):
                    await self._hub.arrival.wait()
                arrived: set[str] | None = self._hub.take_arrivals()
            except TimeoutError:
                arrived = None  # the interval is up: everyone
                due = loop.time() + self._interval_s
            await self._beat_safely(arrived)

    async def _beat_safely(self, unit_ids: set[str] | None) -> None:
        try:
            await self.beat(unit_ids)
        except KafkaError as exc:
            # Best effort: the next beat says the same; a missed one ages nothing much.
            log.warning("presence not published: %s", exc)
        except Exception:
            # Whatever one beat does, the next must run: presence is what keeps units seen.
            log.exception("presence beat failed")
