"""The whole system as `dispatch run` starts it, on a Kafka and a PostgreSQL of its own, with
the faults a fault scenario injects: a service killed or stopped, PostgreSQL or the broker
frozen, the broker restarted.

Every service is a real process under the project's own supervisor (infra.supervisor), so a
killed one is started again exactly as on a deployment of one machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cli.run_command import EXTRA_WORKER_PORTS, services
from dispatch.settings import Settings
from infra import stack
from infra.kafka import KafkaBroker
from infra.postgres import PostgresServer
from infra.processes import free_port, free_port_range
from infra.supervisor import Supervisor, readiness
from infra.topics import declare_catalog_topics
from tests.integration.faults.balancer import balancer_spec, gateway_specs

READY_GUARD_S = 180.0  # a hang guard, not a performance bound
# How often the fault harness polls the supervisor and the services' probes: the probes are
# HTTP endpoints of other processes, with no event to await.
POLL_S = 0.25


@dataclass
class Events:
    """What happened to the system during a scenario, with monotonic times."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def say(self, line: str) -> None:
        """Record one line the supervisor or the harness said."""
        self.lines.append((time.monotonic(), line))

    def first(self, prefix: str, after: float) -> float | None:
        """Return when a line starting with prefix was first said after a moment."""
        return next((t for t, line in self.lines if t > after and line.startswith(prefix)), None)


@dataclass
class System:
    """A running system: its settings, its supervisor and what it said."""

    settings: Settings
    supervisor: Supervisor
    events: Events
    state_dir: Path
    # With two gateways: the load balancer's port, the one address of the intake and the push,
    # and the second gateway's own port.
    front_port: int | None = None
    second_push_port: int | None = None

    def units_connected_to(self, push_port: int) -> int:
        """Return how many unit connections the gateway on that port holds (its /metrics)."""
        url = f"http://{self.settings.gateway_host}:{push_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:  # our own address
            text = reply.read().decode()
        for line in text.splitlines():
            if line.startswith('dispatch_push_connected{channel="unit"}'):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    @property
    def intake_url(self) -> str:
        """Return the intake API's address (the load balancer's, with two of each)."""
        port = self.front_port or self.settings.intake_port
        return f"http://{self.settings.gateway_host}:{port}"

    @property
    def push_url(self) -> str:
        """Return the push gateway's websocket address (the load balancer's, with two)."""
        port = self.front_port or self.settings.push_port
        return f"ws://{self.settings.gateway_host}:{port}"

    def pid(self, service: str) -> int:
        """Return the pid of a running service ("route worker", "push gateway", ...)."""
        pid = self.supervisor.pids()[service]
        assert pid is not None, f"{service} is not running"
        return pid

    def signal(self, service: str, signum: signal.Signals) -> float:
        """Send a signal to a service; return when."""
        os.kill(self.pid(service), signum)
        self.events.say(f"harness: {signum.name} to {service}")
        return time.monotonic()

    async def until_ready(self) -> float:
        """Wait until every service answers its readiness probe; return when."""
        waiting: object = None
        try:
            async with asyncio.timeout(READY_GUARD_S):
                while True:
                    self.supervisor.poll()
                    waiting = await asyncio.to_thread(self.supervisor.not_ready)
                    if not waiting:
                        return time.monotonic()
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            raise AssertionError(f"not ready within {READY_GUARD_S:g} s: {waiting}") from None

    async def until_owns_every_partition(self, service: str) -> float:
        """Wait until a stage worker handles every partition of each of its input topics (its
        /readyz says which it handles); return when."""
        url = self.supervisor.ready_url(service)
        assert url is not None, f"{service} has no readiness probe"
        count = self.settings.kafka_partitions
        said = ""
        try:
            async with asyncio.timeout(READY_GUARD_S):
                while True:
                    ready, said = await asyncio.to_thread(readiness, url)
                    if ready:
                        owned = json.loads(said)["partitions"]
                        topics = [parts for stage in owned.values() for parts in stage.values()]
                        if topics and all(len(parts) == count for parts in topics):
                            return time.monotonic()
                    await asyncio.sleep(POLL_S)  # the rebalance has no event to await from here
        except TimeoutError:
            raise AssertionError(
                f"{service} did not own every partition within {READY_GUARD_S:g} s; it said {said}"
            ) from None

    async def until_restarted(self, service: str, after: float) -> float:
        """Wait until the supervisor has started a service again after a moment; return when."""
        async with asyncio.timeout(READY_GUARD_S):
            while (started := self.events.first(f"{service} started", after)) is None:
                self.supervisor.poll()
                await asyncio.sleep(POLL_S)
        return started

    @asynccontextmanager
    async def frozen(self, what: str) -> AsyncIterator[None]:
        """Freeze Kafka ("kafka") or PostgreSQL ("postgres") with SIGSTOP for the block."""
        processes = _tree(await asyncio.to_thread(self._infra_pid, what))
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        self.events.say(f"harness: froze {what}")
        try:
            yield
        finally:
            for process in processes:
                process.send_signal(signal.SIGCONT)
            self.events.say(f"harness: thawed {what}")

    def restart_broker(self) -> None:
        """Stop the broker cleanly and start it again on the same data."""
        broker = KafkaBroker(self.settings)
        broker.down(self.events.say)
        broker.up(self.events.say)

    def _infra_pid(self, what: str) -> int:
        # status() asks the server (its own event loop): call it from a thread.
        server = KafkaBroker(self.settings) if what == "kafka" else PostgresServer(self.settings)
        pid = server.status().pid
        assert pid is not None, f"{what} is not running"
        return pid


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


@asynccontextmanager
async def running_system(*, gateways: int = 1, **overrides: object) -> AsyncIterator[System]:
    """Start Kafka, PostgreSQL and every service of `dispatch run` on free ports in a state
    directory of their own; stop all of it afterwards. With gateways=2, a second intake
    service and a second push gateway, and nginx in front of both pairs (deploy/nginx)."""
    state = Path(tempfile.mkdtemp(prefix="dispatch-fault-"))
    # The stage workers' probe ports: three, then (past a gap) one per extra worker.
    workers = int(str(overrides.get("stream_workers", 1)))
    probe_ports = EXTRA_WORKER_PORTS + 2 * (workers - 1) if workers > 1 else 3
    settings = stack.private_settings(
        state,
        intake_port=free_port(),
        push_port=free_port(),
        stream_probe_port=free_port_range(probe_ports),
        reconciler_probe_port=free_port(),
        sink_probe_port=free_port(),
        **overrides,
    )
    events = Events()
    await asyncio.to_thread(stack.up, settings, events.say)
    supervisor = None
    try:
        await declare_catalog_topics(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
        env |= settings_env(settings)
        specs = services(settings)
        front = push_2 = None
        if gateways == 2:
            host, front = settings.gateway_host, free_port()
            intake_2, push_2 = free_port(), free_port()
            specs += gateway_specs(host, intake_2, push_2)
            intakes, pushes = [settings.intake_port, intake_2], [settings.push_port, push_2]
            nginx = state / "nginx"
            specs.append(balancer_spec(nginx, host, front, intakes=intakes, pushes=pushes))
        supervisor = Supervisor(specs, env, events.say)
        supervisor.start()
        second = push_2 if gateways == 2 else None
        system = System(settings, supervisor, events, state, front, second)
        await system.until_ready()
        yield system
    finally:
        if supervisor is not None:
            await asyncio.to_thread(supervisor.stop)
        await asyncio.to_thread(stack.down, settings, events.say)


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the DISPATCH_* variables that give a service these settings."""
    env = {}
    for name, value in settings.model_dump(exclude_none=True).items():
        secret = getattr(value, "get_secret_value", None)
        env[f"DISPATCH_{name.upper()}"] = str(secret() if secret else value)
    return env | {"DISPATCH_KAFKA_BOOTSTRAP": settings.bootstrap_servers}
