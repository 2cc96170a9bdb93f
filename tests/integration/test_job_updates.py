"""A unit on an incident is told what a later alarm changed, in order with its jobs, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from consumers.auth import Role
from consumers.push import PushTopics
from consumers.push.protocol import ErrorCode, ErrorFrame, OkFrame
from dispatch.events import (
    AssignmentKind,
    ClassifiedAlarm,
    IncidentState,
    IncidentTiming,
    Party,
    PartyState,
    PlaceType,
    Priority,
    SourceKind,
)
from dispatch.lifecycle import Incident
from dispatch.lifecycle.merging import update_notices
from dispatch.settings import Settings
from tests.integration import test_push_gateway
from tests.integration.principals import make_caller
from tests.integration.test_push_gateway import gateway, job_for, produce, unit_client
from tests.integration.test_stand_down import answer

# The gateway tests' fixtures (a migrated pool, fresh topics, a producer), used as they are.
pool = test_push_gateway.pool
topics = test_push_gateway.topics
producer = test_push_gateway.producer


async def test_an_update_follows_the_job_once_and_is_not_a_job_to_answer(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    job = job_for(unit.unit)
    incident = Incident(
        incident_id=job.incident_id,
        state=IncidentState.DISPATCHED,
        priority=Priority.P1,
        category=job.category,
        units_needed=2,
        position=job.position,
        place_type=PlaceType.ENTERPRISE,
        summary=job.summary,
        timing=IncidentTiming(),
        attempt=1,
        parties=(
            Party(
                unit_id=job.unit_id,
                assignment_id=job.assignment_id,
                role=job.role,
                kind=job.kind,
                state=PartyState.ACCEPTED,
            ),
        ),
    )
    now = datetime.now(UTC)
    later = ClassifiedAlarm(
        alarm_id=uuid.uuid4(),
        incident_id=job.incident_id,
        category=job.category,
        priority=Priority.P1,
        position=job.position,
        place_type=PlaceType.ENTERPRISE,
        received_at=now - timedelta(seconds=1),
        classified_at=now,
        text="仓库里还有两个人被困",
        source_kind=SourceKind.HOTLINE,
        source_id="hotline-1",
        reporter_phone="+86 139 0000 0001",
    )
    (update,) = update_notices(incident, later, reason="now P1, needs fire x2, medical x1")
    async with gateway(running_stack, pool, topics, group_id) as gw:
        # The update written twice (a replay): the unit sees the job, then the update, once.
        await produce(producer, topics.assignments, job, update, update)
        await test_push_gateway.eventually(lambda: test_push_gateway.count_rows(pool, unit.unit, 2))
        async with unit_client(gw, unit, last_acked_seq=0) as (c, resume):
            assert (resume.after_seq, resume.last_seq) == (0, 2)
            shown = await c.jobs(2)
            await c.nothing_more()
            refused = await answer(c, type="respond", seq=2, action="accept", ref="u")
            assert isinstance(refused, ErrorFrame), refused
            assert (refused.code, refused.ref) == (ErrorCode.NOT_A_JOB, "u")
            # The job it updates is answered as ever.
            assert isinstance(await answer(c, type="respond", seq=1, action="accept"), OkFrame)
    assert [(f.seq, f.assignment.kind) for f in shown] == [
        (1, AssignmentKind.ASSIGNMENT),
        (2, AssignmentKind.UPDATE),
    ]
    told = shown[1].assignment
    assert told == update
    assert (told.updates, told.text, told.reporter_phone) == (
        job.assignment_id,
        later.text,
        later.reporter_phone,
    )
