"""Keep a set of service processes running: start each, restart one that dies (with backoff),
tell when all are ready, stop them all with SIGTERM. What `dispatch run` does on one machine."""

from __future__ import annotations

import contextlib
import http.client
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infra.processes import Say

# A service that dies is started again after this delay, doubled on each quick death up to the
# most; a service that ran this long before dying starts again at the first delay.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
HEALTHY_RUN_S = 60.0
PROBE_TIMEOUT_S = 2.0


def readiness(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Ask a service's readiness probe; return whether it is ready and what it said."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310  # http URL we built
            return True, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no answer: {exc}"
    except http.client.HTTPException as exc:
        # Whatever answered did not speak HTTP. On a port in the ephemeral range, a probe sent
        # before the service listens can even connect to itself and read its own request back.
        return False, f"no HTTP answer: {exc!r}"


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its name, its command line, extra environment and its readiness URL
    (None: ready while it runs)."""

    name: str
    command: Sequence[str]
    ready_url: str | None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Running:
    spec: ServiceSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay_s: float = RESTART_FIRST_S
    restart_at: float | None = None
    restarts: int = 0
    held: bool = False  # not started again while held (a machine that stays down)


class Supervisor:
    """Start, watch and restart the services; call `poll` regularly from one thread."""

    def __init__(self, specs: Sequence[ServiceSpec], env: Mapping[str, str], say: Say) -> None:
        self._services = [_Running(spec) for spec in specs]
        self._env = env
        self._told = say

    def _say(self, line: str) -> None:
        # A terminal that went away (a closed pipe) must not stop the supervisor from
        # stopping its services.
        with contextlib.suppress(OSError):
            self._told(line)

    def start(self) -> None:
        """Start every service."""
        for service in self._services:
            self._start(service)

    def poll(self) -> None:
        """Notice services that died and start them again once their backoff has passed."""
        now = time.monotonic()
        for service in self._services:
            process = service.process
            if process is not None and process.poll() is not None:
                ran = now - service.started_at
                service.delay_s = RESTART_FIRST_S if ran >= HEALTHY_RUN_S else service.delay_s
                self._say(
                    f"{service.spec.name} exited (code {process.returncode}) after {ran:.0f} s; "
                    f"starting it again in {service.delay_s:.0f} s"
                )
                service.process = None
                service.restart_at = now + service.delay_s
                service.delay_s = min(service.delay_s * 2, RESTART_MAX_S)
            restart_at = service.restart_at
            if service.held:
                continue
            if service.process is None and restart_at is not None and now >= restart_at:
                service.restarts += 1
                self._start(service)

    def not_ready(self) -> dict[str, str]:
        """Return the services that are not ready now, with what their probe said."""
        found = {}
        for service in self._services:
            if service.held:
                continue
            if service.process is None:
                found[service.spec.name] = "not running"
                continue
            if service.spec.ready_url is None:
                continue
            ready, said = readiness(service.spec.ready_url)
            if not ready:
                found[service.spec.name] = said.strip()[:300]
        return found

    def stop(self, *, timeout_s: float = 60.0) -> None:
        """Ask every service to stop (SIGTERM), wait for each, kill what does not stop."""
        for service in self._services:
            if service.process is not None and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for service in self._services:
            process = service.process
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._say(f"{service.spec.name} stopped (exit {process.returncode})")

    def _start(self, service: _Running) -> None:
        # Each in its own session: Ctrl-C sends SIGINT to the terminal's whole foreground
        # process group, and a service must get exactly one stop request, our SIGTERM.
        service.process = subprocess.Popen(
            list(service.spec.command),
            env={**self._env, **service.spec.env},
            start_new_session=True,
        )
        service.started_at = time.monotonic()
        service.restart_at = None
        self._say(f"{service.spec.name} started (pid {service.process.pid})")

    def hold(self, name: str, *, held: bool = True) -> None:
        """Stop (held) or go back to (not held) starting a service again when it dies, and
        leave it out of readiness meanwhile: the fault tests' host that stays down."""
        next(s for s in self._services if s.spec.name == name).held = held

    def ready_url(self, name: str) -> str | None:
        """Return a service's readiness URL."""
        return next(s for s in self._services if s.spec.name == name).spec.ready_url

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """Return a running service's process."""
        running = next(s for s in self._services if s.spec.name == name)
        assert running.process is not None, f"{name} is not running"
        return running.process

    def pids(self) -> dict[str, int | None]:
        """Return each service's current pid (None while it waits to be started again)."""
        return {s.spec.name: s.process.pid if s.process else None for s in self._services}
