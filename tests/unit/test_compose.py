"""docker-compose.yml is checked for structure here, since no Docker engine runs on CI.

tests/integration/test_run_command.py runs the services' health checks against the real
services that `dispatch run` starts.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.run_command import services
from consumers.intake.cors import page_origins
from consumers.push.pages import content_security_policy, intake_url
from dispatch.settings import Settings
from streams.pipeline import STAGES

ROOT = Path(__file__).resolve().parents[2]
# The project's services and what each runs after `python -m`.
COMMANDS = {
    "classify": ["streams", "--stage", "classify"],
    "merge": ["streams", "--stage", "merge"],
    "route": ["streams", "--stage", "route"],
    "intake": ["consumers.intake"],
    "push": ["consumers.push"],
    "reconciler": ["consumers.reconciler"],
    "sink": ["consumers.sink"],
}
# ${NAME}, ${NAME:-default}, ${NAME:?error}: compose's interpolation.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<arg>[^}]*))?\}")


def load_compose() -> dict[str, Any]:
    """Return the parsed compose file (anchors and merge keys resolved)."""
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Substitute variables the way compose does; a missing required one raises KeyError."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in variables:
            return variables[name]
        if op == "-":
            return str(arg)
        raise KeyError(name)

    return VARIABLE.sub(substitute, value)


def health_command(service: dict[str, Any]) -> list[str]:
    """Return what a service's health check runs after `python` (`-c SCRIPT` or `-m ...`)."""
    test = service["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], test
    assert test[2] in ("-c", "-m"), test
    command: list[str] = test[2:]
    return command


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """Return the parsed compose file."""
    return load_compose()


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "postgres", *COMMANDS}
    assert services["kafka"]["image"].startswith("apache/kafka:3.9.")
    assert services["postgres"]["image"].startswith("postgres:")
    # One image for the project's services, built from the Dockerfile.
    assert {services[name]["build"] for name in COMMANDS} == {"."}
    assert len({services[name]["image"] for name in COMMANDS}) == 1


@pytest.mark.parametrize(("service", "command"), COMMANDS.items())
def test_each_service_runs_a_module_that_exists(
    compose: dict[str, Any], service: str, command: list[str]
) -> None:
    assert compose["services"][service]["command"] == ["python", "-m", *command]
    importlib.import_module(f"{command[0]}.__main__")


def test_the_services_are_the_ones_dispatch_run_starts(compose: dict[str, Any]) -> None:
    # `dispatch run` adds a static membership id to each stream worker's command line.
    started = [_module_and_stage(list(spec.command)) for spec in services(Settings())]
    for service, command in COMMANDS.items():
        assert command in started, service
    assert len(started) == len(COMMANDS)
    for stage in STAGES:
        assert compose["services"][stage]["command"][-2:] == ["--stage", stage]


def _module_and_stage(command: list[str]) -> list[str]:
    # python -m MODULE [--stage STAGE] [--instance N]: what COMMANDS lists of it.
    rest = command[command.index("-m") + 1 :]
    return rest[:3] if "--stage" in rest else rest[:1]


def test_kafka_runs_as_one_kraft_node(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    for name in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG"):
        assert env[f"KAFKA_{name}_REPLICATION_FACTOR"] == "1"
    # The project's services reach the broker on the listener advertised for containers.
    for service in COMMANDS:
        bootstrap = compose["services"][service]["environment"]["DISPATCH_KAFKA_BOOTSTRAP"]
        assert f"INTERNAL://{bootstrap}" in env["KAFKA_ADVERTISED_LISTENERS"]


@pytest.mark.parametrize(
    ("service", "port"),
    [
        ("kafka", 9092),
        ("postgres", 5432),
        ("intake", Settings.model_fields["intake_port"].default),
        ("push", Settings.model_fields["push_port"].default),
    ],
)
def test_ports_published(compose: dict[str, Any], service: str, port: int) -> None:
    assert f"{port}:{port}" in compose["services"][service]["ports"]


@pytest.mark.parametrize("service", COMMANDS)
def test_settings_are_real_fields_with_valid_values(compose: dict[str, Any], service: str) -> None:
    env = compose["services"][service]["environment"]
    fields = {}
    for name, value in env.items():
        assert name.startswith("DISPATCH_"), name
        field = name.removeprefix("DISPATCH_").lower()
        assert field in Settings.model_fields, f"{name} is no setting"
        fields[field] = interpolate(value, {"DISPATCH_POSTGRES_PASSWORD": "secret"})
    settings = Settings.model_validate(fields)
    # External servers, so the services start neither Kafka nor PostgreSQL of their own, and
    # listening on every interface, so the published ports reach them.
    assert settings.kafka_is_external
    assert settings.postgres_is_external
    assert settings.postgres_url is not None
    assert "@postgres:5432/" in settings.postgres_url.get_secret_value()
    assert ipaddress.ip_address(settings.gateway_host).is_unspecified


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert check["test"], f"{name}'s health check runs nothing"
        assert check["retries"] >= 1


@pytest.mark.parametrize("service", COMMANDS)
def test_health_checks_run_code_that_exists(compose: dict[str, Any], service: str) -> None:
    flag, what, *args = health_command(compose["services"][service])
    if flag == "-c":
        compile(what, f"<{service} health check>", "exec")
    else:
        importlib.import_module(what)
    # Each check asks the service's own readiness probe.
    if flag == "-m":
        assert what == "consumers.health"
        assert args == ["stream" if service in STAGES else service]


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert services[dependency].get("healthcheck"), f"{dependency} has no health check"
    for name in COMMANDS:
        assert set(services[name]["depends_on"]) == {"kafka", "postgres"}


def test_no_password_committed(compose: dict[str, Any]) -> None:
    env = compose["services"]["postgres"]["environment"]
    assert env["POSTGRES_PASSWORD"].startswith("${DISPATCH_POSTGRES_PASSWORD:?")
    for name in COMMANDS:
        url = compose["services"][name]["environment"]["DISPATCH_POSTGRES_URL"]
        with pytest.raises(KeyError):
            interpolate(url, {})


def test_dockerfile_copies_what_exists() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    # A COPY --from=stage copies from an earlier build stage, not from the checkout.
    copies = [line for line in lines if line.startswith("COPY ") and "--from=" not in line]
    sources = [part for line in copies for part in line.split()[1:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_copies_every_service_package() -> None:
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    }
    for command in COMMANDS.values():
        assert command[0].split(".")[0] in copied


def compose_settings(compose: dict[str, Any], service: str, **variables: str) -> Settings:
    """Return the settings a service gets from the compose file, with some variables set."""
    env = compose["services"][service]["environment"]
    given = {"DISPATCH_POSTGRES_PASSWORD": "secret", **variables}
    return Settings.model_validate(
        {name.removeprefix("DISPATCH_").lower(): interpolate(v, given) for name, v in env.items()}
    )


def published(compose: dict[str, Any], service: str) -> int:
    """Return the host port a service is published on."""
    (mapping,) = compose["services"][service]["ports"]
    return int(str(mapping).split(":")[0])


def test_the_pages_work_from_a_browser_on_this_machine(compose: dict[str, Any]) -> None:
    intake_port, push_port = published(compose, "intake"), published(compose, "push")
    gateway = compose_settings(compose, "push")
    intake = compose_settings(compose, "intake")
    # The pages reach intake where it is published, not at the 0.0.0.0 the services bind.
    assert intake_url(gateway) == f"http://localhost:{intake_port}"
    assert f"connect-src 'self' http://localhost:{intake_port}" in content_security_policy(gateway)
    # Intake answers the pages' browsers, whichever loopback name they typed.
    assert {f"http://localhost:{push_port}", f"http://127.0.0.1:{push_port}"} <= set(
        page_origins(intake)
    )
    # Both are overridable for browsers elsewhere, without editing the file.
    public = compose_settings(
        compose,
        "intake",
        DISPATCH_PAGES_INTAKE_URL="https://intake.example.cn",
        DISPATCH_PAGES_ORIGINS="https://board.example.cn",
    )
    assert (intake_url(public), page_origins(public)) == (
        "https://intake.example.cn",
        ["https://board.example.cn"],
    )


def test_the_image_builds_the_pages_and_serves_them() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    # Built from the lockfile in a node stage, copied where the setting points.
    assert "npm ci" in dockerfile
    assert "COPY --from=pages /web/dist /app/web/dist" in dockerfile
    assert "ENV DISPATCH_PAGES_DIR=/app/web/dist" in dockerfile
