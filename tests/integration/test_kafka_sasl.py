"""Kafka with SASL: a broker of the test's own that authenticates its clients (SASL/PLAIN), and
a stream worker started as a deployment starts it, with `DISPATCH_KAFKA_SECURITY_PROTOCOL`
and the SASL settings in its environment: it declares its topics, reads an alarm and writes
its output through the authenticated listener. A wrong password is refused by the broker.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from consumers.kafka_client import kafka_options, security_options, use_security
from dispatch.events import ALARMS_LOCATED, ALARMS_RAW, RawAlarm, SourceKind, encode, key_of
from dispatch.settings import Settings
from infra.kafka import KafkaBroker
from infra.processes import free_port
from infra.stack import private_settings
from infra.topics import declare_catalog_topics

USER, PASSWORD = "dispatch", "dispatch-secret"
WAIT_S = 120.0  # a hang guard, not a performance bound


class SaslBroker(KafkaBroker):
    """The project's local broker with a second listener that takes SASL/PLAIN logins."""

    def __init__(self, settings: Settings, sasl_port: int) -> None:
        super().__init__(settings)
        self.sasl_port = sasl_port

    def write_config(self) -> None:
        super().write_config()
        host, s = self.settings.kafka_host, self.settings
        lines = dict(
            line.split("=", 1) for line in self.config_path.read_text().splitlines() if line
        )
        lines["listeners"] = (
            f"PLAINTEXT://{host}:{s.kafka_port},SASL_PLAINTEXT://{host}:{self.sasl_port},"
            f"CONTROLLER://{host}:{s.kafka_controller_port}"
        )
        lines["advertised.listeners"] = (
            f"PLAINTEXT://{host}:{s.kafka_port},SASL_PLAINTEXT://{host}:{self.sasl_port}"
        )
        lines["listener.security.protocol.map"] = (
            "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        lines["sasl.enabled.mechanisms"] = "PLAIN"
        lines["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{USER}" password="{PASSWORD}" user_{USER}="{PASSWORD}";'
        )
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))


@dataclass
class Secured:
    """The SASL broker and settings that reach it through its SASL listener."""

    broker: SaslBroker
    settings: Settings


def _quiet(_line: str) -> None:
    """Swallow the launcher's progress lines."""


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    """Start a broker with a SASL listener; yield settings that use it; stop it afterwards."""
    settings = private_settings(tmp_path / "state")
    broker = SaslBroker(settings, free_port())
    broker.up(_quiet)
    try:
        yield Secured(
            broker,
            settings.model_copy(
                update={
                    "kafka_bootstrap": f"{settings.kafka_host}:{broker.sasl_port}",
                    "kafka_security_protocol": "SASL_PLAINTEXT",
                    "kafka_sasl_mechanism": "PLAIN",
                    "kafka_sasl_username": USER,
                    "kafka_sasl_password": SecretStr(PASSWORD),
                }
            ),
        )
    finally:
        broker.down(_quiet)


@pytest.fixture
async def process_security(secured: Secured) -> AsyncIterator[None]:
    """Make this test process's Kafka clients use SASL; back to PLAINTEXT afterwards."""
    use_security(secured.settings)
    try:
        yield
    finally:
        use_security(Settings())


def worker_env(settings: Settings) -> dict[str, str]:
    """Return the environment a deployment gives a stream worker for the SASL cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    password = settings.kafka_sasl_password
    assert password is not None
    return env | {
        "DISPATCH_STATE_DIR": str(settings.state_dir),
        "DISPATCH_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "DISPATCH_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
        "DISPATCH_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "DISPATCH_KAFKA_SASL_USERNAME": settings.kafka_sasl_username or "",
        "DISPATCH_KAFKA_SASL_PASSWORD": password.get_secret_value(),
        "DISPATCH_STREAM_PROBE_PORT": "0",
    }


async def first_record(bootstrap: str, topic: str) -> bytes:
    """Read the first record of a topic through the SASL listener."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **kafka_options(),
    )
    await consumer.start()
    try:
        record = await consumer.getone()
        return record.value or b""
    finally:
        await consumer.stop()


async def test_a_stream_worker_runs_on_a_cluster_that_wants_sasl(
    secured: Secured, process_security: None
) -> None:
    settings = secured.settings
    assert set(security_options(settings)) >= {"security_protocol", "sasl_plain_password"}
    # The catalog's topics, declared through the SASL listener (the worker does so too).
    await declare_catalog_topics(settings)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "--stage", "classify", "--instance", "1",
        env=worker_env(settings),
    )  # fmt: skip
    try:
        alarm = RawAlarm(
            alarm_id=uuid.uuid4(),
            received_at=datetime.now(UTC),
            source_kind=SourceKind.DESK,
            source_id="desk-sasl",
            text="厂区仓库着火了",
            place_id="ent-hengtong",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers, acks="all", **kafka_options()
        )
        await producer.start()
        try:
            await producer.send_and_wait(ALARMS_RAW.name, encode(alarm), key=key_of(alarm))
        finally:
            await producer.stop()
        located = await asyncio.wait_for(
            first_record(settings.bootstrap_servers, ALARMS_LOCATED.name), WAIT_S
        )
        assert str(alarm.alarm_id).encode() in located
    finally:
        worker.terminate()
        assert await asyncio.wait_for(worker.wait(), 60) == 0


async def test_a_wrong_password_is_refused(secured: Secured) -> None:
    wrong = secured.settings.model_copy(update={"kafka_sasl_password": SecretStr("not-it")})
    producer = AIOKafkaProducer(
        bootstrap_servers=wrong.bootstrap_servers, **security_options(wrong)
    )
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


def test_sasl_without_credentials_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="DISPATCH_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_SSL")
