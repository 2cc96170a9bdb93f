"""A unit's phone on the websocket push protocol (docs/protocol.md), written from the docs.

It connects with its token in the Authorization header, says `hello` with the last seq it
acknowledged (kept across reconnects, as a phone keeps it on flash), shows each job exactly
once (`simulator.records.Screen`), acknowledges what it shows, hands jobs to its crew, reports
its position, and reconnects by itself with backoff whenever the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from dispatch.events import Position
from simulator.behaviour import Behaviour, Misbehaviour
from simulator.crew import Crew, Reply
from simulator.records import Changes, Screen, UnitRecord
from simulator.retry import Backoff, retry_after_s
from simulator.tasks import cancel_and_wait
from simulator.unit_frames import ConnectionLost, FrameHandler

log = logging.getLogger(__name__)

# Close codes after which reconnecting with the same token cannot help (docs: close codes).
STOP_CODES = frozenset({4001, 4003})
REPLY_WAIT_S = 30.0  # no answer to a frame this long: send it again (it is idempotent)


class UnitClient:
    """Run one unit's phone until stopped: connect, resume, show, ack, answer, report."""

    def __init__(
        self,
        *,
        url: str,
        token: SecretStr,
        unit_id: str,
        home: Position,
        behaviour: Behaviour,
        changes: Changes | None = None,
    ) -> None:
        self.url = url
        self.unit_id = unit_id
        self.record = UnitRecord(unit_id)
        self.screen = Screen(self.record)
        self.crew = Crew(behaviour, home, self.request)
        self.changes = changes or Changes()
        self.stopped = False
        self.connected = asyncio.Event()
        self._token = token
        self._ws: ClientConnection | None = None
        self._refs = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._handler = FrameHandler(self)
        self._backoff = Backoff()
        self._sessions = 0

    @property
    def behaviour(self) -> Behaviour:
        """Return the unit's knobs."""
        return self.crew.behaviour

    async def run(self) -> None:
        """Stay connected (reconnecting with backoff) until stop() or a close that forbids it;
        the crew works meanwhile, and a crew that fails ends the run with its error."""
        async with asyncio.TaskGroup() as group:
            crew = group.create_task(self.crew.work())
            group.create_task(self._stay_connected(crew))

    async def _stay_connected(self, crew: asyncio.Task[None]) -> None:
        try:
            while not self.stopped:
                wait = await self._connection()
                if not self.stopped:
                    await asyncio.sleep(wait)
        finally:
            crew.cancel()

    async def stop(self) -> None:
        """Stop reconnecting and close the connection."""
        self.stopped = True
        await self.resync()

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame on the current connection; raise ConnectionLost when there is none."""
        if self._ws is None:
            raise ConnectionLost("not connected")
        try:
            await self._ws.send(json.dumps(frame, ensure_ascii=False))
        except ConnectionClosed as exc:
            raise ConnectionLost(str(exc)) from exc

    async def request(self, frame: dict[str, Any]) -> Reply:
        """Send a frame that gets an ok or error; resend after a lost connection, `unavailable`
        or `rate_limited`, as the docs say (answers are idempotent); return the final reply."""
        backoff = Backoff()
        while True:
            await self.connected.wait()
            ref = f"{frame['type'][0]}-{next(self._refs)}"
            future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            self._pending[ref] = future
            try:
                await self.send({**frame, "ref": ref})
                reply = await asyncio.wait_for(future, REPLY_WAIT_S)
            except (ConnectionLost, TimeoutError):
                await asyncio.sleep(backoff.next())
                continue
            finally:
                self._pending.pop(ref, None)
                if future.done() and not future.cancelled():
                    future.exception()  # failed with the connection while send failed: seen
            if reply.code == "unavailable":
                await asyncio.sleep(backoff.next())
            elif reply.code == "rate_limited":
                await asyncio.sleep(self._handler.retry_after_s or backoff.next())
            else:
                return reply

    def answered(self, ref: str | None, reply: Reply) -> bool:
        """Hand a reply to the request waiting for it; False when none waits."""
        future = self._pending.get(ref or "")
        if future is None or future.done():
            return False
        future.set_result(reply)
        return True

    async def _connection(self) -> float:
        """Run one connection to its end; return how long to wait before the next."""
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            async with connect(self.url, additional_headers=headers, proxy=None) as ws:
                self._ws = ws
                with contextlib.suppress(ConnectionLost):
                    await self._session(ws)
            code = ws.close_code
        except InvalidStatus as exc:
            status = exc.response.status_code
            self.record.errors.append((f"http_{status}", exc.response.reason_phrase))
            if status in (401, 403):
                self.stopped = True  # a person must give this phone a token that works
            return retry_after_s(exc.response.headers) or self._backoff.next()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self.record.errors.append(("connect", type(exc).__name__))
            return self._backoff.next()
        finally:
            self._ws = None
            self.connected.clear()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost("connection closed"))
        return self._after_close(code)

    def _after_close(self, code: int | None) -> float:
        if code in STOP_CODES:
            self.record.errors.append((f"close_{code}", "stopped: a new token is needed"))
            self.stopped = True
        if code == 1013 and self._handler.retry_after_s:
            return self._handler.retry_after_s
        return self._backoff.next()

    async def _session(self, ws: ClientConnection) -> None:
        reporter: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                resumed = await self._handler.handle(message)
                if resumed:
                    # A reconnect is a connection resumed after the first; failed attempts
                    # are counted among the errors ("connect", or the HTTP status).
                    self.record.reconnects += self._sessions > 0
                    self._sessions += 1
                    self._backoff.reset()
                    self.connected.set()
                    reporter = asyncio.create_task(self._report_positions())
                await self.changes.notify()
        finally:
            if reporter is not None:
                await cancel_and_wait([reporter])

    async def _report_positions(self) -> None:
        """Report at once, then every position_every_s and on every change of status."""
        crew = self.crew
        while True:
            crew.status_changed.clear()
            where = crew.position()
            frame = {"type": "position", "lat": where.lat, "lon": where.lon}
            frame |= {"accuracy_m": where.accuracy_m or 10.0, "status": crew.status}
            frame["ref"] = f"p-{next(self._refs)}"
            try:
                await self.send(frame)
            except ConnectionLost:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(crew.status_changed.wait(), self.behaviour.position_every_s)

    async def ack(self, seq: int) -> None:
        """Acknowledge every job up to seq (twice for a unit that repeats itself)."""
        misbehaviour = self.behaviour.misbehaviour
        if misbehaviour is Misbehaviour.NEVER_ACK:
            return
        # On flash first: an ack lost with the connection is made by the next hello.
        self._handler.acked = max(self._handler.acked or 0, seq)
        with contextlib.suppress(ConnectionLost):
            for _ in range(2 if misbehaviour is Misbehaviour.ACK_TWICE else 1):
                await self.send({"type": "ack", "seq": seq})

    async def resync(self) -> None:
        """Close the connection so that the next one resumes from the last job shown."""
        if self._ws is not None:
            await self._ws.close()
