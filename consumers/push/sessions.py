"""Connected clients and the fan-out to them: sessions, the hub, rate limits.

The board feed that fans Kafka out through the hub is consumers.push.board_feed.

Nothing here waits on one client for another: the fan-out only puts items on each session's
queue, and each session's own writer task takes from its queue and writes to its socket. A
session is too slow when its socket is not taking data (the writer waits in a send) while
`queue_limit` frames wait behind it: the next frame for it closes it (close code 4008).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from consumers import metrics
from consumers.auth import Principal, can_command, can_read_incident
from consumers.auth.policy import can_read_reporter

# Its own module now; exported here too, where the gateway has always imported it from.
from consumers.push.board_feed import BoardFeed as BoardFeed
from consumers.push.protocol import (
    Channel,
    PushClose,
    command_outcome_frame,
    incident_frame,
    job_frame,
    unit_status_frame,
)
from consumers.push.store import DATABASE_DOWN, OutboxRow
from dispatch.events import (
    AssignmentKind,
    CommandOutcome,
    IncidentStateChange,
    UnitAvailability,
    UnitStatus,
    encode,
)

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 200
# Standard close codes: 1013 "try again later" (the outbox could not be read just now).
TRY_AGAIN_LATER = 1013
INTERNAL_ERROR = 1011
MAX_KNOWN_UNITS = 100_000


class _Wake:
    """Queue item telling a unit session to look in the outbox (another gateway stored rows)."""


WAKE = _Wake()
QueueItem = str | OutboxRow | _Wake
FetchAfter = Callable[[str, int, int], Awaitable[list[OutboxRow]]]


class Session:
    """One authenticated connection with its send queue and writer."""

    def __init__(
        self,
        ws: ServerConnection,
        principal: Principal,
        channel: Channel,
        *,
        queue_limit: int,
        on_drop: Callable[[Session, int], None],
    ) -> None:
        self.ws = ws
        self.principal = principal
        self.channel = channel
        self.dropped = False
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self._queue_limit = queue_limit
        # True while the writer waits for the socket to drain (the library's buffer is full).
        self._in_send = False
        self._on_drop = on_drop
        self._closing: asyncio.Task[None] | None = None

    def offer_text(self, text: str) -> None:
        """Queue a frame for this client; drop the client if its queue is full."""
        self._offer(text)

    def _offer(self, item: QueueItem) -> None:
        if self.dropped:
            return
        # A burst (a Kafka batch fanned out at once) may queue more than the limit for a client
        # that reads well: its writer runs as soon as the fan-out yields. Only a client whose
        # socket stopped taking data is dropped.
        if self._in_send and self._queue.qsize() >= self._queue_limit:
            self.drop(PushClose.TOO_SLOW, "send queue full: reconnect and resume")
        else:
            self._queue.put_nowait(item)

    def drop(self, code: int, reason: str) -> None:
        """Stop queueing for this client and close its connection, without waiting for it."""
        if self.dropped:
            return
        self.dropped = True
        self._on_drop(self, code)
        log.info("dropping %s (%s): %s", self.principal.id, code, reason)
        # Closing waits for the client (up to the close timeout); the fan-out must not.
        self._closing = asyncio.create_task(self.ws.close(code, reason))

    async def run_writer(self) -> None:
        """Write queued frames to the socket until the connection ends."""
        try:
            await self._write()
        except ConnectionClosed:
            pass
        except DATABASE_DOWN as exc:
            log.warning("session of %s cannot read the outbox: %s", self.principal.id, exc)
            self.drop(TRY_AGAIN_LATER, "outbox unavailable: reconnect and resume")
        except Exception:
            log.exception("session writer of %s failed", self.principal.id)
            self.drop(INTERNAL_ERROR, "internal error: reconnect and resume")

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, str):
                await self.send(item)

    async def send(self, text: str) -> None:
        """Write one frame, noting while the socket makes the writer wait."""
        self._in_send = True
        try:
            await self.ws.send(text)
        finally:
            self._in_send = False

    async def finish(self) -> None:
        """Wait for a close this session started (the connection is over)."""
        if self._closing is not None:
            with suppress(Exception):
                await self._closing


class UnitSession(Session):
    """A unit's connection: sends its jobs in seq order after the seq it resumed from."""

    def __init__(
        self,
        ws: ServerConnection,
        principal: Principal,
        *,
        unit_id: str,
        after_seq: int,
        fetch_after: FetchAfter,
        queue_limit: int,
        on_drop: Callable[[Session, int], None],
    ) -> None:
        super().__init__(ws, principal, Channel.UNIT, queue_limit=queue_limit, on_drop=on_drop)
        self.unit_id = unit_id
        # The highest seq written to this connection (or held by the client when it resumed).
        self.last_sent = after_seq
        self.jobs_sent = 0
        self.last_status: UnitAvailability | None = None
        self._fetch_after = fetch_after
        self._wake_pending = False

    def offer_row(self, row: OutboxRow) -> None:
        """Queue a job this process just stored."""
        if not self._in_send and self._queue.qsize() >= self._queue_limit:
            # A burst: the outbox holds the row, so memory stays bounded; read it from there
            # once the queue has drained.
            self.wake()
        else:
            self._offer(row)

    def wake(self) -> None:
        """Ask the session to look in the outbox (rows were stored elsewhere)."""
        if not self._wake_pending:
            self._wake_pending = True
            self._offer(WAKE)

    async def _write(self) -> None:
        # The outbox is the source of truth; queued rows only save a query when they are next.
        await self._catch_up()
        while True:
            item = await self._queue.get()
            if isinstance(item, str):
                await self.send(item)
            elif isinstance(item, _Wake):
                self._wake_pending = False
                await self._catch_up()
            elif item.seq == self.last_sent + 1:
                await self._send(item)
            elif item.seq > self.last_sent + 1:
                # A row in between reached this process another way (or not yet): read them all.
                await self._catch_up()

    async def _catch_up(self) -> None:
        while True:
            rows = await self._fetch_after(self.unit_id, self.last_sent, CATCH_UP_PAGE)
            for row in rows:
                await self._send(row)
            if len(rows) < CATCH_UP_PAGE:
                return

    async def _send(self, row: OutboxRow) -> None:
        # Counted as sent before the write completes: the client may ack it that soon.
        self.last_sent = row.seq
        self.jobs_sent += 1
        metrics.JOBS_PUSHED.inc()
        await self.send(job_frame(row.seq, row.payload))


class Hub:
    """Every session of this process, by unit and by board, and the fan-out to them."""

    def __init__(self) -> None:
        self._units: dict[str, set[UnitSession]] = {}
        self._boards: set[Session] = set()
        self.drops: Counter[int] = Counter()
        # The latest report of each unit seen on units.status, for its presence records.
        self._reports: dict[str, UnitStatus] = {}
        # Units that connected since the presence beacon last looked.
        self._arrivals: set[str] = set()
        self.arrival = asyncio.Event()

    @property
    def connections(self) -> int:
        """Return the number of sessions registered now."""
        return sum(len(s) for s in self._units.values()) + len(self._boards)

    @property
    def board_connections(self) -> int:
        """Return the number of board (commander and desk) sessions registered now."""
        return len(self._boards)

    @property
    def unit_connections(self) -> int:
        """Return the number of unit sessions registered now (a unit may hold two)."""
        return sum(len(s) for s in self._units.values())

    @property
    def unit_ids(self) -> set[str]:
        """Return the units with at least one connection to this process now."""
        return set(self._units)

    def last_report(self, unit_id: str) -> UnitStatus | None:
        """Return the latest status report of a unit seen since this process started."""
        return self._reports.get(unit_id)

    def take_arrivals(self) -> set[str]:
        """Return the units that connected since the last call, and forget them."""
        arrivals, self._arrivals = self._arrivals, set()
        self.arrival.clear()
        return arrivals

    def add(self, session: Session) -> None:
        """Register a session so that the fan-out reaches it."""
        if isinstance(session, UnitSession):
            self._units.setdefault(session.unit_id, set()).add(session)
            self._arrivals.add(session.unit_id)
            self.arrival.set()
        else:
            self._boards.add(session)

    def remove(self, session: Session) -> None:
        """Forget a session (closed or dropped)."""
        if isinstance(session, UnitSession):
            sessions = self._units.get(session.unit_id)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._units[session.unit_id]
        else:
            self._boards.discard(session)

    def on_drop(self, session: Session, code: int) -> None:
        """Count a dropped session and stop fanning out to it."""
        self.drops[code] += 1
        self.remove(session)

    def deliver(self, rows: Sequence[OutboxRow]) -> None:
        """Hand rows this process stored to the sessions of their units."""
        for row in rows:
            for session in tuple(self._units.get(row.unit_id, ())):
                session.offer_row(row)

    def wake_unit(self, unit_id: str) -> None:
        """Tell a unit's sessions that rows were stored by another process."""
        for session in tuple(self._units.get(unit_id, ())):
            session.wake()

    def wake_all(self) -> None:
        """Tell every unit session to look in the outbox."""
        for sessions in tuple(self._units.values()):
            for session in tuple(sessions):
                session.wake()

    def publish_incident(self, change: IncidentStateChange) -> None:
        """Send a state change to every board whose principal may read the incident.

        Who reported it and their number go only to those who may read them too; the others
        get the change without them.
        """
        units = {party.unit_id for party in change.parties}
        sent = {p.unit_id for p in change.parties if p.kind is AssignmentKind.ASSIGNMENT}
        full: str | None = None
        without_contact: str | None = None
        for session in tuple(self._boards):
            principal, where = session.principal, change.enterprise_id
            if not can_read_incident(principal, enterprise_id=where, unit_ids=units):
                continue
            if can_read_reporter(principal, enterprise_id=where, sent_unit_ids=sent):
                full = full or incident_frame(encode(change).decode())
                session.offer_text(full)
            else:
                hidden = change.model_copy(update={"reporter_name": None, "reporter_phone": None})
                without_contact = without_contact or incident_frame(encode(hidden).decode())
                session.offer_text(without_contact)

    def publish_unit_status(self, status: UnitStatus) -> None:
        """Send a unit's status report to every commander, and keep it for its presence."""
        if not status.presence:
            self._remember(status)
        text: str | None = None
        for session in tuple(self._boards):
            if can_command(session.principal):
                text = text or unit_status_frame(encode(status).decode())
                session.offer_text(text)

    def publish_command_outcome(self, outcome: CommandOutcome) -> None:
        """Send what became of a command to every commander (any of them may have sent it)."""
        text: str | None = None
        for session in tuple(self._boards):
            if can_command(session.principal):
                text = text or command_outcome_frame(encode(outcome).decode())
                session.offer_text(text)

    def _remember(self, status: UnitStatus) -> None:
        self._reports.pop(status.unit_id, None)
        self._reports[status.unit_id] = status
        if len(self._reports) > MAX_KNOWN_UNITS:
            # Any unit id can arrive on the topic: keep the most recently reported ones.
            del self._reports[next(iter(self._reports))]


class RateLimiter:
    """A token bucket per key: `per_minute` in a burst, refilled evenly over the minute."""

    _PRUNE_AT = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - at) * self._rate)

    def blocked(self, key: str) -> float | None:
        """Return the seconds to wait before key may act, or None if it may act now."""
        level = self._level(key, self._clock())
        return None if level >= 1 else (1 - level) / self._rate

    def take(self, key: str) -> float | None:
        """Spend one token of key; return None if it had one, else the seconds to wait."""
        now = self._clock()
        level = self._level(key, now)
        if level < 1:
            return (1 - level) / self._rate
        if len(self._buckets) >= self._PRUNE_AT:
            self._prune(now)
        self._buckets[key] = (level - 1, now)
        return None

    def _prune(self, now: float) -> None:
        full = [key for key in self._buckets if self._level(key, now) >= self._capacity]
        for key in full:
            del self._buckets[key]
