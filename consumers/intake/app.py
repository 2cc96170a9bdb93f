"""The intake API: desks, guards, sensors and the hotline raise alarms over HTTP.

`build_app` wires the FastAPI app to a started Kafka producer and an asyncpg pool; the
entry point (`__main__`) builds both from settings. docs/intake.md describes the API.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Annotated, cast

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from consumers import metrics
from consumers.auth import (
    AuthenticationFailed,
    Principal,
    Role,
    authenticate,
    can_raise_alarm,
    can_read_incident,
)
from consumers.intake import receipts
from consumers.intake.cors import install_cors
from consumers.intake.docs import install_docs
from consumers.intake.errors import (
    ApiError,
    documented,
    field_error,
    install_error_handlers,
    too_many,
    unauthorised,
)
from consumers.intake.limits import BodyLimit, Clock, RateLimiter
from consumers.intake.models import (
    AlarmReceipt,
    AlarmRecord,
    AlarmRequest,
    raw_alarm_of,
    request_hash,
    source_kind_of,
)
from consumers.intake.placing import install_placing
from consumers.intake.read_api import ReadSettings, install_read_api
from consumers.intake.reports_api import install_reports_api
from consumers.kafka_producer import RecoveringProducer
from consumers.readiness import alive, check_ready
from dispatch.events import ALARMS_RAW, RawAlarm, encode, key_of
from dispatch.settings import Settings
from dispatch.zone import Zone, default_zone_path, load_zone

log = logging.getLogger(__name__)

# How long to wait for a pooled PostgreSQL connection before answering 503.
_STORE_TIMEOUT_S = 5.0
# Errors that mean PostgreSQL cannot answer now, as opposed to a bug in a statement: not
# reachable, shutting down, starting or in recovery ("the database system is starting up",
# class 57: operator intervention), or out of connections or memory (class 53).
_STORE_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)
_NOTHING_ACCEPTED = "the receipt store (PostgreSQL) is unavailable; nothing was accepted"
_NOT_CONFIRMED = (
    "Kafka has the alarm but its receipt could not be recorded (PostgreSQL is unavailable); "
    "retry with the same idempotency_key to get the receipt"
)
# Roles that may look at alarm receipts at all; which receipts is decided per alarm.
_RECEIPT_READERS = frozenset({Role.DESK, Role.GUARD, Role.SENSOR, Role.COMMANDER})


class Intake:
    """What the routes do: authenticate, limit, raise an alarm, read a receipt."""

    def __init__(
        self,
        *,
        producer: RecoveringProducer,
        pool: asyncpg.Pool,
        zone: Zone,
        topic: str,
        kafka_timeout_s: float,
        limiter: RateLimiter,
        failures: RateLimiter,
        now: Callable[[], datetime],
    ) -> None:
        self.producer = producer
        self.pool = pool
        self.zone = zone
        self.topic = topic
        self.kafka_timeout_s = kafka_timeout_s
        self.limiter = limiter
        self.failures = failures
        self.now = now

    @asynccontextmanager
    async def connection(
        self, unavailable: str = _NOTHING_ACCEPTED
    ) -> AsyncIterator[asyncpg.Connection]:
        """Lend a pooled connection; PostgreSQL being unreachable becomes a 503 saying so."""
        try:
            async with self.pool.acquire(timeout=_STORE_TIMEOUT_S) as proxy:
                # A pooled connection forwards every Connection method (the stubs type it as
                # a separate proxy class), and the store functions take a Connection.
                yield cast(asyncpg.Connection, proxy)
        except _STORE_DOWN as exc:
            log.warning("intake: PostgreSQL unavailable: %r", exc)
            raise ApiError(503, unavailable) from None

    async def caller(
        self, request: Request, credentials: HTTPAuthorizationCredentials
    ) -> Principal:
        """Return the principal of the bearer token, within its rate limit, or refuse."""
        address = request.client.host if request.client else "unknown"
        try:
            async with self.connection() as conn:
                principal = await authenticate(conn, secret=credentials.credentials, now=self.now())
        except AuthenticationFailed as exc:
            # Failures are limited per client address: past the limit a bad token gets 429
            # and is not logged, so a flood of guesses cannot flood the log. A good token
            # from the same address (another client behind the same proxy) still works.
            wait = self.failures.acquire(address)
            if wait > 0:
                raise too_many(wait) from None
            log.warning("intake: authentication failed (%s) from %s", exc.reason, address)
            raise unauthorised() from None
        wait = self.limiter.acquire(principal.id)
        if wait > 0:
            raise too_many(wait)
        return principal

    async def raise_alarm(
        self, principal: Principal, request: AlarmRequest
    ) -> tuple[AlarmReceipt, bool]:
        """Put the alarm on Kafka, then confirm its receipt; return it and whether replayed."""
        enterprise_id = request.enterprise_id or principal.enterprise_id
        if not can_raise_alarm(principal, enterprise_id=enterprise_id):
            # Only desks, guards and sensors are ever bound, and all three may raise: a bound
            # principal is refused only for naming another enterprise.
            if principal.enterprise_id is not None:
                raise field_error(
                    403,
                    "this principal raises alarms only for its own enterprise",
                    "enterprise_id",
                    f"must be {principal.enterprise_id!r} or omitted",
                )
            raise ApiError(403, f"a {principal.role.value} principal may not raise alarms")
        if principal.enterprise_id is not None:
            self._check_own_place(principal.enterprise_id, request)
        alarm = raw_alarm_of(principal, request, enterprise_id=enterprise_id, now=self.now())
        async with self.connection() as conn:
            try:
                reservation = await receipts.reserve(
                    conn,
                    alarm=alarm,
                    principal_id=principal.id,
                    request_hash=request_hash(request, enterprise_id),
                )
            except receipts.KeyReused:
                raise field_error(
                    409,
                    "idempotency_key was already used for a different alarm",
                    "idempotency_key",
                    "already used with another body; use a new key for a new alarm",
                ) from None
        if reservation.confirmed:
            return AlarmReceipt.of(reservation.alarm), True
        alarm = reservation.alarm
        await self._send(alarm)
        async with self.connection(_NOT_CONFIRMED) as conn:
            await receipts.confirm(conn, alarm=alarm, actor=principal.id)
        return AlarmReceipt.of(alarm), False

    def _check_own_place(self, own: str, request: AlarmRequest) -> None:
        # The classify stage locates an alarm by place_id first, then by place_name, and only
        # then by enterprise_id (dispatch/locate.py), and the incident belongs to the
        # enterprise of the place found: naming another place would move a bound caller's
        # alarm out of its enterprise. In the zone an enterprise is a place of its own id.
        forbidden = "this principal raises alarms only at its own enterprise"
        if request.place_id is not None and request.place_id != own:
            raise field_error(403, forbidden, "place_id", f"must be {own!r} or omitted")
        if request.place_name is None:
            return
        place = self.zone.find_place_by_name(request.place_name) or self.zone.find_place_in_text(
            request.place_name
        )
        if place is not None and place.id != own:
            message = f"names {place.id!r}, a place outside {own!r}; describe a spot inside it"
            raise field_error(403, forbidden, "place_name", message)

    async def _send(self, alarm: RawAlarm) -> None:
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(self.topic, encode(alarm), key=key_of(alarm)),
                timeout=self.kafka_timeout_s,
            )
        except (KafkaError, TimeoutError) as exc:
            log.warning(
                "intake: Kafka did not acknowledge alarm %s: %r",
                alarm.alarm_id,
                exc,
                extra={"alarm_id": str(alarm.alarm_id)},
            )
            if alarm.idempotency_key is None:
                # No retry can reach a keyless reservation: drop it. Best effort: if
                # PostgreSQL is gone too, the row stays, unconfirmed, which is no receipt.
                with suppress(ApiError):
                    async with self.connection() as conn:
                        await receipts.discard(conn, alarm_id=alarm.alarm_id)
            raise ApiError(
                503,
                f"Kafka did not acknowledge the alarm within {self.kafka_timeout_s:g} s; it "
                "was not accepted and no receipt exists. Retry, with the same idempotency_key.",
            ) from None

    async def read_alarm(self, principal: Principal, alarm_id: uuid.UUID) -> AlarmRecord:
        """Return an alarm's receipt if principal may see it; 404 whether absent or hidden."""
        if principal.role not in _RECEIPT_READERS:
            raise ApiError(403, f"a {principal.role.value} principal may not read alarms")
        async with self.connection() as conn:
            stored = await receipts.fetch(conn, alarm_id=alarm_id)
        # The same answer for "no such alarm" and "not yours", so ids leak nothing.
        if stored is None or not (
            stored.principal_id == principal.id
            or can_read_incident(principal, enterprise_id=stored.alarm.enterprise_id, unit_ids=())
        ):
            raise ApiError(404, "no such alarm")
        return AlarmRecord(receipt=AlarmReceipt.of(stored.alarm), alarm=stored.alarm)


def build_app(
    settings: Settings,
    *,
    producer: RecoveringProducer,
    pool: asyncpg.Pool,
    zone: Zone | None = None,
    topic: str = ALARMS_RAW.name,
    kafka_timeout_s: float = 10.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Clock = time.monotonic,
    read: ReadSettings | None = None,
) -> FastAPI:
    """Build the intake API on a started producer (acks=all, idempotent) and a pool.

    The zone (the settings' zone file, or the shipped one) tells which places belong to
    which enterprise. read says where the board checks the sink's progress (default: the
    settings' sink group on the catalog's topics).
    """
    intake = Intake(
        producer=producer,
        pool=pool,
        zone=zone or load_zone(settings.zone_file or default_zone_path()),
        topic=topic,
        kafka_timeout_s=kafka_timeout_s,
        limiter=RateLimiter(settings.rate_limit_per_minute, clock=clock),
        failures=RateLimiter(settings.rate_limit_per_minute, clock=clock),
        now=now,
    )
    app = FastAPI(
        title="alarm-dispatch intake",
        version="1",
        description="Raise alarms and read their receipts (docs/intake.md); read the record: "
        "the board, incidents, alarms, units (docs/api.md).",
        redoc_url=None,
        # Served by install_docs from the swagger-ui-bundle package, not from a CDN.
        docs_url=None,
    )
    install_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.intake_max_body_bytes)
    # Outermost, so that every answer (a 413 too) tells the pages' browsers they may read it.
    install_cors(app, settings)
    install_error_handlers(app)
    # Counts every 4xx/5xx, by status, for /metrics (the 413 of BodyLimit and 401s included).
    app.add_middleware(metrics.CountRefusals)
    bearer = HTTPBearer(
        auto_error=False, description="A token from `dispatch token create` (`dsp_…`)."
    )

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise unauthorised()
        return await intake.caller(request, credentials)

    @app.post(
        "/v1/alarms",
        status_code=202,
        responses=documented(400, 401, 403, 409, 413, 422, 429, 503),
    )
    async def raise_alarm(
        body: AlarmRequest,
        principal: Annotated[Principal, Depends(caller)],
        response: Response,
    ) -> AlarmReceipt:
        """Raise an alarm; 202 with its receipt once Kafka has acknowledged it."""
        receipt, replayed = await intake.raise_alarm(principal, body)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        else:
            metrics.ALARMS_IN.labels(source_kind=source_kind_of(principal, body).value).inc()
        return receipt

    @app.get("/v1/alarms/{alarm_id}", responses=documented(401, 403, 404, 422, 429, 503))
    async def read_alarm(
        alarm_id: uuid.UUID, principal: Annotated[Principal, Depends(caller)]
    ) -> AlarmRecord:
        """Return an alarm's receipt and the alarm as received, if the caller may see it."""
        return await intake.read_alarm(principal, alarm_id)

    install_read_api(
        app,
        caller=caller,
        connection=intake.connection,
        zone=intake.zone,
        now=now,
        bootstrap=settings.bootstrap_servers,
        read=read or ReadSettings(sink_group=settings.sink_group),
    )
    install_reports_api(app, caller=caller, connection=intake.connection, zone=intake.zone, now=now)
    install_placing(
        app,
        caller=caller,
        connection=intake.connection,
        zone=intake.zone,
        producer=producer,
        topic=topic,
        kafka_timeout_s=kafka_timeout_s,
    )

    # The process's metrics (docs/operations.md); no token, like the probes: counts only.
    app.add_api_route(
        "/metrics", metrics.metrics_endpoint, methods=["GET"], include_in_schema=False
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Tell that the process serves requests (liveness only; needs no token)."""
        return alive()

    @app.get("/readyz", responses={503: {"description": "Kafka or PostgreSQL is not ready."}})
    async def readyz() -> JSONResponse:
        """Tell whether Kafka and PostgreSQL answer now; 503 naming what does not."""
        readiness = await check_ready(producer=producer, pool=pool)
        return JSONResponse(readiness.body(), readiness.status_code)

    return app
