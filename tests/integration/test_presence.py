"""A connected unit is present on units.status, with its last fix and that fix's real age.

On the real Kafka and PostgreSQL with real websocket clients (see test_push_gateway); the
commander's channel shows what the gateway publishes on units.status.
"""

from __future__ import annotations

import asyncpg

from consumers.auth import Role
from consumers.push import PushTopics
from consumers.push.protocol import OkFrame, UnitStatusFrame, WelcomeFrame
from dispatch.events import Position, UnitAvailability, UnitStatus
from dispatch.settings import Settings
from tests.integration import test_push_gateway
from tests.integration.principals import make_caller
from tests.integration.test_push_gateway import Client, client, eventually, gateway, unit_client

# The gateway tests' fixtures (a migrated pool, fresh topics), used as they are.
pool = test_push_gateway.pool
topics = test_push_gateway.topics


async def next_report(board: Client, unit_id: str, *, presence: bool) -> UnitStatus:
    """Read the commander's channel until a report of unit_id of the given kind."""
    while True:
        frame = await board.frame()
        if isinstance(frame, UnitStatusFrame) and (frame.status.unit_id, frame.status.presence) == (
            unit_id,
            presence,
        ):
            return frame.status


async def test_a_unit_that_connects_is_announced_with_its_last_fix_at_that_fixs_time(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    commander = await make_caller(pool, Role.COMMANDER)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        client(gw, commander.secret) as board,
    ):
        await board.expect(WelcomeFrame)
        async with unit_client(gw, unit) as (handheld, _):
            await handheld.send(
                type="position", lat=31.7012, lon=113.4021, accuracy_m=8.0, status="available"
            )
            await handheld.expect(OkFrame)
            own = await next_report(board, unit.unit, presence=False)

        async def gone() -> bool:
            return unit.unit not in gw.hub.unit_ids

        await eventually(gone)  # the gateway has seen the close: the hub has no event for it
        # Back again, and quiet: the gateway says it is there, without a newer fix.
        async with unit_client(gw, unit):
            seen = await next_report(board, unit.unit, presence=True)
    assert (seen.status, seen.position) == (
        UnitAvailability.AVAILABLE,
        Position(lat=31.7012, lon=113.4021, accuracy_m=8.0),
    )
    assert seen.position_at == own.reported_at  # the fix's real age stays visible
    assert seen.reported_at >= own.reported_at  # when the gateway saw it connected
