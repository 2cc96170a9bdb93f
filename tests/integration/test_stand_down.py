"""Units are told when a job is withdrawn, in order with their jobs, and cannot answer it.

The gateway part runs on the real Kafka and PostgreSQL with stand-downs written as the route
stage writes them; the whole-way part runs the pipeline, intake and the gateway together (see
test_gateway_e2e) and has a commander take units off an incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from consumers.auth import Role, history
from consumers.push import PushTopics
from consumers.push.protocol import (
    CommandOutcomeFrame,
    ErrorCode,
    ErrorFrame,
    IncidentFrame,
    JobFrame,
    OkFrame,
    ServerFrame,
    UnitStatusFrame,
)
from dispatch.events import (
    Assignment,
    AssignmentKind,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    PlaceType,
    ResponseAction,
    ResponseEvent,
    UnitAvailability,
    UnitStatus,
)
from dispatch.lifecycle import Incident
from dispatch.lifecycle.transitions import withdraw
from dispatch.settings import Settings
from tests.integration import test_push_gateway
from tests.integration.principals import connection, make_caller
from tests.integration.test_gateway_e2e import (
    THEFT,
    Board,
    board,
    party_state,
    raise_alarm,
    running_system,
    take_job,
)
from tests.integration.test_push_gateway import (
    Client,
    gateway,
    job_for,
    outbox,
    produce,
    read_all,
    unit_client,
)

# The gateway tests' fixtures (a migrated pool, fresh topics, a producer), used as they are.
pool = test_push_gateway.pool
topics = test_push_gateway.topics
producer = test_push_gateway.producer


def stand_down_of(job: Assignment, reason: str) -> Assignment:
    """Return the stand-down the lifecycle makes for one job."""
    incident = Incident(
        incident_id=job.incident_id,
        state=IncidentState.DISPATCHED,
        priority=job.priority,
        category=job.category,
        units_needed=1,
        position=job.position,
        place_type=PlaceType.OTHER,
        summary=job.summary,
        timing=IncidentTiming(),
        attempt=job.attempt,
    )
    party = Party(
        unit_id=job.unit_id,
        assignment_id=job.assignment_id,
        role=job.role,
        kind=job.kind,
        state=PartyState.DISPATCHED,
    )
    (down,) = withdraw(incident, (party,), reason=reason, at=datetime.now(UTC)).stand_downs
    return down


async def answer(c: Client, **frame: object) -> ErrorFrame | OkFrame:
    """Send a frame and return the gateway's ok or error for it."""
    await c.send(**frame)
    reply = await c.frame()
    assert isinstance(reply, ErrorFrame | OkFrame), reply
    return reply


async def test_a_stand_down_follows_its_job_once_in_order_and_the_job_can_no_longer_be_answered(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    job, other = job_for(unit.unit), job_for(unit.unit)
    down = stand_down_of(job, "cancelled by commander-1: false alarm")
    async with gateway(running_stack, pool, topics, group_id) as gw:
        # Written while the unit is offline: it comes back to the job, then its stand-down.
        await produce(producer, topics.assignments, job, other, down)
        await test_push_gateway.eventually(lambda: test_push_gateway.count_rows(pool, unit.unit, 3))
        for _ in range(2):  # a reconnect from scratch shows the same three, once each
            async with unit_client(gw, unit, last_acked_seq=0) as (c, resume):
                assert (resume.after_seq, resume.last_seq) == (0, 3)
                shown = await c.jobs(3)
                await c.nothing_more()
        assert [(f.seq, f.assignment) for f in shown] == [(1, job), (2, other), (3, down)]
        assert (down.kind, down.withdraws) == (AssignmentKind.STAND_DOWN, job.assignment_id)
        async with unit_client(gw, unit, last_acked_seq=0) as (c, _):
            await c.jobs(3)
            # The withdrawn job, by seq or by id, and the stand-down itself: refused.
            for named in ({"seq": 1}, {"assignment_id": str(job.assignment_id)}, {"seq": 3}):
                refused = await answer(c, type="respond", action="accept", ref="a", **named)
                assert isinstance(refused, ErrorFrame), refused
                assert (refused.code, refused.ref) == (ErrorCode.JOB_WITHDRAWN, "a")
            # The job that was not withdrawn is answered as ever.
            assert isinstance(await answer(c, type="respond", seq=2, action="accept"), OkFrame)
            await c.send(type="ack", seq=3)
            rows = await eventually_acked(pool, unit.unit, 3)
    assert [(r["kind"], r["acked_at"] is not None) for r in rows] == [
        ("assignment", True),
        ("assignment", True),
        ("stand_down", True),
    ]
    # The stand-down's receipt is its stamp: no response event names it, nor the refused job.
    published = await read_all(bootstrap, topics.responses, ResponseEvent)
    assert {(e.assignment_id, e.action) for e in published} == {
        (job.assignment_id, ResponseAction.ACK),
        (other.assignment_id, ResponseAction.ACK),
        (other.assignment_id, ResponseAction.ACCEPT),
    }
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"incident:{job.incident_id}")
    assert [(e.action, e.detail.get("kind")) for e in entries] == [
        ("assignment.ack", None),
        ("assignment.ack", "stand_down"),
    ]


async def eventually_acked(pool: asyncpg.Pool, unit_id: str, count: int) -> list[asyncpg.Record]:
    """Wait until the unit's first count rows are acknowledged; return its rows."""
    await test_push_gateway.eventually(lambda: test_push_gateway.stamped(pool, unit_id, count))
    return await outbox(pool, unit_id)


async def next_job(unit: Client, incident_id: uuid.UUID, kind: AssignmentKind) -> JobFrame:
    """Receive the unit's next job, which must be of kind for the incident."""
    frame = await unit.expect(JobFrame)
    assert (frame.assignment.incident_id, frame.assignment.kind) == (incident_id, kind)
    return frame


FIGHT = "仓库门口有人打架 / two men fighting at the warehouse gate"


async def test_a_commander_takes_units_off_and_each_is_told_and_is_sent_again(
    running_stack: Settings, postgres_url: str
) -> None:
    async with (
        running_system(running_stack, postgres_url) as system,
        board(system, system.commander, "commander") as commander,
        unit_client(system.gateway, system.first) as (first, _),
        unit_client(system.gateway, system.second) as (second, _),
    ):
        reports: list[UnitStatus] = []  # the units' reports the commander's board showed
        _, incident_id = await raise_alarm(system, system.desk, THEFT)
        job = await take_job(first, incident_id)

        # Reassigned: the first unit is told its job is withdrawn, and is free again.
        await command(
            commander,
            reports,
            incident_id,
            action="reassign",
            unit_id=system.second.unit,
            from_unit_id=system.first.unit,
            reason="held up at the station square",
        )
        down = await next_job(first, incident_id, AssignmentKind.STAND_DOWN)
        assert down.assignment.withdraws == job.assignment.assignment_id
        assert "held up at the station square" in (down.assignment.reason or "")
        late = await answer(first, type="respond", seq=job.seq, action="on_scene", ref="late")
        assert isinstance(late, ErrorFrame)
        assert late.code == ErrorCode.JOB_WITHDRAWN
        await first.send(type="ack", seq=down.seq)
        await freed(commander, reports, system.first.unit)

        # Cancelled: the second unit, sent by the reassign, is told and freed too.
        second_job = await take_job(second, incident_id)
        await command(commander, reports, incident_id, action="cancel", reason="false alarm")
        down = await next_job(second, incident_id, AssignmentKind.STAND_DOWN)
        assert down.assignment.withdraws == second_job.assignment.assignment_id
        await freed(commander, reports, system.second.unit)
        cancelled = await change(commander, lambda c: c.state is IncidentState.CANCELLED)
        assert party_state(cancelled, system.second.unit) is PartyState.CANCELLED

        # Free means routable: the next alarm there goes to the nearest, the first unit.
        _, next_incident = await raise_alarm(system, system.desk, FIGHT)
        await next_job(first, next_incident, AssignmentKind.ASSIGNMENT)
        # The route stage applied every command: nothing went to the dead-letter topic.
        assert system.harness.seen.dead_letters == []


def note(commander: Board, reports: list[UnitStatus], frame: ServerFrame) -> bool:
    """Keep an incident change or unit report the commander's channel showed (a command's
    outcome must say applied); tell if it was a board frame."""
    if isinstance(frame, IncidentFrame):
        commander.changes.append(frame.change)
    elif isinstance(frame, UnitStatusFrame):
        reports.append(frame.status)
    elif isinstance(frame, CommandOutcomeFrame):
        assert frame.outcome.result == "applied", frame.outcome
    else:
        return False
    return True


async def command(
    commander: Board, reports: list[UnitStatus], incident_id: uuid.UUID, **fields: str
) -> None:
    """Send a commander's command and check it is on Kafka, keeping what the board shows."""
    await commander.channel.send(
        type="command", command_id=str(uuid.uuid4()), incident_id=str(incident_id), **fields
    )
    while note(commander, reports, frame := await commander.channel.frame()):
        pass
    assert isinstance(frame, OkFrame), frame


async def change(
    commander: Board, check: Callable[[IncidentStateChange], bool]
) -> IncidentStateChange:
    """Return the first change the board showed (or shows next) that satisfies check."""
    # Incident changes and unit reports come from two topics, in no order between them.
    seen = [c for c in commander.changes if check(c)]
    return seen[0] if seen else await commander.until(check)


async def freed(commander: Board, reports: list[UnitStatus], unit_id: str) -> None:
    """Read the commander's channel until the route stage has reported unit_id available."""
    free = UnitAvailability.AVAILABLE
    while not any(r.unit_id == unit_id and r.status is free for r in reports):
        assert note(commander, reports, await commander.channel.frame())
