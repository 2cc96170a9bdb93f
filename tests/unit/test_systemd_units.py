"""The sample systemd units in deploy/systemd start what `dispatch run` starts, restart it for
ever, and stop it with the one SIGTERM every service handles."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cli.run_command import STAGES, services
from dispatch.settings import Settings

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def directives(path: Path) -> list[tuple[str, str]]:
    """Return a unit file's key=value lines in order (keys may repeat, as systemd allows)."""
    found = []
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.append((key.strip(), value.strip()))
    return found


def values(path: Path, key: str) -> list[str]:
    return [v for k, v in directives(path) if k == key]


def test_the_target_wants_every_service_dispatch_run_starts() -> None:
    wanted = " ".join(values(UNITS / "alarm-dispatch.target", "Wants")).split()
    streams = {w.removeprefix("alarm-dispatch-stream@").removesuffix(".service") for w in wanted
               if w.startswith("alarm-dispatch-stream@")}  # fmt: skip
    others = {w.removeprefix("alarm-dispatch@").removesuffix(".service") for w in wanted
              if w.startswith("alarm-dispatch@")}  # fmt: skip
    assert streams == set(STAGES)
    assert len(wanted) == len(services(Settings()))
    for name in others:
        # alarm-dispatch@NAME runs `python -m consumers.NAME`: the module must exist.
        assert importlib.util.find_spec(f"consumers.{name}.__main__") is not None, name
    run_modules = {spec.command[2] for spec in services(Settings())}
    assert {f"consumers.{name}" for name in others} == run_modules - {"streams"}


def test_every_service_restarts_for_ever_and_stops_on_sigterm() -> None:
    for unit in ("alarm-dispatch@.service", "alarm-dispatch-stream@.service"):
        path = UNITS / unit
        assert values(path, "Restart") == ["always"], unit
        assert values(path, "StartLimitIntervalSec") == ["0"], unit
        assert values(path, "KillSignal") == ["SIGTERM"], unit
        assert values(path, "EnvironmentFile")[0] == "/etc/alarm-dispatch/env", unit
    stream = values(UNITS / "alarm-dispatch-stream@.service", "ExecStart")[0]
    assert stream.split()[1:5] == ["-m", "streams", "--stage", "%i"]


def test_each_stage_has_its_own_probe_port() -> None:
    ports = {
        stage: values(UNITS / f"stream-{stage}.env.example", "DISPATCH_STREAM_PROBE_PORT")[0]
        for stage in STAGES
    }
    assert len(set(ports.values())) == len(STAGES)
