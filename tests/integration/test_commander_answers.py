"""A commander records a unit's answer given by radio: the commander channel's `respond`.

On the real Kafka and PostgreSQL, with real websocket clients, like test_push_gateway.py
(whose fixtures and helpers these tests share). docs/protocol.md, "Answers by radio".
"""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer

from consumers.auth import Role, history
from consumers.push import PushTopics
from consumers.push.actions import response_event_id
from consumers.push.protocol import ErrorCode, ErrorFrame, OkFrame, WelcomeFrame
from dispatch.events import ResponseAction, ResponseEvent
from dispatch.settings import Settings
from tests.integration.principals import connection, make_caller
from tests.integration.test_push_gateway import (
    client,
    gateway,
    ids,
    job_for,
    produce,
    read_all,
    unit_client,
)
from tests.integration.test_push_gateway import pool as pool
from tests.integration.test_push_gateway import producer as producer
from tests.integration.test_push_gateway import topics as topics
from tests.integration.test_stand_down import stand_down_of


async def test_a_commander_records_a_units_answer_as_the_unit_would(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    commander = await make_caller(pool, Role.COMMANDER)
    unit = await make_caller(pool, Role.PATROL)
    other = await make_caller(pool, Role.PATROL)
    job, theirs = job_for(unit.unit), job_for(other.unit)
    await produce(producer, topics.assignments, job, theirs)
    accept_id = response_event_id(job.assignment_id, ResponseAction.ACCEPT)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        client(gw, commander.secret) as board,
        unit_client(gw, unit) as (handheld, _),
    ):
        assert (await board.expect(WelcomeFrame)).channel == "commander"
        assert ids(await handheld.jobs(1)) == [job.assignment_id]

        # Without the unit it answers for, the frame names the field it lacks.
        await board.send(type="respond", assignment_id=job.assignment_id, action="accept", ref="r0")
        bad = await board.expect(ErrorFrame)
        assert (bad.code, bad.ref, [e.field for e in bad.errors]) == (
            ErrorCode.BAD_FRAME,
            "r0",
            ["unit_id"],
        )
        # The job must be the named unit's: another unit's job is no such job, by id or seq.
        for reference in ({"assignment_id": theirs.assignment_id}, {"seq": 2}):
            await board.send(
                type="respond", unit_id=unit.unit, action="accept", ref="r1", **reference
            )
            refused = await board.expect(ErrorFrame)
            assert (refused.code, refused.ref) == (ErrorCode.UNKNOWN_ASSIGNMENT, "r1")
        # A decline by radio needs its reason as the unit's own does.
        await board.send(type="respond", unit_id=unit.unit, seq=1, action="decline", ref="r2")
        assert [e.field for e in (await board.expect(ErrorFrame)).errors] == ["reason"]

        # The answer by radio: named by the unit's seq, the very event the unit would publish.
        await board.send(type="respond", unit_id=unit.unit, seq=1, action="accept", ref="r3")
        ok = await board.expect(OkFrame)
        assert (ok.of, ok.ref, ok.event_id) == ("respond", "r3", accept_id)
        # The unit's own accept, sent later from its phone, is that same event: applied once.
        await handheld.send(type="respond", seq=1, action="accept", ref="mine")
        assert (await handheld.expect(OkFrame)).event_id == accept_id
        await board.send(
            type="respond",
            unit_id=unit.unit,
            assignment_id=job.assignment_id,
            action="en_route",
            ref="r4",
        )
        en_route = await board.expect(OkFrame)

        # An ack is the device's own receipt: never the commander's.
        await board.send(type="ack", seq=1, ref="r5")
        wrong = await board.expect(ErrorFrame)
        assert (wrong.code, wrong.ref) == (ErrorCode.WRONG_CHANNEL, "r5")
        # A unit answers for itself only, whatever it names.
        await handheld.send(
            type="respond", unit_id=other.unit, assignment_id=theirs.assignment_id, action="accept"
        )
        assert (await handheld.expect(ErrorFrame)).code == ErrorCode.UNKNOWN_ASSIGNMENT

    events = [
        e for e in await read_all(bootstrap, topics.responses, ResponseEvent) if e.action != "ack"
    ]
    assert [(e.event_id, e.unit_id, e.action, e.actor) for e in events] == [
        (accept_id, unit.unit, ResponseAction.ACCEPT, commander.id),
        (en_route.event_id, unit.unit, ResponseAction.EN_ROUTE, commander.id),
    ]
    async with connection(pool) as conn:
        entries = await history(conn, subject=f"incident:{job.incident_id}")
    answers = [e for e in entries if e.action == "assignment.respond"]
    assert [(e.actor, e.detail["action"]) for e in answers] == [
        (commander.id, "accept"),
        (commander.id, "en_route"),
    ]
    assert not [e for e in entries if e.actor == commander.id and e.action == "assignment.ack"]


async def test_a_commander_cannot_answer_a_withdrawn_job_nor_its_stand_down(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    commander = await make_caller(pool, Role.COMMANDER)
    unit = await make_caller(pool, Role.PATROL)
    job = job_for(unit.unit)
    stand_down = stand_down_of(job, "cancelled by the commander")
    await produce(producer, topics.assignments, job, stand_down)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        unit_client(gw, unit) as (handheld, _),
        client(gw, commander.secret) as board,
    ):
        await board.expect(WelcomeFrame)
        assert len(await handheld.jobs(2)) == 2
        for seq in (1, 2):
            await board.send(type="respond", unit_id=unit.unit, seq=seq, action="accept")
            assert (await board.expect(ErrorFrame)).code == ErrorCode.JOB_WITHDRAWN
