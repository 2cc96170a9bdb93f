"""The stages' work on one input record, free of any Kafka client.

Each handler takes one input record (anything with `topic`, `partition`, `offset`, `key` and
`value`: a Faust message or an aiokafka record), reads and writes its tables (mappings of
bytes to JSON bytes) and queues the records it produces on an `Outbox`. Nothing here awaits:
the driver decides how records are read and how the queued writes reach Kafka. The Faust
agents (`streams.batching`) drive these handlers in batches; the pipeline benchmark drives the
very same handlers from bare aiokafka loops, so the two are compared on identical work.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from dispatch.classify import Rules, classify
from dispatch.display import printable
from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_DLQ,
    ALARMS_LOCATED,
    COMMANDER_OUTCOMES,
    DISPATCH_ASSIGNMENTS,
    DISPATCH_TICKS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    UNITS_RESERVATIONS,
    UNITS_STATUS,
    AssignmentKind,
    ClassifiedAlarm,
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    CommandResult,
    DeadlineTick,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    InvalidEvent,
    LocatedAlarm,
    RawAlarm,
    Reservation,
    ResponseAction,
    ResponseEvent,
    TopicSpec,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
    key_of,
    reservation_for,
)
from dispatch.events.assignments import EXCERPT_CHARS
from dispatch.events.reservations import RESERVATION_NAMESPACE
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
from dispatch.locate import LocationUnresolved
from dispatch.plan import assigned_units, plan_dispatch
from dispatch.routing import RoutingPolicy
from dispatch.triage import INCIDENT_NAMESPACE, OpenMerge, merge_into, provisional_incident_id
from dispatch.triage import triage as triage_alarm
from dispatch.zone import Zone
from streams.dead_letters import dead_letter_for
from streams.tables import ChangelogTable
from streams.units_board import UnitBoard

E = TypeVar("E", bound=EventModel)

TICK_NAMESPACE = uuid.UUID("8e2b5c71-0a4f-4d93-b6e8-1f7c9d2a3b40")

# How long the route stage remembers which alarms each incident took (a replay reaches back
# seconds; a day is far beyond any).
ALARM_MEMORY = timedelta(days=1)
# What an incident did with an alarm: took it (opened or merged), or sent it back because it
# had closed.
TAKEN = b"taken"
TAKEN_BACK = b"sent-back"

# Commands that send the unit they name: the commander's choice goes whatever holds the unit.
COMMANDER_SENDS = frozenset({CommanderAction.ASSIGN, CommanderAction.REASSIGN})
# What the reserve stage decided about a job that needs its unit to itself.
GRANTED = b"granted"
REFUSED = b"refused:"

# A table of a stage: a Faust table in the worker, a dict in the benchmark's bare loops.
Table = MutableMapping[bytes, Any]


class Outbox(Protocol):
    """Where a handler queues the records it produces, in order."""

    def send(self, topic: TopicSpec[Any], key: bytes, value: bytes) -> None:
        """Queue one record for the catalog topic `topic`."""


@dataclass
class Queued:
    """An outbox that keeps the records in a list, for a driver to write after the batch."""

    records: list[tuple[TopicSpec[Any], bytes, bytes]] = field(default_factory=list)

    def send(self, topic: TopicSpec[Any], key: bytes, value: bytes) -> None:
        """Queue one record."""
        self.records.append((topic, key, value))


def decoded(model: type[E], record: Any, out: Outbox, *, stage: str) -> E | None:
    """Return the record's value as model, or dead-letter the record and return None."""
    try:
        return decode(model, record.value if isinstance(record.value, bytes) else b"")
    except InvalidEvent as exc:
        dead_letter(out, record, stage=stage, reason=str(exc), errors=tuple(exc.errors))
        return None


def dead_letter(out: Outbox, record: Any, *, stage: str, reason: str, errors: Any = ()) -> None:
    """Queue the record for the dead-letter topic with the reason and its original bytes."""
    letter = dead_letter_for(record, stage=stage, reason=reason, errors=errors)
    out.send(ALARMS_DLQ, key_of(letter), encode(letter))


@dataclass
class Classifier:
    """Stage 1a: classify and locate a raw alarm; key it by its merge key."""

    zone: Zone
    rules: Rules

    def alarm(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `alarms.raw` record."""
        alarm = decoded(RawAlarm, record, out, stage="classify")
        if alarm is None:
            return
        try:
            located = triage_alarm(self.zone, self.rules, alarm, now=now)
        except LocationUnresolved as exc:
            self._unlocated(alarm, record, str(exc), out, now)
            return
        out.send(ALARMS_LOCATED, located.merge_key.encode(), encode(located))

    def _unlocated(
        self, alarm: RawAlarm, record: Any, why: str, out: Outbox, now: datetime
    ) -> None:
        # Nothing waits silently: the commander sees it at once, and the original bytes wait
        # in the dead-letter topic to be replayed once the zone knows the place.
        verdict = classify(
            self.rules,
            text=alarm.text,
            source_kind=alarm.source_kind,
            sensor_kind=alarm.sensor_kind,
        )
        incident_id = provisional_incident_id(alarm.alarm_id)
        change = IncidentStateChange(
            event_id=uuid.uuid5(INCIDENT_NAMESPACE, f"{incident_id}:unlocated"),
            incident_id=incident_id,
            state=IncidentState.ESCALATED,
            previous_state=IncidentState.RECEIVED,
            reason=f"location unresolved, commander must place it: {why}; text: {alarm.text}"[
                :2000
            ],
            actor="system",
            at=now,
            priority=verdict.priority,
            category=verdict.category,
            enterprise_id=alarm.enterprise_id,
            timing=IncidentTiming(received_at=alarm.received_at, classified_at=now),
            # What the commander needs to place it: the alarm, its words and who to call back.
            first_alarm_id=alarm.alarm_id,
            alarm_count=1,
            text=printable(alarm.text)[:EXCERPT_CHARS],
            reporter_name=printable(alarm.reporter_name) if alarm.reporter_name else None,
            reporter_phone=alarm.reporter_phone,
        )
        out.send(INCIDENTS_STATE, str(incident_id).encode(), encode(change))
        dead_letter(out, record, stage="classify", reason=why)


@dataclass
class Merger:
    """Stage 1b: merge repeats of one place and kind into one incident; key by incident id."""

    merges: Table
    # Repeats of one place and kind within this time of the first alarm join its incident
    # (the zone's policy, dispatch.policy).
    window: timedelta

    def located(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `alarms.located` record."""
        alarm = decoded(LocatedAlarm, record, out, stage="merge")
        if alarm is None:
            return
        key = alarm.merge_key.encode()
        stored = self.merges.get(key)
        current = OpenMerge.model_validate_json(stored) if stored else None
        merged, opened = merge_into(alarm, current, window=self.window)
        if opened is not None:
            self.merges[key] = opened.model_dump_json().encode()
        out.send(ALARMS_CLASSIFIED, str(merged.incident_id).encode(), encode(merged))


@dataclass
class Router:
    """Stage 2: keep every incident, route it, apply responses, deadlines and commands.

    `incidents` holds every incident by id; `deadlines` the earliest pending deadline of each
    incident that has one. Every input of this stage is keyed by incident id on co-partitioned
    topics, so the worker that owns an incident's partition is the only one to change it.
    """

    incidents: Table
    deadlines: Table
    # "incident id:alarm id" -> what the incident did with the alarm (taken, or sent back
    # because it had closed) and when; every alarm, so that a replay is always recognised.
    alarms: ChangelogTable
    board: UnitBoard
    routing: RoutingPolicy
    lifecycle: LifecyclePolicy
    alarm_memory: timedelta = ALARM_MEMORY
    # incident key -> the deadline already ticked, so a slow tick is not sent twice.
    ticked: dict[bytes, bytes] = field(default_factory=dict)
    # When each alarm row was written here, oldest first, for forget_old_alarms. Rows restored
    # at start are not in it: their changelog's retention (ALARM_MEMORY) drops them instead.
    _taken_order: deque[tuple[datetime, bytes]] = field(default_factory=deque)

    def load(self, key: bytes) -> Incident | None:
        """Return the stored incident, or None."""
        stored = self.incidents.get(key)
        return Incident.model_validate_json(stored) if stored else None

    def classified(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `alarms.classified` record: open and route an incident, merge into it,
        or, when it has closed, send the alarm back to open a new one."""
        alarm = decoded(ClassifiedAlarm, record, out, stage="route")
        if alarm is None:
            return
        key = str(alarm.incident_id).encode()
        taken = self.alarms.get(_taken_key(alarm))
        if taken is not None:
            return  # replayed input: this incident took (or sent back) this alarm already
        incident = self.load(key)
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
            effects = self._dispatch_more(Effects(opened, state_changes=(first,)), now)
        elif incident.is_closed:
            self._take(alarm, record, TAKEN_BACK, now)
            self._reopen(alarm, incident, out, now)
            return
        else:
            effects = merge_alarm(incident, alarm)
            if effects.reroute:
                effects = self._dispatch_more(effects, now)
        self._take(alarm, record, TAKEN, now)
        self._publish(key, effects, out)

    def _take(self, alarm: ClassifiedAlarm, record: Any, outcome: bytes, now: datetime) -> None:
        # Kept on the incident's partition, with the incident's other rows, whatever the key.
        stamp = now.isoformat().encode()
        self.alarms.put(_taken_key(alarm), outcome + b"|" + stamp, partition=record.partition)
        self._taken_order.append((now, _taken_key(alarm)))

    def _reopen(self, alarm: ClassifiedAlarm, closed: Incident, out: Outbox, now: datetime) -> None:
        # The merge key still leads to the closed incident for the rest of its window: the
        # merge step opens a new incident for the key instead, and later alarms join that one.
        if alarm.merge_key is None:
            # Written before merge keys travelled this far: a person decides whether it is new.
            reason = f"alarm {alarm.alarm_id} arrived after the incident closed"
            self._publish(
                str(closed.incident_id).encode(), _escalate_closed(closed, reason, now), out
            )
            return
        back = LocatedAlarm.model_validate(
            alarm.model_dump()
            | {
                "incident_id": provisional_incident_id(alarm.alarm_id),
                "merged_into": None,
                "reopen_of": closed.incident_id,
            }
        )
        out.send(ALARMS_LOCATED, back.merge_key.encode(), encode(back))

    def forget_old_alarms(self, out: Outbox, now: datetime) -> None:
        """Drop the alarms taken longer ago than `alarm_memory` (the timer): a replay reaches
        back seconds, not a day, and the table must not grow for ever."""
        del out  # the deletions go out as the table's changelog records
        forget_older(self._taken_order, self.alarms, now - self.alarm_memory)

    def response(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `responses.events` record from a unit or the gateway."""
        response = decoded(ResponseEvent, record, out, stage="route")
        if response is not None:
            self._change(
                record, out, now, response.incident_id, lambda i: apply_response(i, response)
            )

    def command(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `commander.commands` record; tell the commanders what became of it."""
        command = decoded(CommanderCommand, record, out, stage="route")
        if command is None:
            return
        # The unit a commander names is sent whatever other incident holds it.
        chosen = command.unit_id if command.action in COMMANDER_SENDS else None
        refusal = self._change(
            record,
            out,
            now,
            command.incident_id,
            forced=frozenset({chosen} if chosen else ()),
            change=lambda i: apply_command(
                i,
                command,
                policy=self.lifecycle,
                is_unit=lambda u: self.board.index.get(u) is not None,
            ),
        )
        result = CommandResult.APPLIED if refusal is None else CommandResult.REFUSED
        outcome = CommandOutcome.of(command, result=result, reason=refusal, at=now)
        out.send(COMMANDER_OUTCOMES, key_of(outcome), encode(outcome))

    def tick(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `dispatch.ticks` record: expire the incident's due deadlines."""
        tick = decoded(DeadlineTick, record, out, stage="route")
        if tick is None:
            return
        self.ticked.pop(str(tick.incident_id).encode(), None)
        # An incident closed and dropped before its tick came round is not an error.
        self._change(
            record,
            out,
            now,
            tick.incident_id,
            lambda i: expire_deadlines(i, now=tick.due_at),
            missing_ok=True,
        )

    def due_ticks(self, out: Outbox, now: datetime) -> None:
        """Queue a tick for every incident whose earliest deadline has passed (the timer)."""
        for key, due in list(self.deadlines.items()):
            if due is None or self.ticked.get(key) == due:
                continue
            if datetime.fromisoformat(due.decode()) > now:
                continue
            self.ticked[key] = due
            tick = DeadlineTick(
                event_id=uuid.uuid5(TICK_NAMESPACE, f"{key.decode()}:{due.decode()}"),
                incident_id=uuid.UUID(key.decode()),
                due_at=now,
            )
            out.send(DISPATCH_TICKS, key, encode(tick))

    def _change(
        self,
        record: Any,
        out: Outbox,
        now: datetime,
        incident_id: uuid.UUID,
        change: Callable[[Incident], Effects],
        *,
        missing_ok: bool = False,
        forced: frozenset[str] = frozenset(),
    ) -> str | None:
        # Responses, ticks and commands share one shape: load, apply, maybe re-route, publish.
        # Returns why the record was refused (and dead-lettered), or None.
        key = str(incident_id).encode()
        incident = self.load(key)
        if incident is None:
            if missing_ok:
                return None
            reason = f"no incident {incident_id}"
            dead_letter(out, record, stage="route", reason=reason)
            return reason
        try:
            effects = change(incident)
        except (ResponseRejected, CommandRejected) as exc:
            dead_letter(out, record, stage="route", reason=str(exc))
            return str(exc)
        if effects.reroute:
            effects = self._dispatch_more(effects, now)
        if effects.incident != incident or effects.state_changes or effects.assignments:
            self._publish(key, effects, out, forced=forced)
        return None

    def _dispatch_more(self, effects: Effects, now: datetime) -> Effects:
        planned = plan_dispatch(
            effects.incident,
            self.board.index,
            now=now,
            routing=self.routing,
            lifecycle=self.lifecycle,
        )
        return effects.then(planned)

    def _publish(
        self, key: bytes, effects: Effects, out: Outbox, *, forced: frozenset[str] = frozenset()
    ) -> None:
        incident = effects.incident
        self.incidents[key] = incident.model_dump_json().encode()
        if incident.deadlines:
            self.deadlines[key] = min(d.due_at for d in incident.deadlines).isoformat().encode()
        elif self.deadlines.get(key) is not None:
            del self.deadlines[key]
        # A stand-down frees its unit, a job holds it; freed first, so a unit taken off one
        # job and sent on another by one decision ends assigned.
        freed = set(effects.freed_units)
        holding = set(assigned_units(effects))
        for assignment in effects.assignments:
            # Every job, alert and notice goes by the unit's single writer (the reserve
            # stage), which holds a unit for one incident at a time.
            reservation = reservation_for(
                assignment,
                holds=assignment.kind is AssignmentKind.ASSIGNMENT,
                force=assignment.unit_id in forced,
                releases=assignment.withdraws is not None and assignment.unit_id in freed - holding,
            )
            out.send(UNITS_RESERVATIONS, assignment.unit_id.encode(), encode(reservation))
        for down in effects.assignments:
            if down.withdraws is not None and down.unit_id in freed:
                self._mark_assigned(
                    down.unit_id, down.dispatched_at, out, UnitAvailability.AVAILABLE
                )
        sent_at = {a.unit_id: a.dispatched_at for a in effects.assignments if a.withdraws is None}
        for unit_id in assigned_units(effects):
            self._mark_assigned(unit_id, sent_at[unit_id], out)
        for change in effects.state_changes:
            out.send(INCIDENTS_STATE, key, encode(change))

    def _mark_assigned(
        self,
        unit_id: str,
        at: datetime,
        out: Outbox,
        status: UnitAvailability = UnitAvailability.ASSIGNED,
    ) -> None:
        # Held (or, once stood down, freed) at once in this worker; the report tells every
        # other worker and the gateway. It repeats the last fix with that fix's own time, so
        # the fix does not look fresher than it is.
        record = self.board.index.get(unit_id)
        if record is None:
            return
        held = record.availability is UnitAvailability.ASSIGNED
        if status is UnitAvailability.AVAILABLE and not held:
            return  # busy or off duty by its own report: only the unit may free itself
        report = UnitStatus(
            event_id=uuid.uuid5(TICK_NAMESPACE, f"{unit_id}:{status}:{at.isoformat()}"),
            unit_id=unit_id,
            status=status,
            position=record.position,
            reported_at=at,
            position_at=record.position_at if record.position else None,
        )
        if status is UnitAvailability.ASSIGNED:
            self.board.reserve(unit_id, at)
        else:
            self.board.apply(report)
            now_held = self.board.index.get(unit_id)
            if now_held is None or now_held.availability is not status:
                return  # a later job of this worker holds it: it stays assigned
        out.send(UNITS_STATUS, unit_id.encode(), encode(report))


@dataclass
class Reserver:
    """Stage 3: hold each unit for one incident at a time, and pass its jobs on to it.

    `units.reservations` (route's jobs, notices and releases) and `units.status` (the units'
    own reports) are both keyed by unit id and co-partitioned, so the worker that owns a
    unit's partition is the only one to decide about it, whichever route worker owns the
    incidents. `holds` has, per unit held, the incident holding it and since when; `decisions`
    what became of each job that asked for its unit, so that a replay decides the same.
    """

    holds: Table
    decisions: ChangelogTable
    memory: timedelta = ALARM_MEMORY
    # When each decision was made here, oldest first, for forget_old_decisions.
    _decided_order: deque[tuple[datetime, bytes]] = field(default_factory=deque)

    def reservation(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `units.reservations` record: pass its job on, or refuse it when another
        incident holds the unit; then let the unit go if the incident releases it."""
        reservation = decoded(Reservation, record, out, stage="reserve")
        if reservation is None:
            return
        key = reservation.unit_id.encode()
        if reservation.holds:
            holder = self._decide(reservation, record, now)
            if holder is not None:
                self._refuse(reservation, holder, out, now)
                return
        if reservation.job is not None:
            out.send(DISPATCH_ASSIGNMENTS, key, encode(reservation.job))
        if reservation.releases and self._holder(key) == str(reservation.incident_id):
            del self.holds[key]

    def status(self, record: Any, out: Outbox, now: datetime) -> None:
        """Handle one `units.status` record: a unit that reports itself available after its
        hold began is free for any incident. Reports that do not parse are the route stage's
        to dead-letter (its unit board reads the same topic); here they change nothing."""
        del out, now
        try:
            status = decode(UnitStatus, record.value if isinstance(record.value, bytes) else b"")
        except InvalidEvent:
            return
        if status.presence or status.status is not UnitAvailability.AVAILABLE:
            return
        key = status.unit_id.encode()
        stored = self.holds.get(key)
        if stored is None:
            return
        since = datetime.fromisoformat(json.loads(stored)["since"])
        if status.reported_at >= since:
            del self.holds[key]

    def forget_old_decisions(self, out: Outbox, now: datetime) -> None:
        """Drop the decisions made longer ago than `memory` (the timer): a replay reaches back
        seconds, and the table must not grow for ever."""
        del out  # the deletions go out as the table's changelog records
        forget_older(self._decided_order, self.decisions, now - self.memory)

    def _holder(self, key: bytes) -> str | None:
        stored = self.holds.get(key)
        return None if stored is None else str(json.loads(stored)["incident_id"])

    def _decide(self, reservation: Reservation, record: Any, now: datetime) -> str | None:
        # Returns the incident that holds the unit when the job is refused, else None (and the
        # unit is now this incident's).
        decision_key = str(reservation.event_id).encode()
        decided = self.decisions.get(decision_key)
        if decided is not None:
            return None if decided == GRANTED else decided.removeprefix(REFUSED).decode()
        key = reservation.unit_id.encode()
        holder = self._holder(key)
        incident = str(reservation.incident_id)
        if holder is None or holder == incident or reservation.force:
            hold = {"incident_id": incident, "since": reservation.at.isoformat()}
            self.holds[key] = json.dumps(hold).encode()
            verdict = GRANTED
        else:
            verdict = REFUSED + holder.encode()
        # Kept on the unit's partition, with its hold, whatever the key hashes to.
        self.decisions.put(decision_key, verdict, partition=record.partition)
        self._decided_order.append((now, decision_key))
        return None if verdict == GRANTED else holder

    def _refuse(self, reservation: Reservation, holder: str, out: Outbox, now: datetime) -> None:
        job = reservation.job
        assert job is not None  # a reservation that holds carries its job (validated)
        refusal = ResponseEvent(
            event_id=uuid.uuid5(RESERVATION_NAMESPACE, f"{job.assignment_id}:taken"),
            assignment_id=job.assignment_id,
            incident_id=job.incident_id,
            unit_id=job.unit_id,
            action=ResponseAction.TAKEN,
            occurred_at=now,
            reason=f"{job.unit_id} was on incident {holder} first",
            actor=SYSTEM,
        )
        out.send(RESPONSES_EVENTS, str(job.incident_id).encode(), encode(refusal))


def forget_older(order: deque[tuple[datetime, bytes]], table: Table, before: datetime) -> None:
    """Delete from table the rows order says were written before a moment, oldest first."""
    while order and order[0][0] < before:
        _, key = order.popleft()
        if key in table:
            del table[key]


def _taken_key(alarm: ClassifiedAlarm) -> bytes:
    return f"{alarm.incident_id}:{alarm.alarm_id}".encode()


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
