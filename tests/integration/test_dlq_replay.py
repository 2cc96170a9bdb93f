"""`dispatch dlq list` and `dispatch dlq replay` as an operator runs them, on the real parts.

The story of tests/integration: an alarm names a place the zone does not know yet; the real
classify stage dead-letters it and tells the commander; the sink's writer stores the dead
letter in the record; the operator lists it, replays it too early (it fails again, a new dead
letter that the list ties to the first), fixes the zone, replays the new one, and the route
stage sends a unit: the alarm is not taken for a duplicate. Replaying twice publishes once.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from cli.token_commands import cli_actor
from consumers.auth import Role, create_principal, history
from consumers.db import migrate
from consumers.dlq import dead_letter_subject
from consumers.sink.writer import SinkRecord, write_records
from dispatch.classify import default_rules_path, load_rules
from dispatch.events import (
    AssignmentKind,
    DeadLetter,
    IncidentState,
    Position,
    RawAlarm,
    SourceKind,
    decode,
    encode,
)
from dispatch.settings import Settings
from dispatch.triage import merge_into, provisional_incident_id, triage
from dispatch.zone import default_zone_path, load_zone
from infra.processes import free_port
from tests.integration.harness import WAIT_S, Harness, Seen, running_pipeline
from tests.integration.test_token_cli import Run

# A warehouse built after the zone file was written: alarms name it before the zone does.
NEW_PLACE = "wh-east-new"
NEW_PLACE_NAME = "东区新建物流仓库"
NEW_PLACE_TOML = f"""
[[places]]
id = "{NEW_PLACE}"
name = "{NEW_PLACE_NAME}"
type = "other"
position = {{ lat = 31.72, lon = 113.43 }}
"""
PATROL = "cd-patrol-2"  # the patrol of grid cd-g02, where the warehouse stands


@dataclass(frozen=True)
class Cli:
    """Runs `python -m cli` against one schema of the session's PostgreSQL and its Kafka."""

    postgres_url: str
    bootstrap: str
    state_dir: Path

    async def __call__(self, *args: str) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
        env |= {
            "DISPATCH_POSTGRES_URL": self.postgres_url,
            "DISPATCH_KAFKA_BOOTSTRAP": self.bootstrap,
            "DISPATCH_STATE_DIR": str(self.state_dir),
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=120)
        assert child.returncode is not None
        return Run(child.returncode, stdout.decode(), stderr.decode())

    async def listed(self, *args: str) -> list[dict[str, Any]]:
        """Return `dlq list --json` as data."""
        run = await self("dlq", "list", "--json", *args)
        assert run.code == 0, run.stderr
        entries: list[dict[str, Any]] = json.loads(run.stdout.splitlines()[-1])
        return entries


@dataclass(frozen=True)
class Record:
    """A fresh schema of the session's PostgreSQL, migrated: the record, its ledger, audit."""

    conn: asyncpg.Connection
    url: str

    async def store(self, *letters: DeadLetter, prefix: str) -> None:
        """Store dead letters as the sink does, through its writer."""
        result = await write_records(
            self.conn, [SinkRecord(prefix + "alarms.dlq", letter) for letter in letters]
        )
        assert result.dead_letters == len(letters)


@pytest.fixture
async def record(postgres_url: str) -> AsyncIterator[Record]:
    """Yield a fresh migrated schema and a URL whose connections use it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_url)
    # Schema names cannot be bind parameters; this one is generated here, never user input.
    await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
    await migrate(conn)
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield Record(conn, f"{postgres_url}{sep}search_path={schema}")
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
def cli(record: Record, bootstrap: str, tmp_path: Path) -> Cli:
    """Return a runner of the command line on the test's own schema."""
    return Cli(record.url, bootstrap, tmp_path / "state")


def unplaced(seen: Seen, alarm: RawAlarm) -> list[DeadLetter]:
    """Return the dead letters of alarm seen so far, oldest first."""
    mark = str(alarm.alarm_id).encode()
    return [
        d for d in seen.dead_letters if d.source_topic.endswith("alarms.raw") and mark in d.value
    ]


async def dead_lettered(h: Harness, alarm: RawAlarm, count: int) -> list[DeadLetter]:
    """Wait until the classify stage has dead-lettered alarm count times; return those."""
    seen = await h.wait_for(lambda s: len(unplaced(s, alarm)) >= count)
    return unplaced(seen, alarm)[:count]


async def raw_copies(settings: Settings, topic: str, alarm_id: uuid.UUID) -> int:
    """Count the records of alarm_id on topic, read from the beginning to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        found = 0
        deadline = time.monotonic() + WAIT_S  # a hang guard, not a performance bound
        for tp in tps:
            while await consumer.position(tp) < end[tp]:
                assert time.monotonic() < deadline, f"could not read {topic} to its end"
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found += sum(
                    1
                    for r in batch.get(tp, [])
                    if decode(RawAlarm, r.value or b"").alarm_id == alarm_id
                )
        return found
    finally:
        await consumer.stop()


def fixed_zone(tmp_path: Path) -> Path:
    """Write the demo zone with the new warehouse added; return its path."""
    path = tmp_path / "zone-fixed.toml"
    shipped = Path(str(default_zone_path())).read_text(encoding="utf-8")
    path.write_text(shipped + NEW_PLACE_TOML, encoding="utf-8")
    return path


async def test_an_unplaced_alarm_is_replayed_once_the_zone_knows_its_place(
    running_stack: Settings, record: Record, cli: Cli, tmp_path: Path
) -> None:
    prefix, app_id = f"t{uuid.uuid4().hex[:10]}.", f"test-{uuid.uuid4().hex[:10]}"
    raw_topic = prefix + "alarms.raw"
    async with running_pipeline(running_stack, app_id=app_id, prefix=prefix) as h:
        await h.report(PATROL, Position(lat=31.722, lon=113.43))
        await h.units_known()
        alarm = await h.raise_alarm(
            source_kind=SourceKind.HOTLINE,
            source_id="hotline",
            text=f"{NEW_PLACE_NAME}门口两个人在打架",
            place_id=NEW_PLACE,
            place_name=NEW_PLACE_NAME,
        )
        [first] = await dead_lettered(h, alarm, 1)
        assert first.reason.startswith("no position")
        assert first.stage == "classify"
        await record.store(first, prefix=prefix)

        [listed] = await cli.listed()
        assert listed["event_id"] == str(first.event_id)
        assert (listed["stage"], listed["status"]) == ("classify", "pending")
        assert listed["source_topic"] == raw_topic
        assert listed["value_preview"] == f"{NEW_PLACE_NAME}门口两个人在打架"
        table = await cli("dlq", "list")
        assert f"{first.event_id}  " in table.stdout
        assert "reason: no position" in table.stdout

        # Replayed before the zone was fixed: it fails again, as a dead letter of its own.
        early = await cli("dlq", "replay", str(first.event_id))
        assert early.code == 0, early.stderr
        assert f"{first.event_id}: published to {raw_topic}[" in early.stdout
        [_, again] = await dead_lettered(h, alarm, 2)
        assert again.event_id != first.event_id
        await record.store(again, prefix=prefix)

    twice = await cli("dlq", "replay", str(first.event_id))
    assert twice.code == 0, twice.stderr
    assert "already replayed" in twice.stdout
    assert "nothing published now" in twice.stdout
    newest, oldest = await cli.listed()
    assert (newest["event_id"], newest["replay_of"]) == (str(again.event_id), str(first.event_id))
    assert newest["status"] == "pending"
    assert oldest["status"].startswith("replayed ")
    assert oldest["replay"]["actor"] == cli_actor()
    assert [e["event_id"] for e in await cli.listed("--pending")] == [str(again.event_id)]

    # The zone learns the warehouse; the stages restart with it, where they stopped.
    fixed = running_stack.model_copy(update={"zone_file": fixed_zone(tmp_path)})
    await create_principal(
        record.conn, principal_id="duty-commander", role=Role.COMMANDER, name="值班长",
        actor="test",
    )  # fmt: skip
    async with running_pipeline(fixed, app_id=app_id, prefix=prefix) as h:
        done = await cli("dlq", "replay", str(again.event_id), "--actor", "duty-commander")
        assert done.code == 0, done.stderr
        assert f"{again.event_id}: published to {raw_topic}[" in done.stdout
        incident_id = provisional_incident_id(alarm.alarm_id)
        seen = await h.wait_for(
            lambda s: any(
                a.incident_id == incident_id and a.kind is AssignmentKind.ASSIGNMENT
                for a in s.assignments
            )
        )
        job = next(a for a in seen.assignments if a.incident_id == incident_id)
        assert (job.unit_id, job.category, job.place_name) == (PATROL, "fight", NEW_PLACE_NAME)
        dispatched = [
            c
            for c in seen.states
            if c.incident_id == incident_id and c.state is IncidentState.DISPATCHED
        ]
        assert dispatched[0].first_alarm_id == alarm.alarm_id

    # Published once per replay: the original, the early replay, the one that worked.
    assert await raw_copies(running_stack, raw_topic, alarm.alarm_id) == 3
    [early_audit] = await history(record.conn, subject=dead_letter_subject(first.event_id))
    assert (early_audit.action, early_audit.actor) == ("dlq.replay", cli_actor())
    assert early_audit.detail["source"] == f"{raw_topic}[{first.partition}]@{first.offset}"
    [audit] = await history(record.conn, subject=dead_letter_subject(again.event_id))
    assert (audit.action, audit.actor) == ("dlq.replay", "duty-commander")
    assert audit.detail["os_user"] == cli_actor()
    ledger = await record.conn.fetch("SELECT dead_letter_id, replays FROM dlq_replays")
    assert {(r["dead_letter_id"], r["replays"]) for r in ledger} == {
        (first.event_id, 1),
        (again.event_id, 1),
    }


def letter(
    value: bytes, *, topic: str = "alarms.raw", stage: str = "classify", **more: Any
) -> DeadLetter:
    """Return a dead letter of these bytes, captured the way the stages capture one."""
    fields: dict[str, Any] = {
        "source_topic": topic,
        "partition": 0,
        "offset": int(uuid.uuid4().int % 1_000_000),
        "key": b"hotline",
        "value": value,
        "reason": "no position, and neither place_id, place_name, enterprise_id nor the text "
        "names a place this zone knows",
        "stage": stage,
        "failed_at": datetime.now(UTC),
    }
    return DeadLetter.capture(**(fields | more))


async def test_bad_ids_unknown_ids_and_unreplayable_letters_get_clear_errors(
    record: Record, cli: Cli
) -> None:
    malformed = await cli("dlq", "replay", "not-an-id", "12")
    line = malformed.one_line_error(2)
    assert "'not-an-id', '12': not a dead letter id" in line

    nobody = uuid.uuid4()
    unknown = await cli("dlq", "replay", str(nobody))
    assert f"{nobody}: unknown: no dead letter {nobody} in the record" in unknown.one_line_error(1)

    cut = letter(b'{"text": "' + "有人打架".encode() * 100 + b'"}', max_value_bytes=64)
    command = letter(b"{}", topic="commander.commands", stage="route", reason="already resolved")
    await record.store(cut, command, prefix="")
    refused = await cli("dlq", "replay", str(cut.event_id), "--force")
    assert "value was cut short" in refused.one_line_error(1)
    refused = await cli("dlq", "replay", str(command.event_id))
    assert "the commander gives it again" in refused.one_line_error(1)
    assert await record.conn.fetchval("SELECT count(*) FROM dlq_replays") == 0

    await create_principal(
        record.conn, principal_id="desk-x", role=Role.DESK, enterprise_id="ent-x", name="desk",
        actor="test",
    )  # fmt: skip
    desk = await cli("dlq", "replay", str(cut.event_id), "--actor", "desk-x")
    assert "'desk-x' is a desk principal" in desk.one_line_error(2)
    ghost = await cli("dlq", "replay", str(cut.event_id), "--actor", "nobody-at-all")
    assert "no such principal" in ghost.one_line_error(2)


async def test_kafka_away_records_no_replay(record: Record, cli: Cli) -> None:
    stuck = letter('{"text": "有人打架"}'.encode())
    await record.store(stuck, prefix="")
    away = Cli(cli.postgres_url, f"127.0.0.1:{free_port()}", cli.state_dir)
    failed = await away("dlq", "replay", str(stuck.event_id))
    assert "did not take the record" in failed.one_line_error(1)
    assert await record.conn.fetchval("SELECT count(*) FROM dlq_replays") == 0
    assert await history(record.conn, subject=dead_letter_subject(stuck.event_id)) == []
    [entry] = await cli.listed()
    assert entry["status"] == "pending"


async def test_list_filters_by_stage_time_and_count(record: Record, cli: Cli) -> None:
    old = letter(b"{}", stage="merge", failed_at=datetime.now(UTC) - timedelta(days=3))
    newer = [letter(f'{{"text": "第{n}个"}}'.encode()) for n in range(3)]
    await record.store(old, *newer, prefix="")
    everything = await cli.listed()
    assert [e["event_id"] for e in everything][-1] == str(old.event_id)
    assert len(everything) == 4
    assert [e["stage"] for e in await cli.listed("--stage", "merge")] == ["merge"]
    assert len(await cli.listed("--since", "1d")) == 3
    assert len(await cli.listed("--limit", "2")) == 2
    bad = await cli("dlq", "list", "--since", "last tuesday")
    assert bad.code == 2
    assert "neither an age" in bad.stderr


async def test_an_alarm_placed_by_the_commander_meanwhile_is_not_replayed(
    record: Record, cli: Cli
) -> None:
    zone, rules = load_zone(default_zone_path()), load_rules(default_rules_path())
    unplaced_alarm = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        source_kind=SourceKind.HOTLINE,
        source_id="hotline",
        text=f"{NEW_PLACE_NAME}门口两个人在打架",
        place_id=NEW_PLACE,
    )
    stuck = letter(encode(unplaced_alarm))
    await record.store(stuck, prefix="")
    # The commander placed it on the map: intake wrote it again with a position, the stages
    # classified it, and the sink recorded both (docs/events.md, "A placed alarm").
    placed = unplaced_alarm.model_copy(
        update={"place_id": None, "position": Position(lat=31.72, lon=113.43)}
    )
    located = triage(zone, rules, placed, now=datetime.now(UTC))
    classified, _ = merge_into(located, None, window=timedelta(minutes=10))
    await write_records(
        record.conn,
        [SinkRecord("alarms.raw", unplaced_alarm), SinkRecord("alarms.classified", classified)],
    )
    [entry] = await cli.listed()
    assert entry["status"] == f"handled: its alarm reached incident {classified.incident_id}"
    assert await cli.listed("--pending") == []
    forced = await cli("dlq", "replay", str(stuck.event_id), "--force")
    assert forced.code == 0, forced.stderr
    assert (
        f"nothing published: its alarm {unplaced_alarm.alarm_id} already reached" in forced.stdout
    )
    assert await record.conn.fetchval("SELECT count(*) FROM dlq_replays") == 0
