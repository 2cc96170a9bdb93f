"""The intake API: desks, guards, sensors and the hotline raise alarms over HTTP.

`build_app` wires the FastAPI app to a started Kafka producer and an asyncpg pool; the
entry point (`__main__`) builds both from settings. docs/intake.md describes the API.
"""

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Annotated, Any, Self, cast

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

from consumers.auth import (
    AuthenticationFailed,
    Principal,
    Role,
    authenticate,
    can_raise_alarm,
    can_read_incident,
)
from consumers.intake import receipts
from consumers.intake.docs import install_docs
from consumers.intake.limits import BodyLimit, Clock, RateLimiter
from consumers.kafka_producer import RecoveringProducer
from consumers.readiness import alive, check_ready
from dispatch.events import (
    ALARMS_RAW,
    IdempotencyKey,
    Identifier,
    Name,
    Phone,
    Position,
    RawAlarm,
    SensorKind,
    SourceKind,
    Text,
    UtcTimestamp,
    encode,
    key_of,
)
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
# At most this many field errors, each field name cut to this length, go back to a client.
_MAX_FIELD_ERRORS = 50
_MAX_FIELD_CHARS = 200
_NOTHING_ACCEPTED = "the receipt store (PostgreSQL) is unavailable; nothing was accepted"
_NOT_CONFIRMED = (
    "Kafka has the alarm but its receipt could not be recorded (PostgreSQL is unavailable); "
    "retry with the same idempotency_key to get the receipt"
)
# Roles that may look at alarm receipts at all; which receipts is decided per alarm.
_RECEIPT_READERS = frozenset({Role.DESK, Role.GUARD, Role.SENSOR, Role.COMMANDER})


def _printable(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot hold a lone surrogate
    # (Python's JSON parser lets "\ud800" through): refuse both here, naming the field.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "Text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "invalid_unicode", "Text must be valid Unicode (no lone surrogates)"
        ) from None
    return value


class ApiModel(BaseModel):
    """Base of the API's own request and response bodies: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AlarmRequest(ApiModel):
    """An alarm as a client raises it; intake adds the id, the time and the source."""

    text: Annotated[Text, AfterValidator(_printable)] = Field(
        description="What was reported, Chinese or English (1-2000 characters)."
    )
    enterprise_id: Identifier | None = Field(
        default=None,
        description="The enterprise it happened at; defaults to the caller's own. "
        "A caller bound to an enterprise may name only that one.",
    )
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Your key for this alarm (printable ASCII, no spaces, up to 128): "
        "a retry with the same key and body returns the same receipt.",
    )
    sensor_kind: SensorKind | None = None
    position: Position | None = None
    place_id: Identifier | None = Field(default=None, description="A place of the zone file.")
    place_name: Annotated[Name, AfterValidator(_printable)] | None = None
    reporter_name: Annotated[Name, AfterValidator(_printable)] | None = None
    reporter_phone: Phone | None = None


class AlarmReceipt(ApiModel):
    """The first-time acceptance receipt: the alarm is on Kafka and will not be lost."""

    alarm_id: uuid.UUID
    received_at: UtcTimestamp
    idempotency_key: IdempotencyKey | None = None

    @classmethod
    def of(cls, alarm: RawAlarm) -> Self:
        """Return the receipt of an alarm."""
        return cls(
            alarm_id=alarm.alarm_id,
            received_at=alarm.received_at,
            idempotency_key=alarm.idempotency_key,
        )


class AlarmRecord(ApiModel):
    """A receipt together with the alarm exactly as it was written to `alarms.raw`."""

    receipt: AlarmReceipt
    alarm: RawAlarm


class FieldProblem(ApiModel):
    """One field at fault: a dotted path such as `position.lat`, or `$` for the whole body."""

    field: str
    message: str


class ErrorBody(ApiModel):
    """Every error answer: what went wrong, and the fields at fault when there are any."""

    error: str
    fields: list[FieldProblem] = Field(default_factory=list)


class ApiError(Exception):
    """Raise to answer a request with an error status and an ErrorBody."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        fields: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = ErrorBody(error=error, fields=list(fields))
        self.headers = dict(headers or {})


def _error(status: int, error: str, field: str, message: str) -> ApiError:
    return ApiError(status, error, fields=[FieldProblem(field=field, message=message)])


def _too_many(wait_s: float) -> ApiError:
    return ApiError(
        429,
        "too many requests; retry after the time in Retry-After",
        headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
    )


def _unauthorised() -> ApiError:
    # The same answer for every reason (unknown, revoked, expired, disabled): see docs/auth.md.
    return ApiError(401, "unauthorised", headers={"WWW-Authenticate": "Bearer"})


_ERROR_MEANINGS = {
    400: "The body is empty or not JSON.",
    401: "No token, or not an active one.",
    403: "The caller's role or enterprise does not allow this.",
    404: "No such alarm, or not one the caller may see (the same answer for both).",
    409: "The idempotency_key was already used with a different body.",
    413: "The body is larger than the limit.",
    422: "A field is invalid; `fields` names each.",
    429: "Past the caller's rate limit; see Retry-After.",
    503: "Kafka or PostgreSQL is unavailable; no receipt was given.",
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": _ERROR_MEANINGS[s]} for s in statuses}


def source_kind_of(principal: Principal, request: AlarmRequest) -> SourceKind:
    """Return the source kind an alarm from principal gets.

    The hotline system is a sensor principal bound to no enterprise (docs/auth.md); an
    unbound sensor that names its sensor_kind is a machine, not the hotline.
    """
    if principal.role is Role.SENSOR:
        if principal.enterprise_id is None and request.sensor_kind is None:
            return SourceKind.HOTLINE
        return SourceKind.SENSOR
    return {
        Role.DESK: SourceKind.DESK,
        Role.GUARD: SourceKind.GUARD,
        Role.COMMANDER: SourceKind.COMMANDER,
    }[principal.role]


def raw_alarm_of(
    principal: Principal, request: AlarmRequest, *, enterprise_id: str | None, now: datetime
) -> RawAlarm:
    """Return the alarm to write for a request: a new id, the time, the source, the enterprise."""
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=now,
        source_kind=source_kind_of(principal, request),
        source_id=principal.id,
        enterprise_id=enterprise_id,
        **request.model_dump(exclude={"enterprise_id"}),
    )


def request_hash(request: AlarmRequest, enterprise_id: str | None) -> bytes:
    """Return the SHA-256 of what the request asks for, key aside, enterprise resolved."""
    fields = request.model_dump(mode="json", exclude={"idempotency_key"})
    fields["enterprise_id"] = enterprise_id
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).digest()


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
                raise _too_many(wait) from None
            log.warning("intake: authentication failed (%s) from %s", exc.reason, address)
            raise _unauthorised() from None
        wait = self.limiter.acquire(principal.id)
        if wait > 0:
            raise _too_many(wait)
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
                raise _error(
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
                raise _error(
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
            raise _error(403, forbidden, "place_id", f"must be {own!r} or omitted")
        if request.place_name is None:
            return
        place = self.zone.find_place_by_name(request.place_name) or self.zone.find_place_in_text(
            request.place_name
        )
        if place is not None and place.id != own:
            message = f"names {place.id!r}, a place outside {own!r}; describe a spot inside it"
            raise _error(403, forbidden, "place_name", message)

    async def _send(self, alarm: RawAlarm) -> None:
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(self.topic, encode(alarm), key=key_of(alarm)),
                timeout=self.kafka_timeout_s,
            )
        except (KafkaError, TimeoutError) as exc:
            log.warning("intake: Kafka did not acknowledge alarm %s: %r", alarm.alarm_id, exc)
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


def _field_of(loc: Sequence[int | str]) -> str:
    # FastAPI prefixes where the value came from; the client knows its body by field names.
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "path", "query", "header"}:
        parts = parts[1:]
    return (".".join(parts) or "$")[:_MAX_FIELD_CHARS]


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    if any(error["type"] == "json_invalid" for error in errors):
        detail = next(e for e in errors if e["type"] == "json_invalid").get("ctx", {})
        return _error(400, "the body is not valid JSON", "$", str(detail.get("error", "")))
    # FastAPI reports an empty body as the body missing, and a bare `null` as a body of None.
    if any(tuple(e["loc"]) == ("body",) and e.get("input") is None for e in errors):
        return _error(400, "the body is empty", "$", "send the alarm as a JSON object")
    problems = [
        FieldProblem(field=_field_of(error["loc"]), message=str(error["msg"]))
        for error in errors[:_MAX_FIELD_ERRORS]
    ]
    names = ", ".join(problem.field for problem in problems[:3])
    return ApiError(422, f"invalid request: {names}", fields=problems)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body.model_dump(), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await on_api_error(request, _validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = ErrorBody(error=str(exc.detail))
        return JSONResponse(body.model_dump(), exc.status_code, headers=exc.headers)


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
) -> FastAPI:
    """Build the intake API on a started producer (acks=all, idempotent) and a pool.

    The zone (the settings' zone file, or the shipped one) tells which places belong to
    which enterprise.
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
        description="Raise alarms and read their receipts. See docs/intake.md.",
        redoc_url=None,
        # Served by install_docs from the swagger-ui-bundle package, not from a CDN.
        docs_url=None,
    )
    install_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.intake_max_body_bytes)
    _install_error_handlers(app)
    bearer = HTTPBearer(
        auto_error=False, description="A token from `dispatch token create` (`dsp_…`)."
    )

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorised()
        return await intake.caller(request, credentials)

    @app.post(
        "/v1/alarms",
        status_code=202,
        responses=_responses(400, 401, 403, 409, 413, 422, 429, 503),
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
        return receipt

    @app.get("/v1/alarms/{alarm_id}", responses=_responses(401, 403, 404, 422, 429, 503))
    async def read_alarm(
        alarm_id: uuid.UUID, principal: Annotated[Principal, Depends(caller)]
    ) -> AlarmRecord:
        """Return an alarm's receipt and the alarm as received, if the caller may see it."""
        return await intake.read_alarm(principal, alarm_id)

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
