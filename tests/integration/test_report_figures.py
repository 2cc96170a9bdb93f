"""Every report figure on the real PostgreSQL, against a small record worked out by hand.

The fixture writes a handful of alarms and incidents into the record tables (migration 0012)
of a fresh schema: November 2026 in the demo zone's time (Asia/Shanghai), its month before
and the November a year before, with incidents just either side of each boundary. Each
expected figure below is computed by hand in the comments, never by running SQL again.
percentile_cont interpolates: the p-th percentile of n sorted values sits at position
p * (n - 1), between the two values around it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from consumers.db import migrate
from consumers.reports import summarize
from dispatch.reports import Period, Report
from dispatch.reports.model import IntervalStat
from dispatch.zone import Zone, default_zone_path, load_zone

CST = ZoneInfo("Asia/Shanghai")
NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=CST), datetime(2026, 12, 1, tzinfo=CST))
NOW = datetime(2026, 12, 6, 10, tzinfo=UTC)


def local(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """Return a time of 2026 in China Standard Time (year 2025 via .replace)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=CST)


def iso(at: datetime) -> str:
    """Write an instant as the incidents.state event writes it: UTC, milliseconds, Z."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@dataclass
class Party:
    """One party of an incident; times in seconds after the incident was received."""

    unit_id: str
    kind: str = "assignment"
    dispatched: float | None = None
    delivered: float | None = None
    acked: float | None = None
    accepted: float | None = None
    arrived: float | None = None

    def as_json(self, received: datetime) -> dict[str, Any]:
        """Return the party as the incidents.state event writes it."""

        def at(seconds: float | None) -> str | None:
            return None if seconds is None else iso(received + timedelta(seconds=seconds))

        return {
            "unit_id": self.unit_id,
            "assignment_id": str(uuid.uuid4()),
            "role": "mutual_aid" if self.kind == "mutual_aid_alert" else "primary",
            "kind": self.kind,
            "state": "accepted" if self.accepted is not None else "dispatched",
            "dispatched_at": at(self.dispatched),
            "delivered_at": at(self.delivered),
            "acked_at": at(self.acked),
            "accepted_at": at(self.accepted),
            "arrived_at": at(self.arrived),
        }


@dataclass
class Incident:
    """An incident row; milestones in seconds after received (None: never reached)."""

    category: str
    received: datetime
    grid_id: str | None = None
    place_name: str | None = None
    enterprise_id: str | None = None
    state: str = "resolved"
    # False: the record missed the first change, so received_at is null (opened_at counts).
    received_known: bool = True
    classified: float | None = None
    dispatched: float | None = None
    delivered: float | None = None
    accepted: float | None = None
    on_scene: float | None = None
    resolved: float | None = None
    closed: float | None = None
    parties: Sequence[Party] = field(default_factory=tuple)


async def insert_incident(conn: asyncpg.Connection, incident: Incident) -> None:
    """Write one record_incidents row."""
    r = incident.received

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else r + timedelta(seconds=seconds)

    await conn.execute(
        """
        INSERT INTO record_incidents (
            incident_id, state, priority, category, enterprise_id, grid_id, place_name,
            received_at, classified_at, dispatched_at, delivered_at, accepted_at, on_scene_at,
            resolved_at, closed_at, is_open, parties, opened_at, updated_at, last_event_id
        ) VALUES ($1, $2, 'P2', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                  $16::jsonb, $17, $17, $18)
        """,
        uuid.uuid4(),
        incident.state,
        incident.category,
        incident.enterprise_id,
        incident.grid_id,
        incident.place_name,
        r if incident.received_known else None,
        at(incident.classified),
        at(incident.dispatched),
        at(incident.delivered),
        at(incident.accepted),
        at(incident.on_scene),
        at(incident.resolved),
        at(incident.closed),
        incident.state not in ("resolved", "cancelled"),
        json.dumps([p.as_json(r) for p in incident.parties]),
        r,
        uuid.uuid4(),
    )


async def insert_alarms(conn: asyncpg.Connection, at: datetime, **by_source: int) -> None:
    """Write alarms received at one instant, so many of each source kind."""
    rows = [
        (uuid.uuid4(), at, kind, f"{kind}-source", "有人报警")
        for kind, n in by_source.items()
        for _ in range(n)
    ]
    await conn.executemany(
        "INSERT INTO record_alarms (alarm_id, received_at, source_kind, source_id, text) "
        "VALUES ($1, $2, $3, $4, $5)",
        rows,
    )


# November 2026, the period reported. I1..I7 in the module docstring's order.
NOVEMBER_INCIDENTS = (
    # I1: theft at the station square, 08:10; processed in 30 s, arrived after 170 s.
    Incident(
        "theft",
        local(11, 3, 8, 10),
        "cd-g01",
        "随州站广场",
        classified=2,
        dispatched=30,
        delivered=35,
        accepted=50,
        on_scene=170,
        resolved=1000,
        closed=1000,
        parties=[
            Party("cd-patrol-1", dispatched=30, delivered=35, acked=40, accepted=50, arrived=170)
        ],
    ),
    # I2: robbery at the same square, 08:40; processed in 90 s (over NFPA), arrived after 400 s
    # (over the urban 5 minutes).
    Incident(
        "robbery",
        local(11, 3, 8, 40),
        "cd-g01",
        "随州站广场",
        classified=4,
        dispatched=90,
        delivered=100,
        accepted=110,
        on_scene=400,
        resolved=2000,
        closed=2000,
        parties=[Party("cd-patrol-1", dispatched=90, delivered=100, accepted=110, arrived=400)],
    ),
    # I3: fight in Xihe (suburban), 21:00; arrived after 290 s, then cancelled at 600 s.
    Incident(
        "fight",
        local(11, 10, 21),
        "xh-g01",
        "淅河滨河公园",
        state="cancelled",
        classified=1,
        dispatched=20,
        delivered=22,
        accepted=40,
        on_scene=290,
        closed=600,
        parties=[Party("xh-patrol-1", dispatched=20, delivered=22, accepted=40, arrived=290)],
    ),
    # I4: dispute in Xihe, 14:30, still open: the mediator was sent after 45 s.
    Incident(
        "dispute",
        local(11, 15, 14, 30),
        "xh-g01",
        state="dispatched",
        classified=3,
        dispatched=45,
        parties=[Party("mediator-1", dispatched=45)],
    ),
    # I5: hazard at an enterprise, 09:05: the grid's patrol and three guards alerted for aid.
    Incident(
        "hazard",
        local(11, 20, 9, 5),
        "cd-g01",
        "齐星专汽",
        enterprise_id="ent-qixing",
        classified=2,
        dispatched=10,
        delivered=12,
        accepted=20,
        on_scene=55,
        resolved=900,
        closed=900,
        parties=[
            Party("cd-patrol-2", dispatched=10, delivered=12, acked=15, accepted=20, arrived=55),
            Party(
                "guard-a", "mutual_aid_alert", dispatched=10, delivered=11, acked=25, arrived=120
            ),
            Party("guard-b", "mutual_aid_alert", dispatched=10),
            Party("guard-c", "mutual_aid_alert", dispatched=10, acked=40),
        ],
    ),
    # I6: dispute at an enterprise, 23:59 on the 28th; dispatched at exactly 60 s, settled by
    # the commander at 300 s, nobody ever answered.
    Incident(
        "dispute",
        local(11, 28, 23, 59),
        "cd-g01",
        enterprise_id="ent-hengtong",
        classified=1,
        dispatched=60,
        resolved=300,
        closed=300,
        parties=[Party("mediator-1", dispatched=60)],
    ),
    # I7: nothing matched, outside every grid, waiting for the commander. Its first change was
    # missed, so only opened_at says when: 00:30 on 1 November local, still 31 October in UTC.
    Incident(
        "other",
        local(11, 1, 0, 30),
        None,
        state="escalated",
        received_known=False,
        classified=2,
    ),
)

# Outside the period: 00:00 on 1 December local is the period's end, excluded.
LATE = Incident("theft", local(12, 1), "cd-g01", classified=1, dispatched=5)

# October 2026, the month before: theft 3 (one a second before midnight on the 31st), robbery
# 1, intrusion 1, fight 2, dispute 1 (settled).
OCTOBER_INCIDENTS = (
    Incident("theft", local(10, 31, 23, 59, 59), "cd-g02"),
    Incident("theft", local(10, 5, 10), "cd-g02"),
    Incident("theft", local(10, 6, 10), "cd-g03"),
    Incident("robbery", local(10, 7, 10), "cd-g03"),
    Incident("intrusion", local(10, 8, 10), "xh-g02"),
    Incident("fight", local(10, 9, 10), "xh-g02"),
    Incident("fight", local(10, 10, 10), "xh-g02"),
    Incident("dispute", local(10, 31, 23, 30), "xh-g02", resolved=600),
)

# November 2025, the year before: theft 2, robbery 1, intrusion 1, fight 4, dispute 1.
YEAR_BEFORE_INCIDENTS = tuple(
    Incident(category, local(11, day, 12).replace(year=2025), "cd-g04")
    for day, category in enumerate(
        ["theft", "theft", "robbery", "intrusion", "fight", "fight", "fight", "fight", "dispute"],
        start=1,
    )
)


async def write_record(conn: asyncpg.Connection) -> None:
    """Write the hand-built record into the record tables of conn's schema."""
    for incident in (*NOVEMBER_INCIDENTS, LATE, *OCTOBER_INCIDENTS, *YEAR_BEFORE_INCIDENTS):
        await insert_incident(conn, incident)
    # November 2026: 10 alarms, the first at the period's first instant; one at its end, out.
    await insert_alarms(conn, local(11, 1), desk=1)
    await insert_alarms(conn, local(11, 12, 9), desk=2, guard=2, sensor=4, hotline=1)
    await insert_alarms(conn, local(12, 1), desk=1)
    # October 2026: 8 alarms. November 2025: 20.
    await insert_alarms(conn, local(10, 20, 9), desk=5, sensor=3)
    await insert_alarms(conn, local(11, 20, 9).replace(year=2025), desk=10, sensor=10)


@pytest.fixture
async def record(pg: asyncpg.Connection) -> asyncpg.Connection:
    """Return a connection to a fresh schema holding the hand-built record."""
    await migrate(pg)
    await write_record(pg)
    return pg


@pytest.fixture
def zone() -> Zone:
    """Return the demo zone: cd-* grids urban, xh-* suburban, Asia/Shanghai."""
    return load_zone(default_zone_path())


async def november(conn: asyncpg.Connection, zone: Zone) -> Report:
    """Return the report of November 2026."""
    return await summarize(conn, zone=zone, period=NOVEMBER, now=NOW)


async def test_counts(record: asyncpg.Connection, zone: Zone) -> None:
    counts = (await november(record, zone)).counts
    # I1..I7: the December theft is out, I7 is in by its opened_at.
    assert (counts.alarms, counts.incidents, counts.cancelled) == (10, 7, 1)
    assert {c.key: c.count for c in counts.by_source_kind} == {
        "desk": 3,
        "guard": 2,
        "sensor": 4,
        "hotline": 1,
        "commander": 0,
    }
    categories = {c.key: c.count for c in counts.by_category if c.count}
    assert categories == {
        "theft": 1,
        "robbery": 1,
        "fight": 1,
        "dispute": 2,
        "hazard": 1,
        "other": 1,
    }
    grids = {c.key: c.count for c in counts.by_grid if c.count}
    assert grids == {"cd-g01": 4, "xh-g01": 2, None: 1}
    assert [(c.key, c.count) for c in counts.by_place] == [
        (None, 3),
        ("随州站广场", 2),
        ("淅河滨河公园", 1),
        ("齐星专汽", 1),
    ]
    # Local hours: 08:10, 08:40, 21:00, 14:30, 09:05, 23:59 and 00:30.
    hours = {h.hour: h.count for h in counts.by_hour if h.count}
    assert hours == {8: 2, 21: 1, 14: 1, 9: 1, 23: 1, 0: 1}


async def test_changes_month_on_month_and_year_on_year(
    record: asyncpg.Connection, zone: Zone
) -> None:
    changes = {c.key: c for c in (await november(record, zone)).changes}

    def row(key: str) -> tuple[int, int, int, float | None, float | None]:
        c = changes[key]
        return (c.current, c.month_before, c.year_before, c.mom_pct, c.yoy_pct)

    # Alarms: 10 now, 8 in October (+25 %), 20 a year before (-50 %).
    assert row("alarms") == (10, 8, 20, 25.0, -50.0)
    # Criminal (robbery, theft, intrusion): 1 + 1 + 0 = 2; October 1 + 3 + 1 = 5 (-60 %);
    # a year before 1 + 2 + 1 = 4 (-50 %).
    assert row("criminal") == (2, 5, 4, -60.0, -50.0)
    # Robbery and theft: 2; October 4 (-50 %); a year before 3: (2 - 3) / 3 = -33.3 %.
    current, month, year, mom, yoy = row("robbery_theft")
    assert (current, month, year, mom) == (2, 4, 3, -50.0)
    assert yoy == pytest.approx(-100 / 3)
    # Public order (fight): 1; October 2 (-50 %); a year before 4 (-75 %).
    assert row("public_order") == (1, 2, 4, -50.0, -75.0)
    # Disputes: 2; October 1 (+100 %); a year before 1 (+100 %).
    assert row("dispute") == (2, 1, 1, 100.0, 100.0)
    # Hazards: none before, so no percentage.
    assert row("hazard") == (1, 0, 0, None, None)


def spread(stat: IntervalStat) -> tuple[int, float | None, float | None, float | None]:
    """Return n and the three percentiles of one interval's row."""
    return (stat.n, stat.p50_s, stat.p90_s, stat.p99_s)


async def test_response_intervals(record: asyncpg.Connection, zone: Zone) -> None:
    stats = (await november(record, zone)).intervals
    overall = {s.interval: spread(s) for s in stats if s.scope == "overall"}
    # received → classified: 2, 4, 1, 3, 2, 1, 2 -> 1 1 2 2 2 3 4; p50 at 3: 2; p90 at 5.4:
    # 3 + 0.4 * 1 = 3.4; p99 at 5.94: 3.94.
    assert overall["classify"] == pytest.approx((7, 2.0, 3.4, 3.94))
    # classified → dispatched: 28, 86, 19, 42, 8, 59 -> 8 19 28 42 59 86; p50 at 2.5: 35;
    # p90 at 4.5: 59 + 0.5 * 27 = 72.5; p99 at 4.95: 59 + 0.95 * 27 = 84.65.
    assert overall["dispatch"] == pytest.approx((6, 35.0, 72.5, 84.65))
    # dispatched → delivered: 5, 10, 2, 2 -> 2 2 5 10; p50 3.5, p90 at 2.7: 8.5, p99 9.85.
    assert overall["deliver"] == pytest.approx((4, 3.5, 8.5, 9.85))
    # delivered → accepted: 15, 10, 18, 8 -> 8 10 15 18; p50 12.5, p90 17.1, p99 17.91.
    assert overall["accept"] == pytest.approx((4, 12.5, 17.1, 17.91))
    # accepted → arrived: 120, 290, 250, 35 -> 35 120 250 290; p50 185, p90 278, p99 288.8.
    assert overall["travel"] == pytest.approx((4, 185.0, 278.0, 288.8))
    # arrived → closed: 830, 1600, 310, 845 -> 310 830 845 1600; p50 837.5,
    # p90 845 + 0.7 * 755 = 1373.5, p99 845 + 0.97 * 755 = 1577.35.
    assert overall["on_scene"] == pytest.approx((4, 837.5, 1373.5, 1577.35))
    # received → dispatched: 10 20 30 45 60 90; p50 37.5, p90 75, p99 88.5.
    assert overall["processing"] == pytest.approx((6, 37.5, 75.0, 88.5))
    # received → arrived: 55 170 290 400; p50 230, p90 367, p99 396.7.
    assert overall["response"] == pytest.approx((4, 230.0, 367.0, 396.7))

    grid = {(s.key, s.interval): spread(s) for s in stats if s.scope == "grid"}
    # cd-g01 arrivals 55 170 400: p50 170, p90 at 1.8: 170 + 0.8 * 230 = 354, p99 395.4.
    assert grid[("cd-g01", "response")] == pytest.approx((3, 170.0, 354.0, 395.4))
    assert grid[("xh-g01", "response")] == pytest.approx((1, 290.0, 290.0, 290.0))
    # xh-g01 processing 20 45: p50 32.5, p90 42.5, p99 44.75.
    assert grid[("xh-g01", "processing")] == pytest.approx((2, 32.5, 42.5, 44.75))
    # I7, outside every grid: classified 2 s after it was opened.
    assert grid[(None, "classify")] == pytest.approx((1, 2.0, 2.0, 2.0))
    assert (None, "processing") not in grid

    unit = {(s.key, s.interval): spread(s) for s in stats if s.scope == "unit"}
    # cd-patrol-1 on I1 and I2, from its own party: processing 30 90 (p50 60, p90 84,
    # p99 89.4); response 170 400 (p50 285, p90 377, p99 397.7); classified → its dispatch
    # 28 86 (p50 57, p90 80.2, p99 85.42); its delivery → its acceptance 15 10 (p50 12.5).
    assert unit[("cd-patrol-1", "processing")] == pytest.approx((2, 60.0, 84.0, 89.4))
    assert unit[("cd-patrol-1", "response")] == pytest.approx((2, 285.0, 377.0, 397.7))
    assert unit[("cd-patrol-1", "dispatch")] == pytest.approx((2, 57.0, 80.2, 85.42))
    assert unit[("cd-patrol-1", "accept")] == pytest.approx((2, 12.5, 14.5, 14.95))
    # Its arrival → the incident's close: 830 and 1600.
    assert unit[("cd-patrol-1", "on_scene")] == pytest.approx((2, 1215.0, 1523.0, 1592.3))
    # The mediator was sent at 45 s and 60 s and never arrived.
    assert unit[("mediator-1", "processing")] == pytest.approx((2, 52.5, 58.5, 59.85))
    assert ("mediator-1", "response") not in unit
    assert unit[("cd-patrol-2", "travel")] == pytest.approx((1, 35.0, 35.0, 35.0))
    # Guards alerted for mutual aid are not units sent: they have their own figure.
    assert not any(key == "guard-a" for key, _ in unit)


async def test_compliance(record: asyncpg.Connection, zone: Zone) -> None:
    c = (await november(record, zone)).compliance
    # Dispatched: I1..I6. Within 60 s: 30, 20, 45, 10 and exactly 60; not I2's 90.
    nfpa = c.nfpa_1225
    assert (nfpa.dispatched, nfpa.within, nfpa.never_dispatched) == (6, 5, 1)
    assert nfpa.share == pytest.approx(5 / 6)
    assert nfpa.met is False
    urban, suburban = c.arrival_norms
    # cd-g01 is urban: 170 and 55 within 5 minutes, 400 not.
    assert (urban.area, urban.arrived, urban.within) == ("urban", 3, 2)
    # xh-g01 is suburban: 290 within 10 minutes.
    assert (suburban.area, suburban.arrived, suburban.within, suburban.share) == (
        "suburban",
        1,
        1,
        1.0,
    )
    assert c.arrived_outside_grids == 0
    # Arrivals 55, 170, 290, 400: one inside 1 minute, two inside 3, three inside 5.
    assert [(k.minutes, k.arrived, k.within, k.share) for k in c.circles] == [
        (1, 4, 1, 0.25),
        (3, 4, 2, 0.5),
        (5, 4, 3, 0.75),
    ]
    # No arrival: I4, I6, I7.
    assert c.not_arrived == 3


async def test_mutual_aid(record: asyncpg.Connection, zone: Zone) -> None:
    m = (await november(record, zone)).mutual_aid
    # Enterprise incidents: I5 (patrol + 3 guards) and I6 (the mediator, who never answered).
    assert (m.enterprise_incidents, m.incidents_alerted, m.parties_alerted) == (2, 1, 3)
    # I5: the patrol (ack 15 s), guard-a (ack 25 s) and guard-c (ack 40 s) answered.
    assert (m.parties_answered, m.mutual_aid_answered) == (3, 2)
    assert [(p.parties, p.incidents) for p in m.answered_per_incident] == [(0, 1), (3, 1)]
    assert m.mean_answered_per_incident == 1.5
    answer = {k.kind: (k.n, k.p50_s, k.p90_s, k.p99_s) for k in m.answer_s}
    # Guards 25 and 40: p50 32.5, p90 38.5, p99 39.85; the patrol 15.
    assert answer["mutual_aid_alert"] == pytest.approx((2, 32.5, 38.5, 39.85))
    assert answer["assignment"] == pytest.approx((1, 15.0, 15.0, 15.0))
    arrival = {k.kind: (k.n, k.p50_s) for k in m.arrival_s}
    assert arrival == {"assignment": (1, 55.0), "mutual_aid_alert": (1, 120.0)}


async def test_grid_screening(record: asyncpg.Connection, zone: Zone) -> None:
    rows = (await november(record, zone)).screening
    assert [r.month for r in rows] == ["2026-11"] * 8
    found = {
        r.grid_id: (r.disputes, r.disputes_settled, r.hazards, r.hazards_resolved)
        for r in rows
        if r.disputes or r.hazards
    }
    # cd-g01: I6 (settled) and I5 (resolved); xh-g01: I4, still open.
    assert found == {"cd-g01": (1, 1, 1, 1), "xh-g01": (1, 0, 0, 0)}
    by_grid = {r.grid_id: r.settled_share for r in rows}
    assert (by_grid["cd-g01"], by_grid["xh-g01"], by_grid["xh-g02"]) == (1.0, 0.0, None)


async def test_screening_months_follow_local_time(record: asyncpg.Connection, zone: Zone) -> None:
    autumn = Period(datetime(2026, 10, 1, tzinfo=CST), datetime(2026, 12, 1, tzinfo=CST))
    rows = (await summarize(record, zone=zone, period=autumn, now=NOW)).screening
    assert len(rows) == 16  # two months, eight grids
    october = {r.grid_id: (r.disputes, r.disputes_settled) for r in rows if r.month == "2026-10"}
    # The dispute of 31 October 23:30 local (15:30 UTC) is October's, and was settled.
    assert october["xh-g02"] == (1, 1)
    assert sum(d for d, _ in october.values()) == 1


async def test_an_empty_record_reports_zeros_not_errors(pg: asyncpg.Connection, zone: Zone) -> None:
    await migrate(pg)
    built = await november(pg, zone)
    assert (built.counts.alarms, built.counts.incidents) == (0, 0)
    assert all(s.n == 0 and s.p50_s is None for s in built.intervals)
    assert built.compliance.nfpa_1225.share is None
    assert built.compliance.nfpa_1225.met is None
    assert built.mutual_aid.mean_answered_per_incident is None
    assert {c.key: c.yoy_pct for c in built.changes}["alarms"] is None
