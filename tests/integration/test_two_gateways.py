"""Two push gateways on one database and one Kafka cluster, as behind a load balancer
(docs/scaling.md): their outbox writers share a consumer group and split the partitions of
dispatch.assignments, and each LISTENs for the rows the other stores, so a unit gets its jobs
whichever gateway it is connected to. When one gateway stops mid-load, its units reconnect to
the other and resume: every job reaches its unit exactly once, in order.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from functools import partial

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from websockets.exceptions import ConnectionClosed

from consumers.auth import Role
from consumers.push import PushGateway, PushTopics
from consumers.push.protocol import JobFrame
from dispatch.settings import Settings
from tests.integration import test_push_gateway as push
from tests.integration.principals import make_caller

# The push gateway tests' fixtures (a fresh schema, fresh topics of two partitions, a producer).
pool = push.pool
topics = push.topics
producer = push.producer

UNITS_EACH = 3  # units connected to each gateway
JOBS = 12  # jobs per unit


async def test_a_unit_gets_its_jobs_from_the_other_gateways_writer(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    units = [await make_caller(pool, Role.PATROL) for _ in range(2 * UNITS_EACH)]
    sent = {u.unit: [push.job_for(u.unit) for _ in range(JOBS)] for u in units}
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(push.gateway(running_stack, pool, topics, group_id))
        second = await stack.enter_async_context(
            push.gateway(running_stack, pool, topics, group_id)
        )
        gateways = (first, second)
        # The group has split the two partitions: each writer stores one partition's jobs.
        await push.eventually(partial(split_between, first, second))
        clients = {}
        for unit in units:
            # Every unit connects to the gateway that does NOT store its jobs: each job reaches
            # its unit only through the other gateway's NOTIFY.
            writes = partition_of(unit.unit)
            where = next(gw for gw in gateways if writes not in gw.writer.partitions())
            clients[unit.unit], _ = await stack.enter_async_context(push.unit_client(where, unit))
        # Interleaved, as the route stage writes them: every unit's jobs in its own order.
        for k in range(JOBS):
            await push.produce(producer, topics.assignments, *(sent[u.unit][k] for u in units))
        for unit in units:
            shown = await clients[unit.unit].jobs(JOBS)
            assert push.seqs(shown) == list(range(1, JOBS + 1))
            assert push.ids(shown) == [a.assignment_id for a in sent[unit.unit]]
        for unit in units:
            await clients[unit.unit].nothing_more(within_s=0.5)


async def split_between(first: PushGateway, second: PushGateway) -> bool:
    """Tell whether each gateway's outbox writer holds one of the two partitions."""
    return len(first.writer.partitions()) == 1 and len(second.writer.partitions()) == 1


def partition_of(unit_id: str) -> int:
    """Return the partition of dispatch.assignments a unit's jobs go to (keyed by unit id)."""
    return int(DefaultPartitioner()(unit_id.encode(), [0, 1], [0, 1]))


async def test_one_gateway_stopped_mid_load_its_units_resume_on_the_other_exactly_once(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    moving = [await make_caller(pool, Role.PATROL) for _ in range(UNITS_EACH)]
    staying = [await make_caller(pool, Role.PATROL) for _ in range(UNITS_EACH)]
    units = moving + staying
    sent = {u.unit: [push.job_for(u.unit) for _ in range(JOBS)] for u in units}
    shown: dict[str, list[JobFrame]] = {u.unit: [] for u in units}
    async with (
        push.gateway(running_stack, pool, topics, group_id) as second,
        AsyncExitStack() as on_second,
    ):
        stayers = {
            u.unit: (await on_second.enter_async_context(push.unit_client(second, u)))[0]
            for u in staying
        }
        # The first half of the load while both gateways run; the moving units on the first.
        async with (
            push.gateway(running_stack, pool, topics, group_id) as first,
            AsyncExitStack() as on_first,
        ):
            movers = {
                u.unit: (await on_first.enter_async_context(push.unit_client(first, u)))[0]
                for u in moving
            }
            for k in range(JOBS // 2):
                jobs = (sent[u.unit][k] for u in units)
                await push.produce(producer, topics.assignments, *jobs)
            for unit in moving:
                shown[unit.unit] += await movers[unit.unit].jobs(JOBS // 2)
                # Acknowledged all but the last: the device's flash says so.
                await movers[unit.unit].send(type="ack", seq=JOBS // 2 - 1)
            for unit in moving:
                await push.eventually(partial(push.stamped, pool, unit.unit, JOBS // 2 - 1))
            # The rest of the load goes on while the first gateway stops.
            rest = asyncio.create_task(
                push.produce(
                    producer,
                    topics.assignments,
                    *(sent[u.unit][k] for k in range(JOBS // 2, JOBS) for u in units),
                )
            )
            await first.stop()
            for unit in moving:
                closed = await closed_by_gateway(movers[unit.unit])
                assert closed == 1001  # going away: reconnect elsewhere
        await rest
        # The moving units reconnect (the load balancer sends them to the one left) and
        # resume from what their flash acknowledged.
        for unit in moving:
            async with push.unit_client(second, unit, last_acked_seq=JOBS // 2 - 1) as (
                c,
                resume,
            ):
                assert resume.after_seq == JOBS // 2 - 1
                again = await c.jobs(JOBS // 2 + 1)
                await c.nothing_more(within_s=0.5)
            # The unacknowledged last job of the first half comes again, under its seq:
            # the phone shows it once (same seq), then the second half.
            assert again[0].seq == JOBS // 2
            assert (
                again[0].assignment.assignment_id == shown[unit.unit][-1].assignment.assignment_id
            )
            shown[unit.unit] += again[1:]
        for unit in staying:
            shown[unit.unit] = await stayers[unit.unit].jobs(JOBS)
            await stayers[unit.unit].nothing_more(within_s=0.5)
    for unit in units:
        assert push.seqs(shown[unit.unit]) == list(range(1, JOBS + 1)), unit.unit
        assert push.ids(shown[unit.unit]) == [a.assignment_id for a in sent[unit.unit]]
        rows = await push.outbox(pool, unit.unit)
        assert [r["assignment_id"] for r in rows] == [a.assignment_id for a in sent[unit.unit]]


async def closed_by_gateway(client: push.Client) -> int | None:
    """Read frames until the gateway closes the connection; return its close code."""
    try:
        while True:
            await client.frame()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
