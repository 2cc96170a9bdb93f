"""Settings: one class, DISPATCH_ prefix, secrets hidden, every field documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from dispatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_KAFKA_PORT", "19092")
    monkeypatch.setenv("DISPATCH_KAFKA_BOOTSTRAP", "broker-a:9092,broker-b:9092")
    settings = Settings()
    assert settings.kafka_port == 19092
    assert settings.kafka_is_external
    assert settings.bootstrap_servers == "broker-a:9092,broker-b:9092"


def test_local_defaults_start_local_services() -> None:
    settings = Settings(kafka_bootstrap=None, postgres_url=None)
    assert not settings.kafka_is_external
    assert not settings.postgres_is_external
    assert settings.bootstrap_servers == f"127.0.0.1:{settings.kafka_port}"


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_POSTGRES_PASSWORD", "hunter2-but-longer")
    monkeypatch.setenv("DISPATCH_POSTGRES_URL", "postgresql://u:pw-in-url@db/x")
    settings = Settings()
    assert "hunter2" not in repr(settings)
    assert "pw-in-url" not in str(settings)
    assert settings.postgres_password is not None
    assert settings.postgres_password.get_secret_value() == "hunter2-but-longer"


def test_unknown_or_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_port"):
        Settings(kafka_port=70000)
    with pytest.raises(ValidationError, match="postgres_db"):
        Settings(postgres_db="Robert'); DROP TABLE students;--")


def test_cli_names_the_bad_variable_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "infra", "status"],
        env={"DISPATCH_KAFKA_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "DISPATCH_KAFKA_PORT" in result.stderr


def test_every_field_is_documented() -> None:
    documented = set(re.findall(r"^\| `(\w+)` \|", (ROOT / "docs/settings.md").read_text(), re.M))
    assert documented == set(Settings.model_fields)


def test_no_module_reads_the_environment_at_import() -> None:
    # With every DISPATCH_ value invalid, importing must still work: only entry points build
    # the settings.
    modules = "cli.main, dispatch.events, infra.stack, infra.topics, streams, consumers"
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        env={"DISPATCH_KAFKA_PORT": "bad", "DISPATCH_STATE_DIR": "", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
