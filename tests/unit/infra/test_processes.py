"""Pid files, port checks and shutdown, on real child processes and sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from infra.errors import InfraError
from infra.processes import (
    PidFile,
    child_running,
    drop_stale_pid_file,
    ensure_port_free,
    terminate,
)

SLEEPER = "import time; print('up', flush=True); time.sleep(600)  # sleeper-marker"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """Start a child process that would run for ten minutes, and reap it afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE)
    # Until the child has exec'd, its command line is still this process's: wait for its word.
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_pid_file_recognises_only_our_live_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    ours = PidFile(tmp_path / "a.pid", marker="sleeper-marker")
    ours.write(sleeper.pid)
    assert ours.live_pid() == sleeper.pid
    assert not ours.is_stale()
    # Same pid, but the marker is not in its command line: a reused pid is not ours.
    other = PidFile(tmp_path / "a.pid", marker="kafka.Kafka /somewhere/server.properties")
    assert other.live_pid() is None
    assert other.is_stale()


def test_stale_pid_file_is_reported_and_removed(tmp_path: Path) -> None:
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    pid_file = PidFile(tmp_path / "kafka.pid", marker="x")
    pid_file.write(gone.pid)
    said: list[str] = []
    drop_stale_pid_file(pid_file, "kafka", said.append)
    assert len(said) == 1
    assert "stale pid file" in said[0]
    assert not pid_file.path.exists()


def test_pid_file_reads_first_line_only(tmp_path: Path) -> None:
    # Postgres writes its pid on the first line of postmaster.pid, then more lines.
    path = tmp_path / "postmaster.pid"
    path.write_text("4242\n/data\n1700000000\n5432\n")
    assert PidFile(path, marker="x").read() == 4242
    path.write_text("garbage\n")
    assert PidFile(path, marker="x").read() is None
    assert PidFile(tmp_path / "missing.pid", marker="x").read() is None


def test_taken_port_is_one_clear_error() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(InfraError, match=f"127.0.0.1:{port} .* DISPATCH_X_PORT"):
            ensure_port_free("127.0.0.1", port, "X", "DISPATCH_X_PORT")
    ensure_port_free("127.0.0.1", port, "X", "DISPATCH_X_PORT")


def test_terminate_stops_the_process(sleeper: subprocess.Popen[bytes]) -> None:
    assert terminate(sleeper.pid, timeout_s=10) == -signal.SIGTERM
    assert not psutil.pid_exists(sleeper.pid)


def test_terminate_kills_what_ignores_sigterm() -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as stubborn:
        assert stubborn.stdout is not None
        assert stubborn.stdout.readline() == b"ready\n"
        assert terminate(stubborn.pid, timeout_s=0.5) == -signal.SIGKILL


def test_a_spawned_child_counts_as_running_until_it_exits_whatever_its_command_line() -> None:
    child = subprocess.Popen([sys.executable, "-c", SLEEPER])
    try:
        # No marker needed: the pid is our unreaped child, so it cannot be anybody else's.
        assert child_running(child.pid)
        child.send_signal(signal.SIGKILL)
        # Exited but not yet reaped (WNOWAIT waits without reaping): a zombie, not running.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
        assert not child_running(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not child_running(child.pid)
