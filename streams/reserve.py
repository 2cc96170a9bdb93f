"""Stage 3: the units' single writer, between route and the units.

Route workers own incidents; this stage owns units. It reads `units.reservations` (every job,
notice and release route decides, keyed by unit) and `units.status` (the units' own reports),
co-partitioned by unit id, so exactly one worker decides about each unit: it holds the unit
for one incident at a time, passes that incident's jobs on to `dispatch.assignments` and
refuses another's with a `taken` response, on which route sends the next-best unit at once
(`streams.stages.Reserver`). It runs beside the route stage in the same process, a member of
its own consumer group.
"""

from __future__ import annotations

from dispatch.events import UNITS_RESERVATIONS, UNITS_STATUS
from streams.route import FORGET_EVERY_S
from streams.stages import ALARM_MEMORY, Reserver
from streams.tables import stage_table
from streams.worker import StageSpec, Timer


def reserve_stage(*, group_id: str, prefix: str, partitions: int) -> StageSpec:
    """The reserve stage with its holds and decisions tables."""

    # unit id -> the incident holding it and since when; only held units are here.
    holds = stage_table(prefix, group_id, "unit-holds", partitions=partitions)
    # reservation id -> granted, or refused and who held the unit; a day, like route's alarms.
    decisions = stage_table(
        prefix,
        group_id,
        "unit-decisions",
        partitions=partitions,
        retention_ms=int(ALARM_MEMORY.total_seconds() * 1000),
    )
    reserver = Reserver(holds=holds, decisions=decisions)
    inputs = {
        prefix + UNITS_RESERVATIONS.name: reserver.reservation,
        prefix + UNITS_STATUS.name: reserver.status,
    }
    return StageSpec(
        "reserve",
        inputs,
        tables=(holds, decisions),
        timers=(Timer(FORGET_EVERY_S, reserver.forget_old_decisions),),
    )
