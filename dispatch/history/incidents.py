"""One incident's life in the history, lived through the real stages' own functions.

The alarm is triaged and merged (dispatch.triage), the incident opened, routed and dispatched
(dispatch.plan), and every answer of its units applied (dispatch.lifecycle), in time order,
the way the route stage applies them; only the units' answers and their timing are invented:

- a job reaches the phone in 1-4 s (one in sixteen later, up to 40 s), is accepted within the
  priority's accept timeout mostly, and the unit drives there at its routed ETA give or take
  (a lognormal factor, one trip in twenty twice as slow);
- 2 % of jobs go unanswered (the accept timeout hands them on), 3 % are declined (the next-best
  unit is sent at once);
- guards alerted for a neighbour mostly acknowledge, and half of them go and look;
- the first unit on scene resolves the incident after the scenario's minutes;
- some sensor alarms are cancelled by the commander after a look at the cameras, and an
  incident nobody could be sent to is assigned by the commander by hand.

The events are exactly those the stages would publish; their ids are derived from what they
record, so the same history yields the same ids.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from dispatch.classify import Rules
from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_RAW,
    COMMANDER_COMMANDS,
    COMMANDER_OUTCOMES,
    DISPATCH_ASSIGNMENTS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    UNITS_STATUS,
    Assignment,
    AssignmentKind,
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    CommandResult,
    EventModel,
    IncidentState,
    Priority,
    RawAlarm,
    ResponseAction,
    ResponseEvent,
    UnitAvailability,
    UnitStatus,
)
from dispatch.history.mix import Scenario
from dispatch.history.units import HistoryUnits
from dispatch.lifecycle import (
    Effects,
    Incident,
    LifecyclePolicy,
    apply_command,
    apply_response,
    expire_deadlines,
    merge_alarm,
    open_incident,
)
from dispatch.lifecycle.transitions import ACTIVE_PARTY_STATES, SYSTEM, state_change
from dispatch.plan import assigned_units, plan_dispatch
from dispatch.routing import RoutingPolicy
from dispatch.triage import OpenMerge, merge_into, triage
from dispatch.zone import Zone
from dispatch.zone.geo import haversine_m

COMMANDER = "commander-duty"  # the demo commander (simulator/principals.py)
# How long a priority's unit takes to accept a job it will accept (seconds, uniform).
ACCEPT_S = {Priority.P1: (2, 20), Priority.P2: (3, 40), Priority.P3: (5, 80), Priority.P4: (5, 150)}
DECLINE_REASONS = ("正在处理另一警情 on another job", "车辆故障 vehicle breakdown")
Record = tuple[str, EventModel]


def ms(at: datetime) -> datetime:
    """Return at cut to the millisecond, the precision of every timestamp on the wire.

    The lifecycle copies models without validating them again, so a time made here with
    microseconds would reach an event that differs from what its topic carries.
    """
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


@dataclass(frozen=True, slots=True)
class World:
    """What every incident of the history shares: the zone, its rules and policy, the units."""

    zone: Zone
    rules: Rules
    units: HistoryUnits
    routing: RoutingPolicy
    lifecycle: LifecyclePolicy
    merge_window: timedelta
    namespace: uuid.UUID


@dataclass(frozen=True, slots=True)
class IncidentHistory:
    """An incident's events in the order the stages would have published them, and its end."""

    records: tuple[Record, ...]
    incident: Incident
    scenario: Scenario


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    act: Callable[[datetime], None] = field(compare=False)


class IncidentLife:
    """Live one incident from its first alarm to its end."""

    def __init__(self, world: World, scenario: Scenario, rng: random.Random) -> None:
        self.world = world
        self.scenario = scenario
        self.rng = rng
        self.records: list[Record] = []
        self._steps: list[_Step] = []
        self._seq = 0
        self._ticks: set[datetime] = set()
        self._resolving = False
        self._released: dict[str, datetime] = {}
        self._hand_pending = False
        self._now = datetime.min.replace(tzinfo=UTC)
        self.incident: Incident | None = None

    def live(self, alarm: RawAlarm, repeats: tuple[RawAlarm, ...] = ()) -> IncidentHistory:
        """Return the incident's events, from its alarm (and any repeats) to its end."""
        classified_at = ms(alarm.received_at + timedelta(seconds=self._processing_s()))
        located = triage(self.world.zone, self.world.rules, alarm, now=classified_at)
        classified, _ = merge_into(located, None, window=self.world.merge_window)
        self.records += [(ALARMS_RAW.name, alarm), (ALARMS_CLASSIFIED.name, classified)]
        opened = open_incident(classified)
        first = state_change(
            opened,
            IncidentState.CLASSIFIED,
            previous=IncidentState.RECEIVED,
            reason=f"{classified.category} {classified.priority}",
            actor=SYSTEM,
            at=classified_at,
        )
        routed_at = ms(classified_at + timedelta(milliseconds=self.rng.randint(5, 400)))
        self.world.units.free_until(routed_at)
        self._publish(Effects(opened, state_changes=(first,)), routed_at, reroute=True)
        merge = OpenMerge(incident_id=opened.incident_id, opened_at=alarm.received_at)
        for repeat in repeats:
            self._at(repeat.received_at, partial(self._repeat, repeat, merge))
        if self.rng.random() < self.scenario.cancelled:
            self._at(routed_at + timedelta(seconds=self.rng.uniform(150, 300)), self._cancel)
        self._run()
        assert self.incident is not None
        return IncidentHistory(tuple(self.records), self.incident, self.scenario)

    # -- the loop -------------------------------------------------------------------------

    def _at(self, at: datetime, act: Callable[[datetime], None]) -> None:
        self._seq += 1
        heapq.heappush(self._steps, _Step(ms(at), self._seq, act))

    def _run(self) -> None:
        self._drain()
        if not self._current.is_closed:
            # Nobody could finish it (every offer spent): the duty commander closes it.
            self._command(CommanderAction.CLOSE, self._now + timedelta(minutes=10))
            self._drain()
        for party in self._current.parties:
            if party.kind is AssignmentKind.ASSIGNMENT:
                self.world.units.hold(party.unit_id, self._released.get(party.unit_id, self._now))
            elif party.arrived_at is not None:  # a guard who went to look walks back
                back = ms(self._now + timedelta(minutes=self.rng.uniform(2, 10)))
                self._status(party.unit_id, UnitAvailability.AVAILABLE, back, self._current)

    def _drain(self) -> None:
        while self._steps:
            step = heapq.heappop(self._steps)
            self._now = max(self._now, step.at)
            step.act(step.at)

    @property
    def _current(self) -> Incident:
        assert self.incident is not None
        return self.incident

    def _publish(self, effects: Effects, at: datetime, *, reroute: bool = False) -> None:
        if reroute or effects.reroute:
            planned = plan_dispatch(
                effects.incident,
                self.world.units.index,
                now=at,
                routing=self.world.routing,
                lifecycle=self.world.lifecycle,
            )
            effects = effects.then(planned)
        self.incident = effects.incident
        for job in effects.assignments:
            self.records.append((DISPATCH_ASSIGNMENTS.name, job))
            if job.withdraws is not None and job.unit_id in effects.freed_units:
                self._released[job.unit_id] = at
                self._status(job.unit_id, UnitAvailability.AVAILABLE, at, self._current)
            elif job.withdraws is None and job.updates is None:
                self._script(job)
        for unit_id in assigned_units(effects):
            self.world.units.take(unit_id)
            self._status(unit_id, UnitAvailability.ASSIGNED, at, None)
        self.records += [(INCIDENTS_STATE.name, change) for change in effects.state_changes]
        for deadline in self._current.deadlines:
            if deadline.due_at not in self._ticks:
                self._ticks.add(deadline.due_at)
                self._at(deadline.due_at, self._tick)
        if not self._current.is_closed and not self._sent_anyone() and not self._hand_pending:
            self._hand_pending = True
            self._at(at + timedelta(seconds=self.rng.uniform(60, 240)), self._assign_by_hand)

    def _sent_anyone(self) -> bool:
        return any(
            p.kind is AssignmentKind.ASSIGNMENT and p.state in ACTIVE_PARTY_STATES
            for p in self._current.parties
        )

    # -- what happens -----------------------------------------------------------------------

    def _tick(self, at: datetime) -> None:
        effects = expire_deadlines(self._current, now=at)
        if effects.state_changes or effects.assignments or effects.incident != self._current:
            self._publish(effects, at)

    def _respond(self, job: Assignment, action: ResponseAction, at: datetime, **extra: Any) -> None:
        party = self._current.party(job.assignment_id)
        if self._current.is_closed or party is None or party.state not in ACTIVE_PARTY_STATES:
            return  # stood down, timed out or over: the phone has nothing to answer
        event = ResponseEvent(
            event_id=uuid.uuid5(self.world.namespace, f"{job.assignment_id}:{action}"),
            assignment_id=job.assignment_id,
            incident_id=job.incident_id,
            unit_id=job.unit_id,
            action=action,
            occurred_at=at,
            actor=job.unit_id,
            **extra,
        )
        self.records.append((RESPONSES_EVENTS.name, event))
        self._publish(apply_response(self._current, event), at)
        is_job = job.kind is AssignmentKind.ASSIGNMENT
        if action is ResponseAction.ON_SCENE:
            self._status(job.unit_id, UnitAvailability.BUSY, at, self._current)
            if is_job and not self._resolving:
                self._resolving = True
                low, high = self.scenario.on_scene_min
                done = at + timedelta(minutes=self.rng.uniform(low, high))
                self._at(done, partial(self._respond, job, ResponseAction.RESOLVED))
        if action is ResponseAction.RESOLVED:
            back = ms(at + timedelta(minutes=self.rng.uniform(5, 20)))
            self._released[job.unit_id] = back
            self._status(job.unit_id, UnitAvailability.AVAILABLE, back, self._current)

    def _script(self, job: Assignment) -> None:
        # What the unit's crew will do with this job, decided now, played out in time order.
        for action, when in self._plan(job):
            self._at(when, partial(self._answer, job, action))

    def _plan(self, job: Assignment) -> list[tuple[ResponseAction, datetime]]:
        rng = self.rng
        slow = rng.random() < 1 / 16  # the phone was in a pocket, or the network slow
        delivered = job.dispatched_at + timedelta(
            seconds=rng.uniform(8, 40) if slow else rng.uniform(1, 4)
        )
        if job.kind is AssignmentKind.MUTUAL_AID_ALERT:
            if rng.random() > 0.85:
                return []  # the guard never saw it: its alert lapses
            acked = delivered + timedelta(seconds=rng.uniform(5, 90))
            steps = [(ResponseAction.ACK, acked)]
            if rng.random() < 0.5:  # and goes to look
                steps.append(
                    (ResponseAction.EN_ROUTE, acked + timedelta(seconds=rng.uniform(10, 60)))
                )
            return steps
        fate = rng.random()
        if fate < 0.02:  # never answered: the accept timeout hands the job on
            return [(ResponseAction.ACK, delivered)] if rng.random() < 0.5 else []
        if fate < 0.05:
            refused = delivered + timedelta(seconds=rng.uniform(5, 30))
            return [(ResponseAction.ACK, delivered), (ResponseAction.DECLINE, refused)]
        low, high = ACCEPT_S[job.priority]
        accepted = delivered + timedelta(seconds=rng.uniform(low, high))
        rolling = accepted + timedelta(seconds=rng.uniform(3, 25))
        return [
            (ResponseAction.ACK, delivered),
            (ResponseAction.ACCEPT, accepted),
            (ResponseAction.EN_ROUTE, rolling),
        ]

    def _answer(self, job: Assignment, action: ResponseAction, at: datetime) -> None:
        if action is ResponseAction.DECLINE:
            self._respond(job, action, at, reason=self.rng.choice(DECLINE_REASONS))
            return
        self._respond(job, action, at)
        if action is ResponseAction.EN_ROUTE:
            arrive = at + timedelta(seconds=self._travel_s(job))
            self._at(arrive, partial(self._respond, job, ResponseAction.ON_SCENE))

    def _travel_s(self, job: Assignment) -> float:
        if job.eta_s is not None:
            eta = job.eta_s
        else:  # sent by hand: the distance at the unit's speed
            unit = self.world.zone.unit(job.unit_id)
            eta = haversine_m(self.world.units.home[job.unit_id], job.position) / (
                unit.speed_kmh / 3.6
            )
        factor = math.exp(self.rng.gauss(0.0, 0.3)) * (2.0 if self.rng.random() < 0.05 else 1.0)
        return max(20.0, eta * factor)

    def _repeat(self, alarm: RawAlarm, merge: OpenMerge, at: datetime) -> None:
        if self._current.is_closed:
            return  # over before the device fired again: that alarm never came
        classified_at = ms(at + timedelta(seconds=self._processing_s()))
        located = triage(self.world.zone, self.world.rules, alarm, now=classified_at)
        classified, _ = merge_into(located, merge, window=self.world.merge_window)
        self.records += [(ALARMS_RAW.name, alarm), (ALARMS_CLASSIFIED.name, classified)]
        self._publish(merge_alarm(self._current, classified), classified_at)

    def _cancel(self, at: datetime) -> None:
        if not self._current.is_closed:
            self._command(CommanderAction.CANCEL, at)

    def _assign_by_hand(self, at: datetime) -> None:
        self._hand_pending = False
        if self._current.is_closed or self._sent_anyone():
            return
        self.world.units.free_until(at)
        tried = {p.unit_id for p in self._current.parties}
        free = [
            u
            for u in self.world.units.index
            if u.kind == "patrol"
            and u.unit_id not in tried
            and u.availability is UnitAvailability.AVAILABLE
        ]
        if free:
            nearest = min(
                free,
                key=lambda u: haversine_m(self.world.units.home[u.unit_id], self._current.position),
            )
            self._command(CommanderAction.ASSIGN, at, unit_id=nearest.unit_id)

    def _command(self, action: CommanderAction, at: datetime, unit_id: str | None = None) -> None:
        reasons = {
            CommanderAction.CANCEL: "监控复核为误报 false alarm, checked on the cameras",
            CommanderAction.CLOSE: "值班长电话核实后结案 closed after a call to the caller",
            CommanderAction.ASSIGN: "值班长指派最近的巡逻车 nearest patrol, sent by hand",
        }
        command = CommanderCommand(
            event_id=uuid.uuid5(self.world.namespace, f"{self._current.incident_id}:{action}:{at}"),
            incident_id=self._current.incident_id,
            action=action,
            unit_id=unit_id,
            reason=reasons[action],
            actor=COMMANDER,
            issued_at=at,
        )
        self.records.append((COMMANDER_COMMANDS.name, command))
        effects = apply_command(self._current, command, policy=self.world.lifecycle)
        outcome = CommandOutcome.of(command, result=CommandResult.APPLIED, reason=None, at=at)
        self.records.append((COMMANDER_OUTCOMES.name, outcome))
        self._publish(effects, at)

    def _status(
        self, unit_id: str, status: UnitAvailability, at: datetime, where: Incident | None
    ) -> None:
        position = where.position if where is not None else self.world.units.home[unit_id]
        report = UnitStatus(
            event_id=uuid.uuid5(self.world.namespace, f"{unit_id}:{status}:{at.isoformat()}"),
            unit_id=unit_id,
            status=status,
            position=position,
            reported_at=at,
        )
        self.records.append((UNITS_STATUS.name, report))

    def _processing_s(self) -> float:
        # The stages take a second or two; a few alarms wait longer (a worker restarting, a
        # burst), so the NFPA 1225 share is high but not a trivial 100 %.
        if self.rng.random() < 0.03:
            return self.rng.uniform(45, 150)
        return self.rng.uniform(0.2, 2.5)
