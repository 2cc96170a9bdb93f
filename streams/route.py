"""Stage 2: route incidents, apply responses, deadlines and commands.

The work itself is `streams.stages.Router`; this module says what the stage reads, its tables
and its once-a-second deadline timer. `alarms.classified`, `responses.events`, `dispatch.ticks`
and `commander.commands` are all keyed by incident id with the same partition count, so the
worker that owns an incident's partition sees all four, in order, and is the only one to
change it. The unit board is fed by its own reader (`UnitBoard.follow`), started beside the
worker.
"""

from __future__ import annotations

from dispatch.events import ALARMS_CLASSIFIED, COMMANDER_COMMANDS, DISPATCH_TICKS, RESPONSES_EVENTS
from dispatch.lifecycle import LifecyclePolicy
from dispatch.routing import RoutingPolicy
from streams.stages import ALARM_MEMORY, Router
from streams.tables import ChangelogTable, stage_table
from streams.units_board import UnitBoard
from streams.worker import StageSpec, Timer

# How often the stage forgets the alarms it took more than a day ago.
FORGET_EVERY_S = 60.0


def route_stage(
    *,
    group_id: str,
    prefix: str,
    partitions: int,
    board: UnitBoard,
    routing: RoutingPolicy,
    lifecycle: LifecyclePolicy,
    tick_interval_s: float = 1.0,
) -> StageSpec:
    """The route stage with its incidents and deadlines tables."""

    def table(name: str, retention_ms: int | None = None) -> ChangelogTable:
        return stage_table(prefix, group_id, name, partitions=partitions, retention_ms=retention_ms)

    incidents = table("incidents")
    # incident id -> its earliest pending deadline; only incidents with one are here.
    deadlines = table("incident-deadlines")
    # Which alarms each incident took; rows older than a day leave the changelog by retention.
    alarms = table("incident-alarms", retention_ms=int(ALARM_MEMORY.total_seconds() * 1000))
    router = Router(
        incidents=incidents,
        deadlines=deadlines,
        alarms=alarms,
        board=board,
        routing=routing,
        lifecycle=lifecycle,
    )

    async def board_ready() -> None:
        await board.ready.wait()

    inputs = {
        prefix + ALARMS_CLASSIFIED.name: router.classified,
        prefix + RESPONSES_EVENTS.name: router.response,
        prefix + DISPATCH_TICKS.name: router.tick,
        prefix + COMMANDER_COMMANDS.name: router.command,
    }
    return StageSpec(
        "route",
        inputs,
        tables=(incidents, deadlines, alarms),
        timers=(
            Timer(tick_interval_s, router.due_ticks),
            Timer(FORGET_EVERY_S, router.forget_old_alarms),
        ),
        before=board_ready,
    )
