"""The intake API over real HTTP, on the session's real Kafka and PostgreSQL.

One server per module writes to a fresh topic and keeps its tables in a fresh schema; every
test makes principals of its own, so tests share the server without seeing each other.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from consumers.auth import Role, history
from consumers.intake import build_app
from consumers.kafka_producer import RecoveringProducer
from dispatch.events import RawAlarm, decode
from dispatch.settings import Settings
from infra.kafka import KafkaBroker
from infra.processes import free_port
from infra.stack import private_settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import (
    Caller,
    connection,
    disabled_caller,
    enterprise,
    revoked_caller,
)

# Re-exported (`as`): test_intake_fuzz imports them from here.
from tests.integration.principals import fresh_store as fresh_store
from tests.integration.principals import make_caller as make_caller

WAIT_S = 60.0  # a hang guard, not a performance bound
PARTITIONS = 2
ALARM = {
    "text": "仓库门口有人打架 / two men fighting at the warehouse gate",
    "position": {"lat": 31.7012, "lon": 113.4021, "accuracy_m": 15.0},
    "place_name": "Chengdong Pharma, gate 2",
    "reporter_name": "Wang Li",
    "reporter_phone": "+86 722 333 1234",
}


# -- the running service ---------------------------------------------------------------------


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve app with uvicorn in this event loop; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        # The lifespan runs as in the service: it stops the board's Kafka clients (read API).
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + WAIT_S
    # uvicorn offers no event for "listening", only this flag.
    while not server.started:
        if task.done():
            task.result()  # raises what stopped the start
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def started_producer(
    bootstrap: str, request_timeout_ms: int = 10_000
) -> AsyncIterator[RecoveringProducer]:
    """Yield a started producer as intake's: acks=all, idempotent, replaced when broken."""
    producer = RecoveringProducer(bootstrap, request_timeout_ms=request_timeout_ms)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def alarms_on(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes, RawAlarm]]:
    """Return every (key, alarm) on topic, read from the beginning to the current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        found: list[tuple[bytes, RawAlarm]] = []
        deadline = time.monotonic() + WAIT_S
        for tp in tps:
            while await consumer.position(tp) < end[tp]:
                assert time.monotonic() < deadline, f"could not read {topic} to its end"
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found += [(r.key, decode(RawAlarm, r.value)) for r in batch.get(tp, [])]
        return found
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Service:
    """The module's running intake API and what it writes to."""

    url: str
    pool: asyncpg.Pool
    bootstrap: str
    topic: str

    async def alarms_from(self, source_id: str) -> list[RawAlarm]:
        """Return the alarms on the topic whose key is source_id."""
        records = await alarms_on(self.bootstrap, self.topic, PARTITIONS)
        return [alarm for key, alarm in records if key == source_id.encode()]


@pytest.fixture(scope="module")
async def service(bootstrap: str, postgres_url: str) -> AsyncIterator[Service]:
    """Run one intake API for the module on a fresh topic and schema."""
    topic = f"t.alarms.raw.{uuid.uuid4().hex[:12]}"
    await ensure_topics(bootstrap, [TopicDecl(topic, PARTITIONS)])
    settings = Settings(rate_limit_per_minute=10_000)
    async with (
        fresh_store(postgres_url) as pool,
        started_producer(bootstrap) as producer,
        serving(build_app(settings, producer=producer, pool=pool, topic=topic)) as url,
    ):
        yield Service(url, pool, bootstrap, topic)


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client of the module's service."""
    async with httpx.AsyncClient(base_url=service.url, timeout=WAIT_S) as client:
        yield client


# -- principals ------------------------------------------------------------------------------


async def desk(service: Service) -> tuple[Caller, str]:
    """Return a new desk and its enterprise."""
    ent = enterprise()
    return await make_caller(service.pool, Role.DESK, enterprise_id=ent), ent


def fields_of(response: httpx.Response) -> list[str]:
    """Return the names of the fields an error answer blames."""
    return [problem["field"] for problem in response.json()["fields"]]


# -- the receipt -----------------------------------------------------------------------------


async def test_healthz_needs_no_token_and_tells_nothing(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_the_service_serves_its_openapi_document(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    assert set(document["paths"]) >= {"/v1/alarms", "/v1/alarms/{alarm_id}", "/healthz"}
    raise_op = document["paths"]["/v1/alarms"]["post"]
    assert {"202", "401", "403", "409", "413", "422", "429", "503"} <= set(raise_op["responses"])
    assert raise_op["security"] == [{"HTTPBearer": []}]
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


async def test_a_receipt_is_given_once_kafka_has_the_alarm(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, ent = await desk(service)
    response = await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
    assert response.status_code == 202, response.text
    receipt = response.json()
    alarm_id = uuid.UUID(receipt["alarm_id"])
    assert receipt["received_at"].endswith("Z")
    assert receipt["idempotency_key"] is None
    assert "Idempotent-Replayed" not in response.headers

    [alarm] = await service.alarms_from(caller.id)
    assert alarm.alarm_id == alarm_id
    assert alarm.received_at == datetime.fromisoformat(receipt["received_at"])
    assert (alarm.source_kind, alarm.source_id, alarm.enterprise_id) == ("desk", caller.id, ent)
    assert alarm.text == ALARM["text"]
    assert alarm.position is not None
    assert alarm.position.lat == pytest.approx(31.7012)

    async with connection(service.pool) as conn:
        [entry] = await history(conn, subject=f"alarm:{alarm_id}")
    assert (entry.actor, entry.action) == (caller.id, "alarm.raise")
    assert entry.detail["enterprise_id"] == ent


async def test_a_retry_with_the_same_key_returns_the_same_receipt(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, _ = await desk(service)
    body = ALARM | {"idempotency_key": "desk:20261126-0001"}
    first = await http.post("/v1/alarms", json=body, headers=caller.headers)
    again = await http.post("/v1/alarms", json=body, headers=caller.headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"

    [alarm] = await service.alarms_from(caller.id)
    assert str(alarm.alarm_id) == first.json()["alarm_id"]
    assert alarm.idempotency_key == "desk:20261126-0001"
    async with connection(service.pool) as conn:
        entries = await history(conn, subject=f"alarm:{alarm.alarm_id}")
    assert len(entries) == 1


async def test_naming_the_own_enterprise_is_the_same_request_as_omitting_it(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, ent = await desk(service)
    body = ALARM | {"idempotency_key": "k-1"}
    first = await http.post("/v1/alarms", json=body, headers=caller.headers)
    named = await http.post(
        "/v1/alarms", json=body | {"enterprise_id": ent}, headers=caller.headers
    )
    assert named.status_code == 202
    assert named.json() == first.json()


async def test_concurrent_retries_of_one_key_stand_for_one_alarm(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, _ = await desk(service)
    body = ALARM | {"idempotency_key": "burst-1"}
    responses = await asyncio.gather(
        *(http.post("/v1/alarms", json=body, headers=caller.headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["alarm_id"] for r in responses}) == 1
    # Requests that raced before the first acknowledgement re-sent the same alarm, so every
    # record carries the one alarm_id and the pipeline's dedupe makes them one alarm.
    alarms = await service.alarms_from(caller.id)
    assert {str(a.alarm_id) for a in alarms} == {responses[0].json()["alarm_id"]}
    async with connection(service.pool) as conn:
        entries = await history(conn, subject=f"alarm:{alarms[0].alarm_id}")
    assert len(entries) == 1


async def test_a_key_reused_for_another_alarm_is_409(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, _ = await desk(service)
    first = await http.post(
        "/v1/alarms", json=ALARM | {"idempotency_key": "k"}, headers=caller.headers
    )
    assert first.status_code == 202
    other = ALARM | {"idempotency_key": "k", "text": "a different alarm"}
    reused = await http.post("/v1/alarms", json=other, headers=caller.headers)
    assert reused.status_code == 409
    assert fields_of(reused) == ["idempotency_key"]
    assert len(await service.alarms_from(caller.id)) == 1


async def test_keys_belong_to_one_principal(service: Service, http: httpx.AsyncClient) -> None:
    (one, _), (two, _) = await desk(service), await desk(service)
    body = ALARM | {"idempotency_key": "shared-key"}
    first = await http.post("/v1/alarms", json=body, headers=one.headers)
    second = await http.post("/v1/alarms", json=body, headers=two.headers)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["alarm_id"] != second.json()["alarm_id"]


@pytest.mark.parametrize(
    ("role", "bound", "body", "kind", "at"),
    [
        (Role.DESK, True, {}, "desk", "own"),
        (Role.GUARD, True, {}, "guard", "own"),
        (Role.GUARD, False, {"enterprise_id": "ent-named"}, "guard", "ent-named"),
        (Role.SENSOR, True, {"sensor_kind": "camera_a"}, "sensor", "own"),
        (Role.SENSOR, False, {}, "hotline", None),
        (Role.SENSOR, False, {"sensor_kind": "anti_climb"}, "sensor", None),
        (Role.COMMANDER, False, {"enterprise_id": "ent-named"}, "commander", "ent-named"),
        (Role.COMMANDER, False, {}, "commander", None),
    ],
)
async def test_the_source_comes_from_the_principal(
    service: Service,
    http: httpx.AsyncClient,
    role: Role,
    bound: bool,
    body: dict[str, str],
    kind: str,
    at: str | None,
) -> None:
    ent = enterprise()
    unit = f"unit-{uuid.uuid4().hex[:8]}" if role is Role.GUARD else None
    caller = await make_caller(
        service.pool, role, enterprise_id=ent if bound else None, unit_id=unit
    )
    raised = await http.post("/v1/alarms", json=ALARM | body, headers=caller.headers)
    assert raised.status_code == 202, raised.text
    # The raiser may read back its own receipt.
    read = await http.get(f"/v1/alarms/{raised.json()['alarm_id']}", headers=caller.headers)
    assert read.status_code == 200, read.text
    alarm = read.json()["alarm"]
    assert (alarm["source_kind"], alarm["source_id"]) == (kind, caller.id)
    assert alarm["enterprise_id"] == (ent if at == "own" else at)


# -- who may -------------------------------------------------------------------------------


async def test_a_missing_bad_revoked_or_disabled_token_is_401(
    service: Service, http: httpx.AsyncClient
) -> None:
    revoked = await revoked_caller(service.pool)
    disabled = await disabled_caller(service.pool)
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer dsp_not-a-token-at-all"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {revoked.secret}"},
        revoked.headers,
        disabled.headers,
    ]
    for headers in attempts:
        for response in (
            await http.post("/v1/alarms", json=ALARM, headers=headers),
            await http.get(f"/v1/alarms/{uuid.uuid4()}", headers=headers),
        ):
            assert response.status_code == 401, (headers, response.text)
            assert response.json() == {"error": "unauthorised", "fields": []}
            assert response.headers["WWW-Authenticate"] == "Bearer"
    async with connection(service.pool) as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM intake_receipts WHERE principal_id = ANY($1)",
            [revoked.id, disabled.id],
        )
    assert rows == 0


async def test_a_desk_raising_for_another_enterprise_is_403(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, _ = await desk(service)
    response = await http.post(
        "/v1/alarms", json=ALARM | {"enterprise_id": enterprise()}, headers=caller.headers
    )
    assert response.status_code == 403
    assert fields_of(response) == ["enterprise_id"]
    assert await service.alarms_from(caller.id) == []


@pytest.mark.parametrize("role", [Role.PATROL, Role.UNIT, Role.ADMIN])
async def test_roles_that_do_not_raise_alarms_are_403(
    service: Service, http: httpx.AsyncClient, role: Role
) -> None:
    caller = await make_caller(service.pool, role)
    response = await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
    assert response.status_code == 403
    assert f"a {role.value} principal may not raise alarms" in response.json()["error"]
    assert await service.alarms_from(caller.id) == []


async def test_a_receipt_is_read_by_its_enterprise_and_the_commander_only(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, ent = await desk(service)
    raised = await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
    path = f"/v1/alarms/{raised.json()['alarm_id']}"

    own = await http.get(path, headers=caller.headers)
    assert own.status_code == 200
    assert own.json()["receipt"] == raised.json()
    assert own.json()["alarm"]["enterprise_id"] == ent
    same_enterprise = await make_caller(service.pool, Role.DESK, enterprise_id=ent)
    assert (await http.get(path, headers=same_enterprise.headers)).status_code == 200
    commander = await make_caller(service.pool, Role.COMMANDER)
    assert (await http.get(path, headers=commander.headers)).status_code == 200

    # Another enterprise's desk, or a guard that did not raise it: the same 404 as for an
    # alarm that does not exist, so an id tells nothing.
    other, _ = await desk(service)
    guard = await make_caller(service.pool, Role.GUARD, unit_id="G7", enterprise_id=enterprise())
    missing = await http.get(f"/v1/alarms/{uuid.uuid4()}", headers=caller.headers)
    for response in (
        await http.get(path, headers=other.headers),
        await http.get(path, headers=guard.headers),
        missing,
    ):
        assert response.status_code == 404
        assert response.json() == missing.json() == {"error": "no such alarm", "fields": []}
    patrol = await make_caller(service.pool, Role.PATROL, unit_id="P7")
    assert (await http.get(path, headers=patrol.headers)).status_code == 403


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (ALARM | {"position": {"lat": 200, "lon": 113.4}}, "position.lat"),
        ({k: v for k, v in ALARM.items() if k != "text"}, "text"),
        (ALARM | {"text": ""}, "text"),
        (ALARM | {"text": "NUL \x00 inside"}, "text"),
        (ALARM | {"colour": "red"}, "colour"),
        (ALARM | {"alarm_id": str(uuid.uuid4())}, "alarm_id"),
        (ALARM | {"source_kind": "commander"}, "source_kind"),
        (ALARM | {"reporter_phone": "call me"}, "reporter_phone"),
        (ALARM | {"idempotency_key": "has space"}, "idempotency_key"),
        (ALARM | {"sensor_kind": "drone"}, "sensor_kind"),
        (ALARM | {"enterprise_id": "no spaces allowed"}, "enterprise_id"),
        ([ALARM], "$"),
    ],
)
async def test_invalid_fields_are_named(
    service: Service, http: httpx.AsyncClient, body: object, field: str
) -> None:
    caller, _ = await desk(service)
    response = await http.post("/v1/alarms", json=body, headers=caller.headers)
    assert response.status_code == 422, response.text
    assert field in fields_of(response)
    assert field in response.json()["error"]
    assert await service.alarms_from(caller.id) == []


async def test_malformed_json_and_a_bad_alarm_id_are_named(
    service: Service, http: httpx.AsyncClient
) -> None:
    caller, _ = await desk(service)
    headers = caller.headers | {"Content-Type": "application/json"}
    broken = await http.post("/v1/alarms", content=b'{"text": "fire', headers=headers)
    assert broken.status_code == 400
    assert fields_of(broken) == ["$"]
    bad_id = await http.get("/v1/alarms/not-a-uuid", headers=caller.headers)
    assert bad_id.status_code == 422
    assert fields_of(bad_id) == ["alarm_id"]


async def test_an_oversize_body_is_413(service: Service, http: httpx.AsyncClient) -> None:
    caller, _ = await desk(service)
    limit = Settings().intake_max_body_bytes
    big = json.dumps(ALARM | {"place_name": "x" * limit}).encode()
    declared = await http.post(
        "/v1/alarms", content=big, headers=caller.headers | {"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert fields_of(declared) == ["$"]

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    async with httpx.AsyncClient(base_url=service.url, timeout=WAIT_S) as fresh:
        streamed = await fresh.post(
            "/v1/alarms",
            content=chunks(),
            headers=caller.headers | {"Content-Type": "application/json"},
        )
    assert streamed.status_code == 413
    assert "content-length" not in streamed.request.headers
    assert await service.alarms_from(caller.id) == []


# -- rate limits -----------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_past_the_rate_limit_is_429_with_retry_after(
    service: Service, bootstrap: str
) -> None:
    clock = FakeClock()
    caller, _ = await desk(service)
    other, _ = await desk(service)
    settings = Settings(rate_limit_per_minute=3)
    async with (
        started_producer(bootstrap) as producer,
        serving(
            build_app(
                settings, producer=producer, pool=service.pool, topic=service.topic, clock=clock
            )
        ) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http,
    ):
        statuses = [
            (await http.post("/v1/alarms", json=ALARM, headers=caller.headers)).status_code,
            (await http.get(f"/v1/alarms/{uuid.uuid4()}", headers=caller.headers)).status_code,
            (await http.post("/v1/alarms", json=ALARM, headers=caller.headers)).status_code,
        ]
        assert statuses == [202, 404, 202]
        limited = await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "20"  # 3 a minute: one every 20 s
        assert "Retry-After" in limited.json()["error"]
        # Limits are per principal: another desk is not held back.
        assert (await http.post("/v1/alarms", json=ALARM, headers=other.headers)).status_code == 202
        clock.now += 20.0
        assert (
            await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
        ).status_code == 202

        # Failed authentications are limited per address; a good token still gets in.
        bad = {"Authorization": "Bearer dsp_wrong"}
        failures = [
            (await http.post("/v1/alarms", json=ALARM, headers=bad)).status_code for _ in range(4)
        ]
        assert failures == [401, 401, 401, 429]
        assert (await http.post("/v1/alarms", json=ALARM, headers=other.headers)).status_code == 202
    assert len(await service.alarms_from(caller.id)) == 3


# -- Kafka down ------------------------------------------------------------------------------


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """Return (unstarted) a Kafka broker of this test's own, which it may stop and restart."""
    broker = KafkaBroker(private_settings(tmp_path / "state", kafka_heap="256m"))
    yield broker
    broker.down(print)


async def test_kafka_down_is_503_without_a_receipt_and_a_retry_keeps_the_alarm_id(
    service: Service, private_broker: KafkaBroker
) -> None:
    # The launcher probes the broker with asyncio.run, so it runs off this event loop.
    await asyncio.to_thread(private_broker.up, print)
    bootstrap = private_broker.settings.local_kafka_bootstrap
    topic = f"t.alarms.raw.{uuid.uuid4().hex[:12]}"
    await ensure_topics(bootstrap, [TopicDecl(topic, 1)])
    caller, _ = await desk(service)
    commander = await make_caller(service.pool, Role.COMMANDER)
    async with (
        started_producer(bootstrap, request_timeout_ms=2000) as producer,
        serving(
            build_app(
                Settings(),
                producer=producer,
                pool=service.pool,
                topic=topic,
                kafka_timeout_s=2.0,
            )
        ) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http,
    ):
        before = await http.post(
            "/v1/alarms", json=ALARM | {"idempotency_key": "k0"}, headers=caller.headers
        )
        assert before.status_code == 202

        await asyncio.to_thread(private_broker.down, print)
        down = await http.post(
            "/v1/alarms", json=ALARM | {"idempotency_key": "k1"}, headers=caller.headers
        )
        keyless = await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
        for response in (down, keyless):
            assert response.status_code == 503
            assert "Kafka did not acknowledge" in response.json()["error"]
            assert "alarm_id" not in response.text
        async with connection(service.pool) as conn:
            rows = await conn.fetch(
                "SELECT idempotency_key, alarm_id, confirmed_at FROM intake_receipts "
                "WHERE principal_id = $1 ORDER BY idempotency_key",
                caller.id,
            )
            # k1 holds a reservation of its alarm_id, which is no receipt; the keyless
            # attempt left nothing.
            assert [(r["idempotency_key"], r["confirmed_at"] is None) for r in rows] == [
                ("k0", False),
                ("k1", True),
            ]
            reserved = rows[1]["alarm_id"]
            assert await history(conn, subject=f"alarm:{reserved}") == []
        hidden = await http.get(f"/v1/alarms/{reserved}", headers=commander.headers)
        assert hidden.status_code == 404

        # Kafka comes back: the client's retry with its key gets the alarm_id reserved for it.
        await asyncio.to_thread(private_broker.up, print)
        deadline = time.monotonic() + WAIT_S
        while True:
            retry = await http.post(
                "/v1/alarms", json=ALARM | {"idempotency_key": "k1"}, headers=caller.headers
            )
            if retry.status_code == 202 or time.monotonic() > deadline:
                break
            assert retry.status_code == 503, retry.text
        assert retry.status_code == 202, retry.text
        assert retry.json()["alarm_id"] == str(reserved)
        assert (
            await http.get(f"/v1/alarms/{reserved}", headers=commander.headers)
        ).status_code == 200

    records = await alarms_on(bootstrap, topic, 1)
    k1 = {alarm.alarm_id for _, alarm in records if alarm.idempotency_key == "k1"}
    # The attempt that timed out may have been delivered once Kafka was back, next to the
    # retry's copy: either way one alarm_id, which the pipeline deduplicates on.
    assert k1 == {reserved}
