"""Stage 2: route incidents, apply responses and deadlines, publish jobs and state changes.

One table holds every incident, keyed by incident id. `alarms.classified`, `responses.events`
and `dispatch.ticks` are all keyed by incident id with the same partition count, so the worker
that owns an incident's partition sees all three, in order, and is the only one to change it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust

from dispatch.events import (
    ClassifiedAlarm,
    CommanderCommand,
    DeadlineTick,
    IncidentState,
    ResponseEvent,
    UnitAvailability,
    UnitStatus,
    encode,
)
from dispatch.lifecycle import (
    CommandRejected,
    Effects,
    Incident,
    LifecyclePolicy,
    ResponseRejected,
    apply_command,
    apply_response,
    expire_deadlines,
    merge_alarm,
    open_incident,
)
from dispatch.lifecycle.transitions import SYSTEM, state_change
from dispatch.plan import assigned_units, plan_dispatch
from dispatch.routing import RoutingPolicy
from streams.dead_letters import dead_letter_for, decode_or_dead_letter
from streams.topics import Topics
from streams.units_board import UnitBoard

TICK_NAMESPACE = uuid.UUID("8e2b5c71-0a4f-4d93-b6e8-1f7c9d2a3b40")


@dataclass(frozen=True)
class RouteStage:
    """The route stage's agents, tables and unit board."""

    board: UnitBoard
    incidents: Any
    deadlines: Any
    agents: tuple[Any, ...]


def register_route(
    app: faust.App,
    topics: Topics,
    *,
    board: UnitBoard,
    routing: RoutingPolicy,
    lifecycle: LifecyclePolicy,
    tick_interval_s: float = 1.0,
) -> RouteStage:
    """Add the route agents, the deadline timer and the unit board's reader to app."""
    incidents = _bytes_table(app, "incidents")
    # incident id -> its earliest pending deadline; only incidents with one are here.
    deadlines = _bytes_table(app, "incident-deadlines")
    ticked: dict[bytes, bytes] = {}

    def load(key: bytes) -> Incident | None:
        stored = incidents.get(key)
        return Incident.model_validate_json(stored) if stored else None

    async def publish(key: bytes, effects: Effects) -> None:
        incident = effects.incident
        incidents[key] = incident.model_dump_json().encode()
        if incident.deadlines:
            deadlines[key] = min(d.due_at for d in incident.deadlines).isoformat().encode()
        elif deadlines.get(key) is not None:
            del deadlines[key]
        for assignment in effects.assignments:
            await topics.assignments.send(key=assignment.unit_id.encode(), value=encode(assignment))
        for unit_id in assigned_units(effects):
            await _mark_assigned(unit_id, effects.assignments[0].dispatched_at)
        for change in effects.state_changes:
            await topics.incidents_state.send(key=key, value=encode(change))

    async def _mark_assigned(unit_id: str, at: datetime) -> None:
        board.reserve(unit_id, at)
        record = board.index.get(unit_id)
        status = UnitStatus(
            event_id=uuid.uuid5(TICK_NAMESPACE, f"{unit_id}:assigned:{at.isoformat()}"),
            unit_id=unit_id,
            status=UnitAvailability.ASSIGNED,
            position=record.position if record else None,
            reported_at=at,
        )
        await topics.units_status.send(key=unit_id.encode(), value=encode(status))

    def dispatch_more(effects: Effects, now: datetime) -> Effects:
        planned = plan_dispatch(
            effects.incident, board.index, now=now, routing=routing, lifecycle=lifecycle
        )
        return effects.then(planned)

    async def on_classified(stream: Any) -> None:
        async for event in stream.events():
            alarm = await decode_or_dead_letter(
                ClassifiedAlarm, event, topics.dead_letters, stage="route"
            )
            if alarm is None:
                continue
            await board.ready.wait()
            now = datetime.now(UTC)
            key = str(alarm.incident_id).encode()
            incident = load(key)
            if incident is None:
                opened = open_incident(alarm)
                first = state_change(
                    opened,
                    IncidentState.CLASSIFIED,
                    previous=IncidentState.RECEIVED,
                    reason=f"{alarm.category} {alarm.priority}",
                    actor=SYSTEM,
                    at=alarm.classified_at,
                )
                effects = dispatch_more(Effects(opened, state_changes=(first,)), now)
            else:
                effects = merge_alarm(incident, alarm)
                if incident.is_closed and effects.state_changes:
                    # A new alarm for a closed incident: a person decides whether it is new.
                    reason = f"alarm {alarm.alarm_id} arrived after the incident closed"
                    effects = effects.then(_escalate_closed(effects.incident, reason, now))
            await publish(key, effects)

    async def on_response(stream: Any) -> None:
        async for event in stream.events():
            response = await decode_or_dead_letter(
                ResponseEvent, event, topics.dead_letters, stage="route"
            )
            if response is None:
                continue
            key = str(response.incident_id).encode()
            incident = load(key)
            if incident is None:
                await _dead_letter(event.message, f"no incident {response.incident_id}")
                continue
            try:
                effects = apply_response(incident, response)
            except ResponseRejected as exc:
                await _dead_letter(event.message, str(exc))
                continue
            if effects.reroute:
                await board.ready.wait()
                effects = dispatch_more(effects, datetime.now(UTC))
            await publish(key, effects)

    async def on_tick(stream: Any) -> None:
        async for event in stream.events():
            tick = await decode_or_dead_letter(
                DeadlineTick, event, topics.dead_letters, stage="route"
            )
            if tick is None:
                continue
            key = str(tick.incident_id).encode()
            ticked.pop(key, None)
            incident = load(key)
            if incident is None:
                continue
            effects = expire_deadlines(incident, now=tick.due_at)
            if effects.reroute:
                await board.ready.wait()
                effects = dispatch_more(effects, datetime.now(UTC))
            if effects.incident != incident:
                await publish(key, effects)

    async def on_command(stream: Any) -> None:
        async for event in stream.events():
            command = await decode_or_dead_letter(
                CommanderCommand, event, topics.dead_letters, stage="route"
            )
            if command is None:
                continue
            key = str(command.incident_id).encode()
            incident = load(key)
            if incident is None:
                await _dead_letter(event.message, f"no incident {command.incident_id}")
                continue
            try:
                effects = apply_command(incident, command, policy=lifecycle)
            except CommandRejected as exc:
                await _dead_letter(event.message, str(exc))
                continue
            await publish(key, effects)

    async def _dead_letter(message: Any, reason: str) -> None:
        letter = dead_letter_for(message, stage="route", reason=reason)
        await topics.dead_letters.send(key=letter.source_topic.encode(), value=encode(letter))

    async def tick_due_deadlines() -> None:
        now = datetime.now(UTC)
        for key, due in list(deadlines.items()):
            if due is None or ticked.get(key) == due or datetime.fromisoformat(due.decode()) > now:
                continue
            ticked[key] = due
            tick = DeadlineTick(
                event_id=uuid.uuid5(TICK_NAMESPACE, f"{key.decode()}:{due.decode()}"),
                incident_id=uuid.UUID(key.decode()),
                due_at=now,
            )
            await topics.ticks.send(key=key, value=encode(tick))

    async def follow_units() -> None:
        # Runs until the app stops it (cancellation); the event is for callers outside Faust.
        topic = topics.units_status.get_topic_name()
        await board.follow(_bootstrap(app), topic, _dead_letter, asyncio.Event())

    app.timer(interval=tick_interval_s)(tick_due_deadlines)
    app.task(follow_units)
    agents = (
        app.agent(topics.alarms_classified, name="route-incident")(on_classified),
        app.agent(topics.responses, name="apply-response")(on_response),
        app.agent(topics.ticks, name="expire-deadlines")(on_tick),
        app.agent(topics.commands, name="apply-command")(on_command),
    )
    return RouteStage(board=board, incidents=incidents, deadlines=deadlines, agents=agents)


def _escalate_closed(incident: Incident, reason: str, now: datetime) -> Effects:
    # escalate() leaves closed incidents alone; this alarm must reach the commander anyway.
    change = state_change(
        incident,
        IncidentState.ESCALATED,
        previous=incident.state,
        reason=reason,
        actor=SYSTEM,
        at=now,
    )
    return Effects(incident, state_changes=(change,))


def _bytes_table(app: faust.App, name: str) -> Any:
    # Values are our own JSON (pydantic), not Faust records: raw bytes in, raw bytes out.
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
    )


def _bootstrap(app: faust.App) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)
