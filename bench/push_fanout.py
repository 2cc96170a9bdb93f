"""Many unit connections on one push gateway: connection memory, push latency, pushes per second.

Run: `python -m bench.push_fanout [--connections 2000] [--client-processes 2] [--rate 500]
[--seconds 10] [--burst 10000] [--no-ack]` from the repository root. It starts its own Kafka
broker and PostgreSQL server through the project's launcher (a temporary state directory, free
ports) and stops them at the end. The gateway runs in one process, the clients in others, so
that they do not share one event loop; every push takes the real path: an Assignment produced
to Kafka (key unit_id) → the outbox writer → `unit_outbox` → the unit's websocket. Latency is
the receive time on the client minus the assignment's `dispatched_at`, stamped when it was
produced (millisecond precision, truncated). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect

from bench.child import Child
from consumers.auth import Role, create_principal, issue_token
from consumers.db import migrate
from consumers.push import PushGateway, PushTopics
from consumers.push.gc_tuning import GcTuning
from consumers.push.store import connection
from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    Position,
    Priority,
    encode,
    key_of,
)
from dispatch.settings import Settings
from infra import stack
from infra.topics import TopicDecl, ensure_topics

PREFIX = "bench."
GROUP = "bench-push-outbox"


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass(frozen=True)
class Spec:
    """What a child process needs: where everything is, and the file of unit tokens."""

    bootstrap: str
    postgres_url: str
    tokens_file: str
    ack: bool
    port: int = 0


# -- the gateway process ------------------------------------------------------------------------


class FullCollections:
    """Record when the gateway's full (generation 2) garbage collections ran, and how long."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []  # (ended at, seconds)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.time(), time.perf_counter() - self._started))


async def serve(spec: Spec) -> None:
    """Run one gateway until stdin closes; print its port, and at the end its full GCs."""
    raise_fd_limit()
    collections = FullCollections()
    gc.callbacks.append(collections)
    # The same settings (DISPATCH_* variables included) and garbage collector tuning as
    # `python -m consumers.push`.
    settings = Settings(kafka_bootstrap=spec.bootstrap)
    pool = await asyncpg.create_pool(spec.postgres_url, min_size=2, max_size=20)
    topics = PushTopics.with_prefix(PREFIX)
    try:
        async with GcTuning.from_settings(settings) as tuning:
            async with PushGateway(settings, pool, topics=topics, group_id=GROUP, port=0) as gw:
                collections.pauses.clear()  # the start-up collection is not the gateway's
                print(f"ready {gw.port}", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            pauses = list(collections.pauses)
            # Every connection is closed now: what a sweep frees is the cyclic garbage that
            # freezing kept alive (with freezing off, what the collector had not reached yet).
            frozen = gc.get_freeze_count()
            started = time.perf_counter()
            swept = tuning.sweep()
            sweep_ms = (time.perf_counter() - started) * 1000
    finally:
        await pool.close()
    ended = {"pauses": pauses, "frozen": frozen, "swept": swept, "sweep_ms": sweep_ms}
    print(json.dumps(ended), flush=True)


# -- a client process ---------------------------------------------------------------------------


class Clients:
    """Many unit connections in one process, counting and timing what they receive."""

    def __init__(self, spec: Spec, tokens: list[str]) -> None:
        self.spec = spec
        self.tokens = tokens
        self.received = 0
        self.latencies: list[float] = []
        self.first = self.last = 0.0
        self.connected = 0
        self.all_connected = asyncio.Event()
        self.progress = asyncio.Event()
        self.sockets: list[ClientConnection] = []

    async def run_one(self, token: str, handshakes: asyncio.Semaphore) -> None:
        async with handshakes:
            ws = await connect(
                f"ws://127.0.0.1:{self.spec.port}/",
                additional_headers={"Authorization": f"Bearer {token}"},
                proxy=None,
                compression=None,
                open_timeout=300,
                ping_interval=None,
            )
            self.sockets.append(ws)
            await ws.recv()  # welcome
            await ws.send('{"type":"hello","last_acked_seq":0}')
            await ws.recv()  # resume
        self.connected += 1
        if self.connected == len(self.tokens):
            self.all_connected.set()
        async for message in ws:
            now = time.time()
            frame = json.loads(message)
            if frame["type"] != "job":
                continue
            dispatched = datetime.fromisoformat(frame["assignment"]["dispatched_at"])
            self.latencies.append(now - dispatched.timestamp())
            self.first = self.first or now
            self.last = now
            self.received += 1
            self.progress.set()
            if self.spec.ack:
                await ws.send(f'{{"type":"ack","seq":{frame["seq"]}}}')

    async def wait_for(self, count: int) -> dict[str, Any]:
        """Wait until count jobs have arrived in all; return this phase's figures, then reset."""
        while self.received < count:
            self.progress.clear()
            await self.progress.wait()
        phase = {"latencies": self.latencies, "first": self.first, "last": self.last}
        self.latencies, self.first, self.last = [], 0.0, 0.0
        return phase


async def run_clients(spec: Spec, tokens: list[str]) -> None:
    """Connect one unit per token, then answer `expect N` lines with the figures."""
    raise_fd_limit()
    clients = Clients(spec, tokens)
    handshakes = asyncio.Semaphore(64)
    tasks = [asyncio.create_task(clients.run_one(t, handshakes)) for t in clients.tokens]
    await clients.all_connected.wait()
    print("connected", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command, _, value = line.strip().partition(" ")
        if command == "expect":
            print(json.dumps(await clients.wait_for(int(value))), flush=True)
    for ws in clients.sockets:
        await ws.close()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- the driver ---------------------------------------------------------------------------------


def assignment_for(unit_id: str) -> Assignment:
    """Return a job for a unit, dispatched now."""
    now = datetime.now(UTC)
    return Assignment(
        assignment_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        unit_id=unit_id,
        kind=AssignmentKind.ASSIGNMENT,
        role=AssignmentRole.PRIMARY,
        attempt=1,
        priority=Priority.P2,
        category=Category.FIGHT,
        position=Position(lat=31.70, lon=113.40),
        dispatched_at=now,
        ack_deadline=now + timedelta(minutes=1),
        summary="P2 fight at Chengdong Pharma, gate 2",
    )


async def add_units(postgres_url: str, count: int, path: Path) -> list[str]:
    """Create count patrol principals with a token each; write [unit, secret] pairs to path."""
    pool = await asyncpg.create_pool(postgres_url, min_size=4, max_size=16)
    async with connection(pool) as conn:
        await migrate(conn)

    async def add(n: int) -> tuple[str, str]:
        unit = f"bench-unit-{n:05d}"
        async with connection(pool) as conn:
            await create_principal(
                conn, principal_id=unit, role=Role.PATROL, name=unit, unit_id=unit, actor="bench"
            )
            token = await issue_token(conn, principal_id=unit, label="bench", actor="bench")
        return unit, token.secret.get_secret_value()

    pairs = await asyncio.gather(*(add(n) for n in range(count)))
    await pool.close()
    await asyncio.to_thread(path.write_text, json.dumps(pairs))
    return [unit for unit, _ in pairs]


class OtherLoad:
    """Measure how many cores processes outside this benchmark kept busy (the machine is shared)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = str(workdir)

    def _ours(self) -> dict[int, float]:
        """Return CPU seconds per process: the driver and its children, Kafka, PostgreSQL."""
        roots = [psutil.Process()]
        for process in psutil.process_iter(["cmdline"]):
            if any(self.workdir in part for part in process.info["cmdline"] or ()):
                roots.append(process)
        seconds = {}
        for root in roots:
            try:
                for process in (root, *root.children(recursive=True)):
                    times = process.cpu_times()
                    seconds[process.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return seconds

    def snapshot(self) -> tuple[float, float, dict[int, float]]:
        """Return the wall clock, the machine's busy CPU seconds and ours per process."""
        times = psutil.cpu_times()
        busy = times.user + times.nice + times.system + times.irq + times.softirq
        return time.time(), busy, self._ours()

    @staticmethod
    def cores(
        before: tuple[float, float, dict[int, float]], after: tuple[float, float, dict[int, float]]
    ) -> float:
        """Return the cores others used on average between two snapshots."""
        ours = sum(s - before[2].get(pid, 0.0) for pid, s in after[2].items())
        return max(0.0, (after[1] - before[1] - ours) / (after[0] - before[0]))


@dataclass
class Phase:
    """One phase's figures."""

    name: str
    pushes: int
    produce_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    pushes_per_s: float
    acked_s: float | None
    server_cpu_s: float
    others: float
    started: float
    ended: float
    gc_max_ms: float = 0.0


async def phase(
    name: str,
    producer: AIOKafkaProducer,
    clients: list[Child],
    targets: list[tuple[int, str]],
    expected: list[int],
    server: psutil.Process,
    rate: float | None,
    outbox: asyncpg.Pool | None,
    load: OtherLoad,
) -> Phase:
    """Produce one job per target (at rate per second, or at once) and collect the figures."""
    load_before = load.snapshot()
    cpu = server.cpu_times()
    started = time.time()
    sent = []
    for n, (client, unit) in enumerate(targets):
        if rate is not None and n % max(1, int(rate / 100)) == 0:
            # Paced in 10 ms steps.
            await asyncio.sleep(max(0.0, started + n / rate - time.time()))
        job = assignment_for(unit)
        topic = PREFIX + "dispatch.assignments"
        sent.append(await producer.send(topic, encode(job), key=key_of(job)))
        expected[client] += 1
    await asyncio.gather(*sent)
    produced = time.time() - started
    for client, child in enumerate(clients):
        child.say(f"expect {expected[client]}")
    results = [json.loads(await child.line()) for child in clients]
    acked_s = None
    if outbox is not None:
        # Every ack stamped (and its event on Kafka): the whole path, not only the push. Polled:
        # the database has nothing to wait on.
        unacked = "SELECT count(*) FROM unit_outbox WHERE acked_at IS NULL"
        while True:
            if not await outbox.fetchval(unacked):
                break
            await asyncio.sleep(0.1)
        acked_s = round(time.time() - started, 2)
    used = server.cpu_times()
    latencies = sorted(ms for r in results for ms in (x * 1000 for x in r["latencies"]))
    last = max(r["last"] for r in results)
    return Phase(
        name=name,
        pushes=len(targets),
        produce_s=round(produced, 2),
        p50_ms=round(statistics.median(latencies), 1),
        p99_ms=round(latencies[int(0.99 * (len(latencies) - 1))], 1),
        max_ms=round(latencies[-1], 1),
        pushes_per_s=round(len(targets) / (last - started)),
        acked_s=acked_s,
        server_cpu_s=round(used.user + used.system - cpu.user - cpu.system, 1),
        others=round(OtherLoad.cores(load_before, load.snapshot()), 2),
        started=started,
        ended=time.time(),
    )


async def drive(settings: Settings, args: argparse.Namespace, workdir: Path) -> None:
    """Set up units and processes, measure memory, run the paced and the burst phase."""
    raise_fd_limit()
    bootstrap, url = settings.bootstrap_servers, stack.postgres_url(settings)
    names = PushTopics.with_prefix(PREFIX)
    await ensure_topics(
        bootstrap, [TopicDecl(name, settings.kafka_partitions) for name in astuple(names)]
    )
    tokens = workdir / "tokens.json"
    started = time.time()
    units = await add_units(url, args.connections, tokens)
    print(f"{len(units)} units with tokens in {time.time() - started:.1f} s", flush=True)
    spec = Spec(bootstrap=bootstrap, postgres_url=url, tokens_file=str(tokens), ack=args.ack)
    server_child = await Child.start("bench.push_fanout", "--serve", json.dumps(asdict(spec)))
    port = int((await server_child.line()).split()[1])
    server = psutil.Process(server_child.process.pid)
    await asyncio.sleep(2)
    rss_before = server.memory_info().rss
    spec = Spec(**{**asdict(spec), "port": port})
    per = -(-args.connections // args.client_processes)
    started = time.time()
    clients = [
        await Child.start(
            "bench.push_fanout", "--clients", json.dumps(asdict(spec)), str(start), str(per)
        )
        for start in range(0, args.connections, per)
    ]
    for child in clients:
        assert await child.line() == "connected"
    connect_s = time.time() - started
    await asyncio.sleep(2)
    rss_after = server.memory_info().rss
    owner = {unit: n // per for n, unit in enumerate(units)}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    expected = [0] * len(clients)
    load = OtherLoad(workdir)
    rng = random.Random(7)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1) if args.ack else None
    try:
        paced = [
            (owner[u], u) for u in (rng.choice(units) for _ in range(args.rate * args.seconds))
        ]
        burst = [(owner[u], u) for u in (rng.choice(units) for _ in range(args.burst))]
        phases = [
            await phase("paced", producer, clients, paced, expected, server, args.rate, pool, load),
            await phase("burst", producer, clients, burst, expected, server, None, pool, load),
        ]
    finally:
        if pool is not None:
            await pool.close()
        await producer.stop()
        for child in clients:
            await child.stop()
        ended = json.loads(await server_child.stop())
    pauses = ended["pauses"]
    for p in phases:
        p.gc_max_ms = round(
            max((s for at, s in pauses if p.started <= at <= p.ended), default=0) * 1000
        )
    longest = max((s for _, s in pauses), default=0.0)
    print(f"\ncommand: python -m bench.push_fanout {' '.join(sys.argv[1:])}")
    print(
        f"connections {args.connections} in {args.client_processes} client processes, "
        f"acks {'on' if args.ack else 'off'}, connected in {connect_s:.1f} s"
    )
    print(
        f"gateway RSS {rss_before / 2**20:.1f} MiB before, {rss_after / 2**20:.1f} MiB after: "
        f"{(rss_after - rss_before) / args.connections / 1024:.1f} KiB per connection"
    )
    print(f"gateway full GCs: {len(pauses)}, the longest {longest * 1000:.0f} ms")
    print(
        f"after the clients left: {ended['frozen']} objects frozen; a sweep freed "
        f"{ended['swept']} in {ended['sweep_ms']:.0f} ms"
    )
    print(
        f"{'phase':<6} {'pushes':>7} {'produce s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'pushes/s':>8} {'acked s':>7} {'gw cpu s':>8} {'gc max ms':>9} "
        f"{'others':>6}"
    )
    for p in phases:
        print(
            f"{p.name:<6} {p.pushes:>7} {p.produce_s:>9} {p.p50_ms:>7} {p.p99_ms:>7} "
            f"{p.max_ms:>7} {p.pushes_per_s:>8} {p.acked_s or '-':>7} {p.server_cpu_s:>8} "
            f"{p.gc_max_ms:>9} {p.others:>6}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Start the infrastructure, run the benchmark, stop the infrastructure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--rate", type=int, default=500, help="pushes per second, paced phase")
    parser.add_argument("--seconds", type=int, default=10, help="length of the paced phase")
    parser.add_argument("--burst", type=int, default=10_000, help="pushes produced at once")
    parser.add_argument("--no-ack", dest="ack", action="store_false", help="clients do not ack")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--clients", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(Spec(**json.loads(args.serve))))
        return
    if args.clients:
        spec = Spec(**json.loads(args.clients[0]))
        start, count = int(args.clients[1]), int(args.clients[2])
        pairs = json.loads(Path(spec.tokens_file).read_text())[start : start + count]
        asyncio.run(run_clients(spec, [secret for _, secret in pairs]))
        return
    print(f"open files limit raised to {raise_fd_limit()}")
    with tempfile.TemporaryDirectory(prefix="bench-push-") as state:
        settings = stack.private_settings(Path(state))
        stack.up(settings, print)
        try:
            asyncio.run(drive(settings, args, Path(state)))
        finally:
            stack.down(settings, print)


if __name__ == "__main__":
    main()
