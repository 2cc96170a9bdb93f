"""The read API's board: GET /v1/board with 1,000 open incidents, against the bare SQL.

Run from the repository root:

    python -m bench.read_api --open 1000 --closed 20000 --requests 300

Starts its own Kafka and PostgreSQL (a temporary state directory, free ports), fills the record
through the sink's own writer (consumers.sink.writer.write_records) with the demo zone's
incidents: --open open ones (each with its alarm, its state changes, one to three parties and
their jobs) and --closed resolved ones over the past months, and a report of every zone unit;
then starts the intake service as `dispatch run` does (`python -m consumers.intake`, a process
of its own) and asks GET /v1/board as a commander, one request at a time, --requests times
after a warm-up. The topics hold records the sink's group has committed, so every request
takes the whole path: the sink's progress asked of Kafka, both tables read in one snapshot,
every row checked by the policy and written as JSON.

Baselines in the same run, from this process:

- `rows`: the open incidents' and the units' rows as stored, fetched with asyncpg, nothing
  built: what the database itself costs.
- `sql`: the board's own two queries (consumers.intake.read_queries: PostgreSQL writes each
  incident's JSON) in their repeatable-read transaction.
- `progress`: the sink-progress check alone (consumers.intake.record_progress, its clients
  warm), which the board pays on every request.

Latencies are wall-clock per request on this client (HTTP over loopback included for the
board). The client and the server share the machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumers.auth import Role, create_principal, issue_token
from consumers.db import migrate
from consumers.db.pool import connection
from consumers.intake import read_queries
from consumers.intake.record_progress import RecordProgress
from consumers.sink.writer import SinkRecord, write_records
from dispatch.events import (
    INCIDENTS_STATE,
    UNITS_STATUS,
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    ClassifiedAlarm,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    Position,
    Priority,
    RawAlarm,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    encode,
    key_of,
    spec_for,
)
from dispatch.settings import Settings
from dispatch.zone import Place, Zone, default_zone_path, load_zone
from infra import stack
from infra.processes import free_port
from infra.topics import catalog_declarations, ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[1]
SINK_GROUP = "bench-read-sink"
WRITE_BATCH = 2000
WARM_UP = 20
# The open incidents' rows as they are stored, nothing built: the database's own part.
BARE_SQL = (
    "SELECT * FROM record_incidents WHERE is_open "
    "ORDER BY priority, coalesce(received_at, opened_at), incident_id"
)
CATEGORIES = (Category.FIGHT, Category.THEFT, Category.DISPUTE, Category.INTRUSION,
              Category.FIRE, Category.MEDICAL, Category.SUSPICIOUS_PERSON,
              Category.HAZARD)  # fmt: skip
PRIORITIES = (Priority.P1, Priority.P2, Priority.P2, Priority.P3, Priority.P3, Priority.P4)
OPEN_STATES = (IncidentState.DISPATCHED, IncidentState.ACCEPTED, IncidentState.EN_ROUTE,
               IncidentState.ON_SCENE, IncidentState.ESCALATED, IncidentState.MERGED)  # fmt: skip


class Filler:
    """Incidents of the demo zone as the pipeline writes them, seeded."""

    def __init__(self, zone: Zone, seed: int) -> None:
        self.zone = zone
        self.rng = random.Random(seed)
        self.places: list[Place] = list(zone.places)
        self.units = [unit.id for unit in zone.units]

    def _id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def incident(self, at: datetime, *, closed: bool) -> list[EventModel]:
        """Return one incident's events: its alarm, jobs and state changes."""
        rng = self.rng
        place = rng.choice(self.places)
        position = Position(
            lat=place.position.lat + rng.uniform(-0.001, 0.001),
            lon=place.position.lon + rng.uniform(-0.001, 0.001),
            accuracy_m=15.0,
        )
        grid = self.zone.grid_at(position)
        enterprise = place.id if place.type == "enterprise" else None
        category, priority = rng.choice(CATEGORIES), rng.choice(PRIORITIES)
        alarm_id, incident_id = self._id(), self._id()
        text = f"{place.name}: 有人报警 / a call about {category} at {place.name}"
        caller, phone = "王丽", f"+86 722 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}"
        classified_at, sent_at = at + timedelta(milliseconds=60), at + timedelta(seconds=1)
        raw = RawAlarm(
            alarm_id=alarm_id, received_at=at, source_kind=SourceKind.DESK,
            source_id=f"desk-{place.id}"[:64], enterprise_id=enterprise, text=text,
            position=position, place_name=place.name, reporter_name=caller,
            reporter_phone=phone,
        )  # fmt: skip
        alarm = ClassifiedAlarm(
            alarm_id=alarm_id, incident_id=incident_id, category=category, priority=priority,
            required_capabilities=("patrol",), position=position,
            grid_id=grid.id if grid else None, place_id=place.id, place_name=place.name,
            place_type=place.type, enterprise_id=enterprise, received_at=at,
            classified_at=classified_at, text=text, source_kind=SourceKind.DESK,
            source_id=raw.source_id, reporter_name=caller, reporter_phone=phone,
        )  # fmt: skip
        jobs = [
            Assignment(
                assignment_id=self._id(),
                incident_id=incident_id,
                unit_id=unit_id,
                kind=AssignmentKind.ASSIGNMENT,
                role=AssignmentRole.PRIMARY if n == 0 else AssignmentRole.SUPPORT,
                attempt=1,
                priority=priority,
                category=category,
                position=position,
                place_name=place.name,
                eta_s=rng.uniform(60, 600),
                dispatched_at=sent_at,
                ack_deadline=sent_at + timedelta(seconds=30),
                summary=f"{priority} {category} at {place.name}"[:200],
                text=text[:500],
                reporter_name=caller,
                reporter_phone=phone,
            )
            for n, unit_id in enumerate(rng.sample(self.units, rng.randint(1, 3)))
        ]
        state = IncidentState.RESOLVED if closed else rng.choice(OPEN_STATES)
        accepted = sent_at + timedelta(seconds=rng.uniform(5, 40))
        parties = tuple(
            Party(
                unit_id=job.unit_id,
                assignment_id=job.assignment_id,
                role=job.role,
                kind=job.kind,
                state=PartyState.ACCEPTED,
                dispatched_at=sent_at,
                delivered_at=sent_at + timedelta(milliseconds=300),
                acked_at=sent_at + timedelta(seconds=2),
                accepted_at=accepted,
            )
            for job in jobs
        )

        def change(
            entered: IncidentState, when: datetime, **timing: datetime
        ) -> IncidentStateChange:
            return IncidentStateChange(
                event_id=self._id(), incident_id=incident_id, state=entered, actor="system",
                at=when, priority=priority, category=category, position=position,
                place_name=place.name, enterprise_id=enterprise, first_alarm_id=alarm_id,
                alarm_count=rng.randint(1, 4), text=text, reporter_name=caller,
                reporter_phone=phone, parties=parties,
                timing=IncidentTiming(received_at=at, classified_at=classified_at,
                                      dispatched_at=sent_at, **timing),
            )  # fmt: skip

        changes = [
            change(IncidentState.DISPATCHED, sent_at),
            change(state, accepted + timedelta(seconds=1), accepted_at=accepted),
        ]
        return [raw, alarm, *jobs, *changes]

    def report(self, unit_id: str, at: datetime) -> UnitStatus:
        """Return a unit's report near its home, some seconds old."""
        unit = self.zone.units[self.units.index(unit_id)]
        home = self.zone.home_position(unit)
        return UnitStatus(
            event_id=self._id(), unit_id=unit_id, status=UnitAvailability.AVAILABLE,
            position=Position(lat=home.lat + self.rng.uniform(-0.005, 0.005), lon=home.lon,
                              accuracy_m=10.0),
            reported_at=at - timedelta(seconds=self.rng.uniform(0, 60)),
        )  # fmt: skip


async def fill(pool: asyncpg.Pool, zone: Zone, *, open_count: int, closed: int) -> None:
    """Write the incidents and the units' reports through the sink's writer."""
    filler = Filler(zone, seed=11)
    now = datetime.now(UTC)
    events: list[EventModel] = []
    for n in range(closed):
        events += filler.incident(
            now - timedelta(days=180) + timedelta(minutes=12 * n), closed=True
        )
    for n in range(open_count):
        events += filler.incident(
            now - timedelta(hours=4) + timedelta(seconds=13 * n), closed=False
        )
    events += [filler.report(unit_id, now) for unit_id in filler.units]
    async with connection(pool) as conn:
        for at in range(0, len(events), WRITE_BATCH):
            batch = [SinkRecord(spec_for(type(e)).name, e) for e in events[at : at + WRITE_BATCH]]
            await write_records(conn, batch)
        await conn.execute("ANALYZE")


async def sink_caught_up(bootstrap: str, zone: Zone, partitions: int) -> None:
    """Put records on the board's topics and commit them for the sink's group, as a sink that
    stored them would: each board request then asks Kafka and finds the record complete."""
    filler = Filler(zone, seed=12)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for unit_id in filler.units:
            report = filler.report(unit_id, datetime.now(UTC))
            await producer.send_and_wait(UNITS_STATUS.name, encode(report), key=key_of(report))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=SINK_GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in (INCIDENTS_STATE.name, UNITS_STATUS.name)
            for p in range(partitions)
        ]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: end for tp, end in ends.items()})
    finally:
        await consumer.stop()


async def commander_token(pool: asyncpg.Pool) -> str:
    """Store a commander and return a token's secret."""
    async with connection(pool) as conn:
        await create_principal(
            conn, principal_id="bench-commander", role=Role.COMMANDER,
            name="Bench commander", actor="bench",
        )  # fmt: skip
        token = await issue_token(
            conn, principal_id="bench-commander", label="bench", actor="bench"
        )
    return token.secret.get_secret_value()


def start_intake(settings: Settings, url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the intake service as `dispatch run` would, in a process of its own."""
    env = os.environ | {
        "DISPATCH_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "DISPATCH_POSTGRES_URL": url,
        "DISPATCH_INTAKE_PORT": str(port),
        "DISPATCH_SINK_GROUP": SINK_GROUP,
        "DISPATCH_RATE_LIMIT_PER_MINUTE": "100000",
    }
    return subprocess.Popen(  # our own interpreter and module
        [sys.executable, "-m", "consumers.intake"], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip


async def timed(count: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    """Return the milliseconds of count calls, one after another, after a warm-up."""
    for _ in range(WARM_UP):
        await call()
    spent = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - start) * 1000)
    return spent


def row(name: str, ms: Sequence[float]) -> str:
    ordered = sorted(ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"{name:<10} {len(ms):>5} {statistics.median(ms):>8.1f} {at(0.90):>8.1f} "
        f"{at(0.99):>8.1f} {max(ms):>8.1f}"
    )


async def measure(args: argparse.Namespace, settings: Settings) -> None:
    """Fill the record, start intake, time the board and the baselines; print the figures."""
    zone = load_zone(default_zone_path())
    url = stack.postgres_url(settings)
    await ensure_topics(settings.bootstrap_servers, catalog_declarations(settings))
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        started = time.perf_counter()
        await fill(pool, zone, open_count=args.open, closed=args.closed)
        print(f"filled the record in {time.perf_counter() - started:.1f} s")
        await sink_caught_up(settings.bootstrap_servers, zone, settings.kafka_partitions)
        secret = await commander_token(pool)
        port = free_port()
        log = settings.state_dir / "intake.log"
        intake = start_intake(settings, url, port, log)
        try:
            await board_figures(args, settings, pool, secret, port)
        except BaseException:
            print(log.read_text(errors="replace")[-3000:])
            raise
        finally:
            intake.terminate()
            intake.wait(timeout=30)
    finally:
        await pool.close()


async def board_figures(
    args: argparse.Namespace, settings: Settings, pool: asyncpg.Pool, secret: str, port: int
) -> None:
    """Time GET /v1/board and the baselines, and print them."""
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as http:
        deadline = time.monotonic() + 120
        while True:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "intake did not start"
            await asyncio.sleep(0.2)
        first = (await http.get("/v1/board", headers=headers)).json()
        assert first["complete"] is True, first["behind"]
        size = len((await http.get("/v1/board", headers=headers)).content)
        print(
            f"board: {len(first['incidents'])} open incidents, {len(first['units'])} units, "
            f"{size / 1024:.0f} KiB of JSON, complete={first['complete']}"
        )

        async def board() -> None:
            response = await http.get("/v1/board", headers=headers)
            assert response.status_code == 200

        board_ms = await timed(args.requests, board)

    async def rows() -> None:
        async with connection(pool) as conn:
            await conn.fetch(BARE_SQL)
            await read_queries.units(conn, after=None, limit=None)

    async def sql() -> None:
        async with connection(pool) as conn, conn.transaction(readonly=True):
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await read_queries.board_json(conn)
            await read_queries.units(conn, after=None, limit=None)

    progress = RecordProgress(
        bootstrap=settings.bootstrap_servers,
        group_id=SINK_GROUP,
        topics=[INCIDENTS_STATE.name, UNITS_STATUS.name],
    )

    async def check() -> None:
        assert (await progress.caught_up()).complete

    rows_ms = await timed(args.requests, rows)
    sql_ms = await timed(args.requests, sql)
    check_ms = await timed(args.requests, check)
    await progress.close()
    print(f"\n{'ms':<10} {'n':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    print(row("board", board_ms))
    print(row("rows", rows_ms))
    print(row("sql", sql_ms))
    print(row("progress", check_ms))


def main() -> int:
    """Start a stack of the benchmark's own, measure, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.read_api", description=__doc__)
    parser.add_argument("--open", type=int, default=1000, help="open incidents on the board")
    parser.add_argument("--closed", type=int, default=20_000, help="resolved ones, history")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-read-") as state:
        settings = stack.private_settings(Path(state))
        stack.up(settings, print)
        try:
            asyncio.run(measure(args, settings))
        finally:
            stack.down(settings, print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
