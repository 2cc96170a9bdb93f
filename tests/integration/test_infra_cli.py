"""`dispatch infra up | down | status` as a person runs it: real processes, real ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from dispatch.settings import Settings
from infra import stack
from infra.processes import free_port, free_port_range


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the console script's module in a child process with the given environment."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cli_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """Return an environment with a private state directory and private ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env |= {
        "DISPATCH_STATE_DIR": str(state_dir),
        "DISPATCH_KAFKA_PORT": str(free_port()),
        "DISPATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
        "DISPATCH_POSTGRES_PORT": str(free_port()),
        "DISPATCH_INTAKE_PORT": str(free_port()),
        "DISPATCH_PUSH_PORT": str(free_port()),
        "DISPATCH_RECONCILER_PROBE_PORT": str(free_port()),
        "DISPATCH_SINK_PROBE_PORT": str(free_port()),
        # `dispatch run` gives the stream workers this port and the next two.
        "DISPATCH_STREAM_PROBE_PORT": str(free_port_range(3)),
    }
    return env | extra


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Return the live processes whose command line mentions text."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(text in c for c in cmdline):
            found.append(proc)
    return found


def status_column(output: str, column: int) -> dict[str, str]:
    """Map service name to one column (1 state, 2 pid, 4 health) of the status table."""
    rows = [line.split() for line in output.splitlines()[1:] if line.strip()]
    return {row[0]: row[column] for row in rows if row[0] in ("kafka", "postgres")}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the command failed with exactly one line on stderr, and return it."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_up_twice_then_status_then_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = cli_env(state)
    # A pid file left by a crashed broker names a process that no longer exists.
    dead = psutil.Popen(["true"])
    dead.wait()
    (state / "kafka").mkdir(parents=True)
    (state / "kafka" / "kafka.pid").write_text(f"{dead.pid}\n")

    first = run_cli("infra", "up", env=env)
    assert first.returncode == 0, first.stderr
    assert "removed stale pid file" in first.stdout
    second = run_cli("infra", "up", env=env)
    assert second.returncode == 0, second.stderr
    assert status_column(second.stdout, 2) == status_column(first.stdout, 2)

    status = run_cli("infra", "status", env=env)
    assert status.returncode == 0, status.stdout
    assert status_column(status.stdout, 4) == {"kafka": "healthy", "postgres": "healthy"}
    brokers = processes_mentioning(str(state.resolve() / "kafka" / "server.properties"))
    postmasters = processes_mentioning(str(state.resolve() / "postgres" / "data"))
    assert len(brokers) == 1
    assert len(postmasters) == 1
    started = [brokers[0], postmasters[0], *postmasters[0].children(recursive=True)]

    down = run_cli("infra", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert "stopped: postgres, kafka" in down.stdout
    assert processes_mentioning(str(state.resolve())) == []
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in started)

    exports = run_cli("infra", "env", env=env)
    assert f"DISPATCH_KAFKA_BOOTSTRAP=127.0.0.1:{env['DISPATCH_KAFKA_PORT']}" in exports.stdout
    password = (state / "postgres" / "password").read_text().strip()
    assert f":{password}@127.0.0.1:{env['DISPATCH_POSTGRES_PORT']}/dispatch" in exports.stdout

    after = run_cli("infra", "status", env=env)
    assert after.returncode == 3
    assert status_column(after.stdout, 1) == {"kafka": "stopped", "postgres": "stopped"}


def test_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "state")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["DISPATCH_KAFKA_PORT"])))
        squatter.listen()
        line = one_line_error(run_cli("infra", "up", env=env))
    assert "already taken" in line
    assert "DISPATCH_KAFKA_PORT" in line


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = cli_env(tmp_path / "state", PATH=str(empty_bin))
    line = one_line_error(run_cli("infra", "up", env=env))
    assert "java not found" in line


def test_unreachable_maven_on_first_fetch_is_one_clear_line(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "state",
        DISPATCH_CACHE_DIR=str(tmp_path / "cache"),
        # Nothing listens on this port: the first fetch cannot reach any repository.
        DISPATCH_MAVEN_REPOSITORY_URL=f"http://127.0.0.1:{free_port()}/maven2",
        MAVEN_OPTS=f"-Dmaven.repo.local={tmp_path / 'm2'}",
    )
    line = one_line_error(run_cli("infra", "up", env=env))
    assert "unreachable" in line
    assert not (tmp_path / "cache" / "kafka").exists() or not any(
        (tmp_path / "cache" / "kafka").glob("*/.complete")
    )


def test_configured_services_are_used_not_started(tmp_path: Path, running_stack: Settings) -> None:
    state = tmp_path / "state"
    env = cli_env(
        state,
        DISPATCH_KAFKA_BOOTSTRAP=running_stack.bootstrap_servers,
        DISPATCH_POSTGRES_URL=stack.postgres_url(running_stack),
    )
    up = run_cli("infra", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert status_column(up.stdout, 1) == {"kafka": "external", "postgres": "external"}
    assert processes_mentioning(str(state.resolve())) == []
    status = run_cli("infra", "status", env=env)
    assert status.returncode == 0
    assert status_column(status.stdout, 4) == {"kafka": "healthy", "postgres": "healthy"}
