"""`dispatch seed-history` on the real PostgreSQL: the record holds the generated history, once.

The command runs as a person runs it, against a schema of its own, with Kafka pointed at a
port where nothing listens: the history goes into the record through the sink's writer and
never near a topic.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from cli.seed_history_command import this_month
from dispatch.classify import default_rules_path, load_rules
from dispatch.events import IncidentState
from dispatch.history import generate, plan_history
from dispatch.zone import default_zone_path, load_zone
from infra.processes import free_port
from tests.integration.test_dlq_replay import Cli, Record
from tests.integration.test_dlq_replay import record as record

TIMELINE_TOPICS = {
    "alarms.classified",
    "incidents.state",
    "dispatch.assignments",
    "responses.events",
    "commander.commands",
    "commander.outcomes",
}


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Return the rows of each record table."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM record_alarms) AS record_alarms, "
        "(SELECT count(*) FROM record_incidents) AS record_incidents, "
        "(SELECT count(*) FROM record_events) AS record_events, "
        "(SELECT count(*) FROM record_units) AS record_units"
    )
    assert row is not None
    return dict(row)


async def test_a_small_history_is_written_once_and_only_once(
    record: Record, tmp_path: Path
) -> None:
    zone = load_zone(default_zone_path())
    end = this_month(ZoneInfo(zone.timezone))
    options = ["--months", "2", "--per-day", "4", "--seed", "5", "--end", str(end)]
    plan = plan_history(zone, seed=5, end=end, months=2, per_day=4.0)
    expected = list(generate(plan, zone, load_rules(default_rules_path())))
    topics = Counter(topic for month in expected for topic, _ in month.records())
    incidents = sum(len(month.incidents) for month in expected)
    no_kafka = Cli(record.url, f"127.0.0.1:{free_port()}", tmp_path / "state")

    first = await no_kafka("seed-history", *options)
    assert first.code == 0, first.stderr
    assert f"{expected[0].month:%Y-%m}  " in first.stdout
    assert "year on year" not in first.stdout  # two months hold no year on year
    assert "this is demo data" in first.stdout
    stored = await counts(record.conn)
    assert stored["record_alarms"] == topics["alarms.raw"]
    assert stored["record_incidents"] == incidents
    assert stored["record_events"] == sum(topics[t] for t in TIMELINE_TOPICS)
    assert stored["record_units"] > 0
    assert await record.conn.fetchval("SELECT count(*) FROM record_incidents WHERE is_open") == 0
    states = {
        r["state"] for r in await record.conn.fetch("SELECT DISTINCT state FROM record_incidents")
    }
    assert states <= {IncidentState.RESOLVED, IncidentState.CANCELLED}
    demo = await record.conn.fetchval(
        "SELECT count(*) FROM record_alarms WHERE received_at < $1::date", end
    )
    assert demo == topics["alarms.raw"]  # all of it before the live record begins

    again = await no_kafka("seed-history", *options)
    assert again.code == 0, again.stderr
    assert "written: 0 new rows" in again.stdout
    assert await counts(record.conn) == stored

    other = await no_kafka("seed-history", *options[:-4], "--seed", "6", "--end", str(end))
    line = other.one_line_error(1)
    assert "already holds the demo history of --seed 5 --months 2" in line
    assert await counts(record.conn) == stored
    runs = await record.conn.fetch(
        "SELECT action, detail->>'seed' AS seed FROM audit_log WHERE subject = 'history:demo' "
        "ORDER BY id"
    )
    assert [(r["action"], r["seed"]) for r in runs] == [
        ("history.seed", "5"),
        ("history.seeded", "5"),
        ("history.seed", "5"),
        ("history.seeded", "5"),
    ]


async def test_bad_options_are_refused_before_anything_is_written(
    record: Record, tmp_path: Path
) -> None:
    cli = Cli(record.url, f"127.0.0.1:{free_port()}", tmp_path / "state")
    late = await cli("seed-history", "--end", "2999-01-01")
    assert "--end 2999-01-01" in late.one_line_error(2)
    mid = await cli("seed-history", "--end", "2024-03-15")
    assert "first day of a month" in mid.one_line_error(2)
    months = await cli("seed-history", "--months", "0")
    assert "--months is from 1" in months.one_line_error(2)
    assert await record.conn.fetchval("SELECT count(*) FROM record_alarms") == 0
    assert await record.conn.fetchval("SELECT count(*) FROM audit_log") == 0
