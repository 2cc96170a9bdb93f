"""Stage 2 agents: route incidents, apply responses, deadlines and commands.

The work itself is `streams.stages.Router`; this module puts it on the app with its tables,
the once-a-second deadline timer and the unit board's reader. `alarms.classified`,
`responses.events`, `dispatch.ticks` and `commander.commands` are all keyed by incident id with
the same partition count, so the worker that owns an incident's partition sees all four, in
order, and is the only one to change it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import faust

from dispatch.lifecycle import LifecyclePolicy
from dispatch.routing import RoutingPolicy
from streams.batching import batch_agent, write
from streams.stages import Queued, Router, dead_letter
from streams.tables import bytes_table
from streams.topics import Topics
from streams.units_board import UnitBoard


def register_route(
    app: faust.App,
    topics: Topics,
    *,
    board: UnitBoard,
    routing: RoutingPolicy,
    lifecycle: LifecyclePolicy,
    tick_interval_s: float = 1.0,
) -> tuple[Any, ...]:
    """Add the route agents, the deadline timer and the unit board's reader to app; return
    the agents."""
    incidents = bytes_table(app, "incidents")
    # incident id -> its earliest pending deadline; only incidents with one are here.
    deadlines = bytes_table(app, "incident-deadlines")
    router = Router(
        incidents=incidents,
        deadlines=deadlines,
        board=board,
        routing=routing,
        lifecycle=lifecycle,
    )

    async def board_ready() -> None:
        await board.ready.wait()

    async def tick_due_deadlines() -> None:
        out = Queued()
        router.due_ticks(out, datetime.now(UTC))
        await write(app, topics.prefix, out)

    async def dead_letter_unit_report(record: Any, reason: str) -> None:
        out = Queued()
        dead_letter(out, record, stage="route", reason=reason)
        await write(app, topics.prefix, out)

    async def follow_units() -> None:
        # Runs until the app stops it (cancellation); the event is for callers outside Faust.
        topic = topics.units_status.get_topic_name()
        await board.follow(_bootstrap(app), topic, dead_letter_unit_report, asyncio.Event())

    app.timer(interval=tick_interval_s)(tick_due_deadlines)
    app.task(follow_units)
    inputs = (
        (topics.alarms_classified, "route-incident", router.classified),
        (topics.responses, "apply-response", router.response),
        (topics.ticks, "expire-deadlines", router.tick),
        (topics.commands, "apply-command", router.command),
    )
    return tuple(
        batch_agent(
            app,
            source,
            name=name,
            stage="route",
            handle=handle,
            prefix=topics.prefix,
            tables=(incidents, deadlines),
            before=board_ready,
        )
        for source, name, handle in inputs
    )


def _bootstrap(app: faust.App) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)
