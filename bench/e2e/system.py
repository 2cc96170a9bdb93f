"""The whole system as `dispatch run` starts it, on a Kafka and a PostgreSQL of the bench's own.

The services are the ones `cli.run_command.services` lists (the three stream workers, intake,
the push gateway, the reconciler, and whatever else `dispatch run` starts by the time the
bench runs), each a process under the project's supervisor, configured by `DISPATCH_*`
variables exactly as `dispatch run` passes them. Two settings differ from the defaults, both
printed with the figures:

- `rate_limit_per_minute` is raised to its maximum, so that the intake does not refuse a desk
  that raises hundreds of alarms a second, and the phones' answers are not throttled;
- the zone is the demo zone with a merge window of 1 ms instead of 10 minutes (a copy of the
  zone file in the state directory), so that every alarm opens an incident of its own; see
  `bench/e2e/__main__.py` for why.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from cli.run_command import services
from dispatch.settings import Settings
from dispatch.zone import default_zone_path
from infra import stack
from infra.kafka import KafkaBroker
from infra.postgres import PostgresServer
from infra.processes import Say, free_port, free_port_range
from infra.supervisor import Supervisor
from infra.topics import declare_catalog_topics

READY_GUARD_S = 240.0  # a hang guard while the services start, not a figure
POLL_S = 0.5
MAX_RATE_LIMIT = 100_000  # Settings.rate_limit_per_minute's upper bound
BENCH_MERGE_WINDOW_S = 0.001


@dataclass
class System:
    """A running system: its settings, the supervisor of its services, its state directory."""

    settings: Settings
    supervisor: Supervisor
    state_dir: Path

    @property
    def intake_url(self) -> str:
        """Return the intake API's address."""
        return f"http://{self.settings.gateway_host}:{self.settings.intake_port}"

    @property
    def push_url(self) -> str:
        """Return the push gateway's websocket address."""
        return f"ws://{self.settings.gateway_host}:{self.settings.push_port}/"

    def service_pids(self) -> dict[str, int]:
        """Return the pid of every running service, by name."""
        return {name: pid for name, pid in self.supervisor.pids().items() if pid is not None}

    def infra_pids(self) -> dict[str, int]:
        """Return the pids of the broker and of PostgreSQL's postmaster."""
        found = {}
        kafka = KafkaBroker(self.settings).pid_file.live_pid()
        postgres = PostgresServer(self.settings).pid_file.live_pid()
        if kafka is not None:
            found["kafka"] = kafka
        if postgres is not None:
            found["postgres"] = postgres
        return found


def process_tree(pid: int) -> set[int]:
    """Return a process and all its descendants (PostgreSQL: the postmaster and backends)."""
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.Error:
        return set()


def bench_zone_file(state_dir: Path, merge_window_s: float, copies: int) -> Path:
    """Write the demo zone with another merge window and `copies` of every unit that is not
    an enterprise's guard (each copy at the same base, of the same kind and team) into the
    state directory; return its path."""
    text = default_zone_path().read_text(encoding="utf-8")
    text, count = re.subn(
        r"^merge_window_s\s*=\s*[0-9.]+", f"merge_window_s = {merge_window_s:g}", text, flags=re.M
    )
    if count != 1:
        raise RuntimeError("the demo zone file has no single merge_window_s line to change")
    units = tomllib.loads(text)["units"]
    extra = [
        _toml_table("units", unit | {"id": f"{unit['id']}-c{n}", "name": f"{unit['name']} #{n}"})
        for n in range(2, copies + 1)
        for unit in units
        if unit["kind"] != "guard"
    ]
    path = state_dir / "bench-zone.toml"
    path.write_text(text + "\n" + "\n".join(extra), encoding="utf-8")
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _toml_table(name: str, fields: dict[str, object]) -> str:
    lines = [f"[[{name}]]"] + [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the DISPATCH_* variables that give a service these settings."""
    env = {}
    for name, value in settings.model_dump(exclude_none=True).items():
        secret = getattr(value, "get_secret_value", None)
        env[f"DISPATCH_{name.upper()}"] = str(secret() if secret else value)
    return env | {"DISPATCH_KAFKA_BOOTSTRAP": settings.bootstrap_servers}


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (and so its new children's) to a file."""
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@asynccontextmanager
async def running_system(
    state_dir: Path, *, merge_window_s: float, unit_copies: int, say: Say = print
) -> AsyncIterator[System]:
    """Start Kafka, PostgreSQL and every service of `dispatch run`; stop all of it afterwards.

    The services' own output goes to `services.log` in the state directory."""
    zone_file = bench_zone_file(state_dir, merge_window_s, unit_copies)
    settings = stack.private_settings(
        state_dir,
        intake_port=free_port(),
        push_port=free_port(),
        stream_probe_port=free_port_range(3),
        reconciler_probe_port=free_port(),
        rate_limit_per_minute=MAX_RATE_LIMIT,
        zone_file=zone_file,
    )
    await asyncio.to_thread(stack.up, settings, say)
    supervisor = None
    log = state_dir / "services.log"
    try:
        await declare_catalog_topics(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
        env |= settings_env(settings)
        supervisor = Supervisor(services(settings), env, lambda line: None)
        with output_to(log):
            supervisor.start()
        system = System(settings, supervisor, state_dir)
        started = time.monotonic()
        while waiting := await asyncio.to_thread(supervisor.not_ready):
            if time.monotonic() - started > READY_GUARD_S:
                raise RuntimeError(f"services not ready after {READY_GUARD_S:.0f} s: {waiting}")
            with output_to(log):
                supervisor.poll()
            await asyncio.sleep(POLL_S)
        names = ", ".join(system.service_pids())
        say(f"services ready in {time.monotonic() - started:.1f} s: {names}")
        yield system
    finally:
        if supervisor is not None:
            with output_to(log):
                await asyncio.to_thread(supervisor.stop)
        await asyncio.to_thread(stack.down, settings, say)
