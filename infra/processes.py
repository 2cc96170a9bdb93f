"""Pid files, port checks and process shutdown shared by the Kafka and Postgres launchers."""

from __future__ import annotations

import functools
import itertools
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from infra.errors import InfraError

# How a launcher tells the person at the terminal something worth one line.
Say = Callable[[str], None]


@dataclass(frozen=True)
class ServiceStatus:
    """What `dispatch infra status` reports for one service."""

    name: str
    managed: bool
    pid: int | None
    address: str
    healthy: bool
    detail: str


@dataclass(frozen=True)
class PidFile:
    """A pid file that records one process we started, recognised by a marker in its cmdline."""

    path: Path
    marker: str

    def read(self) -> int | None:
        """Return the recorded pid, or None when there is no readable pid file."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return None
        # The pid is the first line (Postgres's postmaster.pid has more lines after it).
        first = lines[0].strip() if lines else ""
        return int(first) if first.isdigit() else None

    def write(self, pid: int) -> None:
        """Record pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n")

    def remove(self) -> None:
        """Forget the recorded process."""
        self.path.unlink(missing_ok=True)

    def live_pid(self) -> int | None:
        """Return the recorded pid if that process still runs and is ours, else None."""
        pid = self.read()
        if pid is None or not is_our_process(pid, self.marker):
            return None
        return pid

    def is_stale(self) -> bool:
        """Tell whether a pid file exists but names no process of ours."""
        return self.path.exists() and self.live_pid() is None


def is_our_process(pid: int, marker: str) -> bool:
    """Tell whether pid is alive and its command line mentions marker (pids get reused)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return any(marker in part for part in proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def child_running(pid: int) -> bool:
    """Tell whether a child this process spawned (and never waited for) still runs.

    No marker check: right after a spawn the child may still show this process's command line
    until its exec completes, and a child we have not reaped keeps its pid, so the pid cannot
    belong to anybody else. An exited child is a zombie until reaped.
    """
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# Where a test or a benchmark takes its ports from: never from the kernel's ephemeral range, the
# ports it gives a connection's own end. A probe sent to a port in that range before anything
# listens on it can be given that very port as its own end, and then connects to itself and reads
# its own request back as the reply (CI saw "BadStatusLine: GET /readyz HTTP/1.1"); while it does,
# the service cannot bind the port either.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_RANGE = (32768, 60999)
LOWEST_TEST_PORT = 10000
_handed_out: set[int] = set()  # never the same port twice in one process
_handed_out_lock = threading.Lock()


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """Return the kernel's ephemeral port range, first and last (Linux's default when unknown)."""
    try:
        low, high = (int(word) for word in path.read_text().split())
    except (OSError, ValueError):
        return LINUX_EPHEMERAL_RANGE
    return low, high


@functools.cache
def ports_outside(ephemeral: tuple[int, int]) -> tuple[int, ...]:
    """Return the ports a test may take: from LOWEST_TEST_PORT up, outside the ephemeral range."""
    low, high = ephemeral
    return tuple(port for port in range(LOWEST_TEST_PORT, 65536) if not low <= port <= high)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on host that nothing listens on right now (tests and benchmarks): outside
    the ephemeral range, and never one this process was given before."""
    return free_port_range(1, host)


def free_port_range(count: int, host: str = "127.0.0.1") -> int:
    """Return the first of count consecutive TCP ports on host that nothing listens on now,
    outside the ephemeral range and never given to this process before."""
    ephemeral = ephemeral_range()
    ports = ports_outside(ephemeral)
    with _handed_out_lock:
        # Each run its own ports, each try from a new place; not a secret.
        start = random.randrange(len(ports))  # noqa: S311
        for index in itertools.chain(range(start, len(ports)), range(start)):
            block = ports[index : index + count]
            consecutive = block == tuple(range(block[0], block[0] + count))
            if consecutive and all(p not in _handed_out and _bindable(host, p) for p in block):
                _handed_out.update(block)
                return block[0]
    raise InfraError(
        f"no {count} free consecutive TCP ports on {host} outside the ephemeral range {ephemeral}"
    )


def ensure_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise a one-line error when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so that a socket lingering in TIME_WAIT does not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InfraError(
                f"port {host}:{port} for {what} is already taken by another process; "
                f"stop it or choose another port with {setting}"
            ) from exc


def terminate(pid: int, *, timeout_s: float) -> int | None:
    """Stop a process with SIGTERM, then SIGKILL after timeout_s; return a child's exit code."""
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        try:
            return proc.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        return None


def tail(path: Path, lines: int = 5) -> str:
    """Return the last lines of a log file, for error messages."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in content[-lines:])


def drop_stale_pid_file(pid_file: PidFile, name: str, say: Say) -> None:
    """Remove a pid file whose process is gone (or is no longer ours), saying so in one line."""
    if pid_file.is_stale():
        pid = pid_file.read()
        say(f"{name}: removed stale pid file {pid_file.path} (pid {pid} is not our {name})")
        pid_file.remove()
