"""How long a stage's partitions go unhandled when its worker is killed (SIGKILL).

Run from the repository root:

    python -m bench.failover --rounds 3

Starts its own Kafka broker (a temporary state directory, free ports), declares the topics,
and measures, for the route stage (the one with tables to restore):

- `restarted, same instance id`: the worker is killed and started again at once with the same
  static membership id, as `dispatch run` and its supervisor do: the time from the kill until
  the new worker answers `/readyz` (partitions assigned and tables restored).
- `standby takes over`: two workers of the stage run; one is killed and not restarted: the
  time until the survivor handles every partition (its `/readyz` lists them all).
- the reference: the session timeout (`stream_session_timeout_s`), after which the broker
  gives a dead member's partitions away, and Faust's default of 60 s, which the stages ran on
  before (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dispatch.settings import Settings
from infra import stack
from infra.processes import free_port
from infra.supervisor import readiness
from infra.topics import declare_catalog_topics

POLL_S = 0.05  # how often a worker's probe is asked: the figures are good to this much
GUARD_S = 120.0


def probe(port: int) -> dict[str, object] | None:
    """Return a worker's /readyz body when it is ready, else None."""
    ready, said = readiness(f"http://127.0.0.1:{port}/readyz", timeout_s=1.0)
    if not ready:
        return None
    try:
        body: dict[str, object] = json.loads(said)
    except ValueError:
        return None
    return body


def until(check: object, what: str) -> float:
    """Poll check() until it is true; return when (monotonic)."""
    assert callable(check)
    deadline = time.monotonic() + GUARD_S
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {GUARD_S:.0f} s")
        time.sleep(POLL_S)
    return time.monotonic()


@contextmanager
def worker(env: dict[str, str], instance: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run a route worker with this static membership id and probe port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streams", "--stage", "route", "--instance", instance],
        env=env | {"DISPATCH_STREAM_PROBE_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait()


def restarted(env: dict[str, str]) -> float:
    """Kill a worker and start it again with the same instance id; return seconds to ready."""
    port = free_port()
    with worker(env, "1", port) as first:
        until(lambda: probe(port) is not None, "first worker ready")
        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        first.wait()
    with worker(env, "1", port):
        return until(lambda: probe(port) is not None, "restarted worker ready") - killed


def standby(env: dict[str, str], partitions: int) -> float:
    """Kill one of two workers; return seconds until the other handles every partition."""
    ports = free_port(), free_port()
    with worker(env, "a", ports[0]) as first, worker(env, "b", ports[1]):
        until(lambda: all(probe(p) is not None for p in ports), "both workers ready")
        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        return until(lambda: _owns_all(ports[1], partitions), "takeover") - killed


def _owns_all(port: int, partitions: int) -> bool:
    # Ready (restored, handling) and every partition of the stage's main input its own.
    body = probe(port)
    if body is None:
        return False
    owned = body.get("partitions", {})
    assert isinstance(owned, dict)
    return len(owned.get("route", {}).get("alarms.classified", [])) == partitions


def main() -> int:
    """Measure both ways back, several rounds each; print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    settings = stack.private_settings(state)
    stack.up(settings, print)
    try:
        asyncio.run(declare_catalog_topics(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
        env |= {
            "DISPATCH_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
            "DISPATCH_STATE_DIR": str(state),
        }
        figures = {
            "restarted, same instance id": [restarted(env) for _ in range(args.rounds)],
            "standby takes over": [
                standby(env, settings.kafka_partitions) for _ in range(args.rounds)
            ],
        }
    finally:
        stack.down(settings, print)
        shutil.rmtree(state, ignore_errors=True)  # as bench.sink: a benchmark leaves no files
    session = Settings().stream_session_timeout_s
    print(f"\nroute stage, SIGKILL, {args.rounds} rounds each (seconds)")
    print(f"{'way back':<30} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in figures.items():
        middle = statistics.median(values)
        print(f"{name:<30} {middle:>8.2f} {min(values):>8.2f} {max(values):>8.2f}")
    print(f"{'reference: session timeout':<30} {session:>8.2f}")
    print(f"{'reference: Faust default':<30} {60.0:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
