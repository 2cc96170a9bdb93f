"""`dispatch run` (what `make run` runs) and the topic declarations it makes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from cli.run_command import STAGES, services
from dispatch.events import (
    TOPICS,
    IncidentState,
    IncidentStateChange,
    decode,
)
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from infra.errors import InfraError
from infra.topics import TopicDecl, declare_catalog_topics, ensure_topics
from tests.integration.test_infra_cli import cli_env, processes_mentioning, run_cli
from tests.unit.test_compose import COMMANDS, health_command, load_compose


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


def stage_env(env: dict[str, str], service: str) -> dict[str, str]:
    """Return env for a service's health check: a stream worker's probe port is its own."""
    if service not in STAGES:
        return env
    port = int(env["DISPATCH_STREAM_PROBE_PORT"]) + STAGES.index(service)
    return env | {"DISPATCH_STREAM_PROBE_PORT": str(port)}


def started_pid(output: str, service: str) -> int:
    """Return the pid of the last start of service that `dispatch run` printed."""
    found = re.findall(rf"^{service} started \(pid (\d+)\)$", output, flags=re.MULTILINE)
    assert found, output
    return int(found[-1])


async def raise_and_watch(
    bootstrap: str, intake: str, token: str, *, key: str = "smoke-1", text: str = "有人翻墙进入厂区"
) -> IncidentStateChange:
    """Raise one alarm through the intake API; return its escalation on incidents.state."""
    consumer = AIOKafkaConsumer(
        "incidents.state",
        bootstrap_servers=bootstrap,
        group_id=f"smoke-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with httpx.AsyncClient(base_url=intake) as client:
            reply = await client.post(
                "/v1/alarms",
                json={"text": text, "idempotency_key": key},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert reply.status_code == 202, reply.text
        alarm_id = reply.json()["alarm_id"]
        async for record in consumer:
            change = decode(IncidentStateChange, record.value or b"")
            mine = change.incident_id == provisional_incident_id(uuid.UUID(alarm_id))
            if mine and change.state is IncidentState.ESCALATED:
                return change
    finally:
        await consumer.stop()
    raise AssertionError("incidents.state ended")


def run_health_check(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a service's health check from docker-compose.yml with the given environment."""
    command = health_command(load_compose()["services"][service])
    return subprocess.run(
        [sys.executable, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def wait_until_serving(url: str) -> None:
    """Wait until the intake API answers its liveness probe."""
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)  # the service is still binding its port: nothing to await


async def test_catalog_topics_are_declared_with_their_configs(running_stack: Settings) -> None:
    await declare_catalog_topics(running_stack)
    # A second declaration finds everything present and changes nothing.
    assert await declare_catalog_topics(running_stack) == []
    partitions, configs = await describe(running_stack.bootstrap_servers, list(TOPICS))
    assert partitions == dict.fromkeys(TOPICS, running_stack.kafka_partitions)
    assert configs["units.status"]["cleanup.policy"] == "compact"
    assert configs["alarms.raw"]["retention.ms"] == str(30 * 24 * 3600 * 1000)
    assert configs["alarms.dlq"]["max.message.bytes"] == str(2 * 1024 * 1024)


async def test_a_topic_with_another_partition_count_is_refused(running_stack: Settings) -> None:
    name = f"t{uuid.uuid4().hex[:10]}.alarms.located"
    bootstrap = running_stack.bootstrap_servers
    assert await ensure_topics(bootstrap, [TopicDecl(name, 2)]) == [name]
    # The broker's metadata shows a new topic a moment after it is created; no event says so.
    for _ in range(600):
        if (await describe(bootstrap, [name]))[0].get(name) == 2:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"{name} never showed in the broker's metadata")
    assert await ensure_topics(bootstrap, [TopicDecl(name, 2)]) == []
    # Bundles go to the partition of their keys among the declared count: refuse to start.
    with pytest.raises(InfraError, match=rf"{name} has 2"):
        await ensure_topics(bootstrap, [TopicDecl(name, 4)])


def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = cli_env(state)
    with subprocess.Popen(
        # Bare: no simulator, so that no unit is on duty and the alarm below is escalated.
        [sys.executable, "-m", "cli", "run", "--no-simulator"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, like a command run in the foreground of a terminal.
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("system running"):
                break
        output = "".join(lines)
        assert "system running" in output, output
        # "Running" means ready: every service's own health check passes at that moment.
        for service in COMMANDS:
            check = run_health_check(service, stage_env(env, service))
            assert check.returncode == 0, f"{service} not ready at 'running': {check.stdout}"
        assert "topics created: " in output
        bootstrap = f"127.0.0.1:{env['DISPATCH_KAFKA_PORT']}"
        partitions, _ = asyncio.run(describe(bootstrap, list(TOPICS)))
        assert set(partitions) == set(TOPICS)
        # The system really works, through the README's path: a desk principal and token made
        # with the CLI, an alarm raised on the intake API, and (no unit on duty) the commander
        # told on incidents.state.
        add = run_cli(
            "principal",
            "add",
            "--id",
            "desk-smoke",
            "--role",
            "desk",
            "--enterprise",
            "ent-hengtong",
            "--name",
            "smoke desk",
            env=env,
        )
        assert add.returncode == 0, add.stderr
        made = run_cli("token", "create", "--principal", "desk-smoke", env=env)
        assert made.returncode == 0, made.stderr
        token = next(w for w in made.stdout.split() if w.startswith("dsp_"))
        intake = f"http://127.0.0.1:{env['DISPATCH_INTAKE_PORT']}"
        asyncio.run(asyncio.wait_for(wait_until_serving(f"{intake}/healthz"), 120))
        change = asyncio.run(asyncio.wait_for(raise_and_watch(bootstrap, intake, token), 120))
        assert change.state is IncidentState.ESCALATED
        # The health checks of docker-compose.yml pass against these same services (the stream
        # workers are ready by now: they just routed the alarm).
        for service in COMMANDS:
            check = run_health_check(service, stage_env(env, service))
            assert check.returncode == 0, f"{service}: {check.stdout} {check.stderr}"
        # A worker killed outright is started again, takes its partitions back, and routes.
        route_pid = started_pid(output, "route worker")
        os.kill(route_pid, signal.SIGKILL)
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("route worker started"):
                break
        assert started_pid("".join(lines), "route worker") != route_pid
        # Another kind of alarm, so that it opens an incident of its own rather than merging.
        watch = raise_and_watch(bootstrap, intake, token, key="smoke-2", text="厂区门口有人打架")
        change = asyncio.run(asyncio.wait_for(watch, 120))
        assert change.state is IncidentState.ESCALATED
        # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "stopped: postgres, kafka" in rest
    # Every service shut down cleanly on its one SIGTERM, none was killed by a signal.
    for spec in services(Settings()):
        assert f"{spec.name} stopped (exit 0)" in rest, rest
    assert processes_mentioning(str(state.resolve())) == []
    # The intake and push health checks fail once their services are gone.
    for service in ("intake", "push"):
        assert run_health_check(service, env).returncode != 0


async def first_accepted(bootstrap: str) -> IncidentStateChange:
    """Return the first incident change on incidents.state that a unit's acceptance made."""
    consumer = AIOKafkaConsumer(
        "incidents.state",
        bootstrap_servers=bootstrap,
        group_id=f"living-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async for record in consumer:
            change = decode(IncidentStateChange, record.value or b"")
            if change.state is IncidentState.ACCEPTED:
                return change
    finally:
        await consumer.stop()
    raise AssertionError("incidents.state ended")


async def until_found(url: str, token: str) -> None:
    """Wait until the read API answers 200 for url (404 while the sink has not written it)."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            reply = await client.get(url)
            if reply.status_code != 404:
                break
            await asyncio.sleep(0.2)  # the sink's next batch: the API offers nothing to await
        assert reply.status_code == 200, reply.text


def read_until(lines: list[str], stream: Iterable[str], prefix: str) -> str:
    """Read the command's output into lines until a line starting with prefix; return it."""
    for line in stream:
        lines.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting {prefix!r}:\n{''.join(lines)}")


def test_run_shows_a_living_zone_and_a_second_start_resumes(tmp_path: Path) -> None:
    # Issue 13: started as a new user starts it, the system comes with the simulator, and the
    # board has incidents dispatched and accepted within seconds.
    env = cli_env(tmp_path / "state")
    bootstrap = f"127.0.0.1:{env['DISPATCH_KAFKA_PORT']}"
    intake = f"http://127.0.0.1:{env['DISPATCH_INTAKE_PORT']}"
    with subprocess.Popen(
        [sys.executable, "-m", "cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        read_until(lines, proc.stdout, "system running")
        board = read_until(lines, proc.stdout, "  commander board")
        token = board.split("#token=", 1)[1].strip()
        read_until(lines, proc.stdout, "simulator started")
        accepted = asyncio.run(asyncio.wait_for(first_accepted(bootstrap), 180))
        # The record has it too (the sink writes within moments of the change).
        url = f"{intake}/v1/incidents/{accepted.incident_id}"
        asyncio.run(asyncio.wait_for(until_found(url, token), 120))
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "simulator stopped (exit 0)" in rest, rest
    for spec in services(Settings()):
        assert f"{spec.name} stopped (exit 0)" in rest, rest
    # A second start finds its topics and its record where the first left them.
    with subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--no-simulator"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        lines = []
        read_until(lines, proc.stdout, "system running")
        assert "topics: all present" in "".join(lines)
        board = read_until(lines, proc.stdout, "  commander board")
        token = board.split("#token=", 1)[1].strip()
        # Straight away: the first run's record is where it left it.
        reply = httpx.get(
            f"{intake}/v1/incidents/{accepted.incident_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    assert reply.status_code == 200, reply.text
    assert reply.json()["incident_id"] == str(accepted.incident_id)
    assert proc.returncode == 0, rest
