"""The websocket server: authentication, the channel each role gets, and the frame loop.

See docs/protocol.md. What units' and commanders' frames do is in consumers.push.actions; the
wiring of server, outbox writer, listener and board feed in consumers.push.gateway.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import math
import socket
import weakref
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime

import asyncpg
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from consumers.auth import (
    UNIT_ROLES,
    AuthenticationFailed,
    Principal,
    Role,
    authenticate,
    can_command,
)
from consumers.push.actions import CommanderActions, Refused, UnitActions
from consumers.push.pages import Pages
from consumers.push.protocol import (
    MAX_FRAME_BYTES,
    AckFrame,
    AuthFrame,
    BadFrame,
    Channel,
    ClientFrame,
    CommandFrame,
    ErrorCode,
    HelloFrame,
    PositionFrame,
    PushClose,
    RespondFrame,
    ResumeFrame,
    WelcomeFrame,
    error_frame,
    parse_client_frame,
)
from consumers.push.sessions import TRY_AGAIN_LATER, Hub, RateLimiter, Session, UnitSession
from consumers.push.store import DATABASE_DOWN, OutboxRow, connection, resume_point, rows_after
from consumers.readiness import Readiness, alive
from dispatch.events import FieldError
from dispatch.settings import Settings
from dispatch.zone import default_zone_path, load_zone

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 5.0
HELLO_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
# Bytes the library buffers for one socket before send() waits; the session queue is beyond.
WRITE_LIMIT = 32 * 1024
# The kernel's send buffer of each connection (Linux doubles it). Fixed rather than autotuned
# (up to 4 MiB per socket): ten thousand connections cost bounded kernel memory, and a client
# that stops reading is noticed after a few hundred jobs rather than a few thousand.
SEND_BUFFER_BYTES = 64 * 1024

FrameHandler = Callable[[Session, ClientFrame], Awaitable[None]]
CheckReady = Callable[[], Awaitable[Readiness]]
# Answered over plain HTTP without a token: they tell whether the process and its
# dependencies answer, nothing about anyone's data.
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


def channel_for(principal: Principal) -> Channel | None:
    """Return the channel a principal's role gets, or None when it gets none."""
    if principal.role in UNIT_ROLES:
        return Channel.UNIT
    if can_command(principal):
        return Channel.COMMANDER
    if principal.role is Role.DESK:
        return Channel.DESK
    return None


def bearer_secret(headers: Headers) -> str | None:
    """Return the secret of an `Authorization: Bearer` header, "" if malformed, None if absent."""
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, secret = value.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


class PushServer:
    """Serve units, commanders and desks over websockets."""

    def __init__(
        self,
        settings: Settings,
        *,
        pool: asyncpg.Pool,
        hub: Hub,
        actions: UnitActions,
        commands: CommanderActions,
        check_ready: CheckReady,
        port: int | None = None,
    ) -> None:
        self._settings = settings
        self._check_ready = check_ready
        self._pool = pool
        self._hub = hub
        self._actions = actions
        self._commands = commands
        self._port = settings.push_port if port is None else port
        self._failed_auth = RateLimiter(settings.rate_limit_per_minute)
        # The pages (board, unit, desk) and their zone on the same port: docs/pages.md.
        self._pages = Pages(
            settings,
            zone=load_zone(settings.zone_file or default_zone_path()),
            authenticate=self._authenticate,
            failed_auth=self._failed_auth,
            can_connect=lambda principal: channel_for(principal) is not None,
        )
        # Filled by the handshake, read once by the handler; weak, so a handshake that fails
        # after authentication leaves nothing behind.
        self._principals: weakref.WeakKeyDictionary[ServerConnection, Principal] = (
            weakref.WeakKeyDictionary()
        )
        self._server: Server | None = None

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        assert self._server is not None, "start() first"
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen on gateway_host and the port."""
        heartbeat = self._settings.push_heartbeat_s
        self._server = await serve(
            self._handle,
            self._settings.gateway_host,
            self._port,
            process_request=self._process_request,
            # Small JSON frames: per-connection compression state would cost far more memory
            # than it saves in bytes.
            compression=None,
            ping_interval=heartbeat,
            ping_timeout=heartbeat,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=MAX_FRAME_BYTES,
            write_limit=WRITE_LIMIT,
            backlog=1024,
        )

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    # -- authentication ------------------------------------------------------------------------

    async def _authenticate(self, secret: str) -> Principal:
        async with connection(self._pool) as conn:
            return await authenticate(conn, secret=secret, now=datetime.now(UTC))

    @staticmethod
    def _remote(ws: ServerConnection) -> str:
        address = ws.remote_address
        return str(address[0]) if address else "unknown"

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if (page := await self._pages.answer(ws, request)) is not None:
            return page
        path = request.path.partition("?")[0]
        if path in (HEALTH_PATH, READY_PATH):
            return await self._probe(ws, path)
        secret = bearer_secret(request.headers)
        if secret is None:
            return None  # the client authenticates with its first frame
        remote = self._remote(ws)
        # Authenticate first, whatever the address did before: a good token always gets in,
        # even from behind a proxy that also carries someone retrying an expired one.
        try:
            principal = await self._authenticate(secret)
        except AuthenticationFailed as exc:
            if (wait := self._failed_auth.take(remote)) is not None:
                # Past the limit a failure is not logged, so guessing cannot flood the log.
                response = ws.respond(
                    http.HTTPStatus.TOO_MANY_REQUESTS, "too many failed attempts\n"
                )
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
            log.info("refused a handshake from %s: %s", remote, exc.reason)
            response = ws.respond(http.HTTPStatus.UNAUTHORIZED, "unauthorised\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except DATABASE_DOWN as exc:
            log.warning("cannot authenticate a handshake: %s", exc)
            return ws.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "try again later\n")
        if channel_for(principal) is None:
            return ws.respond(http.HTTPStatus.FORBIDDEN, "no push channel for this role\n")
        self._principals[ws] = principal
        return None

    async def _authenticate_by_frame(self, ws: ServerConnection) -> Principal | None:
        remote = self._remote(ws)
        try:
            frame = parse_client_frame(await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT_S))
            if not isinstance(frame, AuthFrame):
                raise AuthenticationFailed("the first frame is not auth")
            return await self._authenticate(frame.token.get_secret_value())
        except (TimeoutError, BadFrame, AuthenticationFailed) as exc:
            if (wait := self._failed_auth.take(remote)) is not None:
                # Not "unauthorized": the token may be good, the address is only too busy
                # failing. The client waits and tries again; it needs no new token.
                message = "too many failed attempts from this address; try again later"
                retry = round(wait, 1)
                await ws.send(error_frame(ErrorCode.RATE_LIMITED, message, retry_after_s=retry))
                await ws.close(TRY_AGAIN_LATER, "too many failed attempts")
                return None
            log.info("refused a connection from %s: %s", remote, exc)
            await ws.send(error_frame(ErrorCode.UNAUTHORIZED, "unauthorised"))
            await ws.close(PushClose.UNAUTHORIZED, "unauthorised")
        except DATABASE_DOWN as exc:
            log.warning("cannot authenticate a connection: %s", exc)
            await ws.close(TRY_AGAIN_LATER, "try again later")
        return None

    async def _probe(self, ws: ServerConnection, path: str) -> Response:
        if path == HEALTH_PATH:
            return self._json(ws, http.HTTPStatus.OK, alive())
        readiness = await self._check_ready()
        return self._json(ws, http.HTTPStatus(readiness.status_code), readiness.body())

    @staticmethod
    def _json(ws: ServerConnection, status: http.HTTPStatus, body: object) -> Response:
        response = ws.respond(status, json.dumps(body) + "\n")
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    # -- connections ---------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        # A client that goes away mid-conversation needs no answer; _serve cleans up its own.
        with suppress(ConnectionClosed):
            await self._converse(ws)

    async def _converse(self, ws: ServerConnection) -> None:
        principal = self._principals.pop(ws, None)
        if principal is None:
            principal = await self._authenticate_by_frame(ws)
            if principal is None:
                return
        channel = channel_for(principal)
        if channel is None:
            await ws.send(error_frame(ErrorCode.FORBIDDEN, "no push channel for this role"))
            await ws.close(PushClose.FORBIDDEN, "no push channel for this role")
            return
        welcome = WelcomeFrame(
            channel=channel,
            principal_id=principal.id,
            unit_id=principal.unit_id,
            enterprise_id=principal.enterprise_id,
            heartbeat_s=self._settings.push_heartbeat_s,
        )
        if channel is Channel.UNIT:
            await ws.send(welcome.model_dump_json(exclude_none=True))
            await self._serve_unit(ws, principal)
            return
        limit = self._settings.push_queue_limit
        board = Session(ws, principal, channel, queue_limit=limit, on_drop=self._hub.on_drop)
        # Queued, not sent: the writer sends it once the board is in the fan-out, so a client
        # that has its welcome misses no change the feed reads after that.
        board.offer_text(welcome.model_dump_json(exclude_none=True))
        await self._serve(board, self._on_board_frame)

    async def _serve(
        self,
        session: Session,
        on_frame: FrameHandler,
        first: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._hub.add(session)
        writer = asyncio.create_task(session.run_writer())
        try:
            if first is not None:
                await first()
            async for message in session.ws:
                try:
                    await on_frame(session, parse_client_frame(message))
                except BadFrame as exc:
                    text = error_frame(
                        ErrorCode.BAD_FRAME, str(exc), ref=exc.ref, errors=exc.errors
                    )
                    session.offer_text(text)
                except Refused as exc:
                    session.offer_text(self._refusal(exc, message))
        except ConnectionClosed:
            pass
        finally:
            self._hub.remove(session)
            writer.cancel()
            with suppress(asyncio.CancelledError):
                await writer
            await session.finish()

    @staticmethod
    def _refusal(exc: Refused, message: str | bytes) -> str:
        ref = None
        with suppress(BadFrame):
            ref = getattr(parse_client_frame(message), "ref", None)
        return error_frame(exc.code, exc.message, ref=ref, retry_after_s=exc.retry_after_s)

    async def _on_board_frame(self, session: Session, frame: ClientFrame) -> None:
        if isinstance(frame, CommandFrame) and session.channel is Channel.COMMANDER:
            await self._commands.command(session, frame)
            return
        if isinstance(frame, RespondFrame) and session.channel is Channel.COMMANDER:
            # A unit's answer given by radio or phone, recorded by the commander.
            if frame.unit_id is None:
                message = "a commander names the unit whose answer it records"
                raise BadFrame([FieldError(field="unit_id", message=message)], frame.ref)
            self._actions.spend(session)
            await self._actions.respond(session, frame, unit_id=frame.unit_id)
            return
        raise Refused(
            ErrorCode.WRONG_CHANNEL, f"no {frame.type} frame on the {session.channel} channel"
        )

    # -- the unit channel ----------------------------------------------------------------------

    async def _serve_unit(self, ws: ServerConnection, principal: Principal) -> None:
        assert principal.unit_id is not None  # Principal requires it of every unit role
        unit_id = principal.unit_id
        try:
            hello = parse_client_frame(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
        except (TimeoutError, BadFrame):
            hello = None
        if not isinstance(hello, HelloFrame):
            await ws.send(error_frame(ErrorCode.BAD_FRAME, "the unit channel starts with hello"))
            await ws.close(PushClose.PROTOCOL_ERROR, "expected hello")
            return
        try:
            async with connection(self._pool) as conn:
                acked, last = await resume_point(conn, unit_id=unit_id)
        except DATABASE_DOWN as exc:
            log.warning("cannot resume %s: %s", unit_id, exc)
            await ws.close(TRY_AGAIN_LATER, "try again later")
            return
        after = acked if hello.last_acked_seq is None else hello.last_acked_seq
        if after > last:
            message = f"last_acked_seq {after} is beyond this unit's last seq {last}"
            await ws.send(error_frame(ErrorCode.RESUME_AHEAD, message))
            await ws.close(PushClose.PROTOCOL_ERROR, "resume ahead")
            return
        session = UnitSession(
            ws,
            principal,
            unit_id=unit_id,
            after_seq=after,
            fetch_after=self._fetch_after,
            queue_limit=self._settings.push_queue_limit,
            on_drop=self._hub.on_drop,
        )
        # Sent before the session's writer starts, so it comes before every job.
        await ws.send(ResumeFrame(after_seq=after, last_seq=last).model_dump_json())

        async def acknowledge_what_it_holds() -> None:
            # The client holds everything up to `after`: that acknowledges it too. Done once
            # the writer runs, so the backlog does not wait for this round trip.
            with suppress(Refused):
                await self._actions.ack(session, after)

        await self._serve(
            session, self._on_unit_frame, acknowledge_what_it_holds if after > acked else None
        )

    async def _fetch_after(self, unit_id: str, after_seq: int, limit: int) -> list[OutboxRow]:
        async with connection(self._pool) as conn:
            return await rows_after(conn, unit_id=unit_id, after_seq=after_seq, limit=limit)

    async def _on_unit_frame(self, session: Session, frame: ClientFrame) -> None:
        assert isinstance(session, UnitSession)  # _serve_unit passes only unit sessions
        if isinstance(frame, AckFrame):
            if frame.seq > session.last_sent:
                message = f"seq {frame.seq} was not sent yet (last sent {session.last_sent})"
                raise Refused(ErrorCode.ACK_AHEAD, message)
            await self._actions.ack(session, frame.seq)
        elif isinstance(frame, RespondFrame):
            if frame.unit_id not in (None, session.unit_id):
                # The same answer as for another unit's job: a unit answers only its own.
                raise Refused(ErrorCode.UNKNOWN_ASSIGNMENT, "no such job for this unit")
            self._actions.spend(session)
            await self._actions.respond(session, frame, unit_id=session.unit_id)
        elif isinstance(frame, PositionFrame):
            self._actions.spend(session)
            await self._actions.report_position(session, frame)
        else:
            raise Refused(ErrorCode.WRONG_CHANNEL, f"no {frame.type} frame on the unit channel now")
