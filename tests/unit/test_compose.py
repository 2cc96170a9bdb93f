"""docker-compose.yml is checked for structure here, since no Docker engine runs on CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """Return the parsed compose file."""
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "postgres", "dispatch"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:3.9.")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["dispatch"]["build"] == "."


def test_kafka_runs_as_one_kraft_node(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    for name in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG"):
        assert env[f"KAFKA_{name}_REPLICATION_FACTOR"] == "1"
    # The project's service reaches the broker on the listener advertised for containers.
    bootstrap = compose["services"]["dispatch"]["environment"]["DISPATCH_KAFKA_BOOTSTRAP"]
    assert f"INTERNAL://{bootstrap}" in env["KAFKA_ADVERTISED_LISTENERS"]


@pytest.mark.parametrize(("service", "port"), [("kafka", 9092), ("postgres", 5432)])
def test_ports_published(compose: dict[str, Any], service: str, port: int) -> None:
    assert f"{port}:{port}" in compose["services"][service]["ports"]


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert check["test"], f"{name}'s health check runs nothing"
        assert check["retries"] >= 1


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    assert set(services["dispatch"]["depends_on"]) == {"kafka", "postgres"}


def test_no_password_committed(compose: dict[str, Any]) -> None:
    env = compose["services"]["postgres"]["environment"]
    assert env["POSTGRES_PASSWORD"].startswith("${DISPATCH_POSTGRES_PASSWORD:?")


def test_dockerfile_copies_what_exists() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    sources = [part for line in lines if line.startswith("COPY ") for part in line.split()[1:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
