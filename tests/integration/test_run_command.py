"""`dispatch run` (what `make run` runs) and the topic declarations it makes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from dispatch.events import (
    TOPICS,
    IncidentState,
    IncidentStateChange,
    RawAlarm,
    SourceKind,
    decode,
    encode,
    key_of,
)
from dispatch.settings import Settings
from infra.topics import declare_catalog_topics
from tests.integration.test_infra_cli import cli_env, processes_mentioning


async def describe(bootstrap: str, names: list[str]) -> tuple[dict[str, int], dict[str, Any]]:
    """Return partition counts and the topic configs of the named topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = await admin.describe_topics(names)
        partitions = {t["topic"]: len(t["partitions"]) for t in topics}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        responses = await admin.describe_configs(resources)
        configs: dict[str, Any] = {}
        for response in responses:
            for _code, _msg, _type, name, entries in response.resources:
                configs[name] = {entry[0]: entry[1] for entry in entries}
        return partitions, configs
    finally:
        await admin.close()


async def raise_and_watch(bootstrap: str) -> IncidentStateChange:
    """Raise one alarm on alarms.raw and return the first escalation on incidents.state."""
    alarm = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        source_kind=SourceKind.DESK,
        source_id="desk-smoke",
        enterprise_id="ent-hengtong",
        text="有人翻墙进入厂区",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("alarms.raw", encode(alarm), key=key_of(alarm))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "incidents.state",
        bootstrap_servers=bootstrap,
        group_id=f"smoke-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async for record in consumer:
            change = decode(IncidentStateChange, record.value or b"")
            if change.state is IncidentState.ESCALATED:
                return change
    finally:
        await consumer.stop()
    raise AssertionError("incidents.state ended")


async def test_catalog_topics_are_declared_with_their_configs(running_stack: Settings) -> None:
    await declare_catalog_topics(running_stack)
    # A second declaration finds everything present and changes nothing.
    assert await declare_catalog_topics(running_stack) == []
    partitions, configs = await describe(running_stack.bootstrap_servers, list(TOPICS))
    assert partitions == dict.fromkeys(TOPICS, running_stack.kafka_partitions)
    assert configs["units.status"]["cleanup.policy"] == "compact"
    assert configs["alarms.raw"]["retention.ms"] == str(30 * 24 * 3600 * 1000)
    assert configs["alarms.dlq"]["max.message.bytes"] == str(2 * 1024 * 1024)


def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = cli_env(state)
    with subprocess.Popen(
        [sys.executable, "-m", "cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("system running"):
                break
        output = "".join(lines)
        assert "system running" in output, output
        assert "topics created: " in output
        bootstrap = f"127.0.0.1:{env['DISPATCH_KAFKA_PORT']}"
        partitions, _ = asyncio.run(describe(bootstrap, list(TOPICS)))
        assert set(partitions) == set(TOPICS)
        # The system really works: an alarm with no unit on duty reaches the commander.
        change = asyncio.run(raise_and_watch(bootstrap))
        assert change.state is IncidentState.ESCALATED
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "stopped: postgres, kafka" in rest
    assert "stream worker stopped" in rest
    assert processes_mentioning(str(state.resolve())) == []
