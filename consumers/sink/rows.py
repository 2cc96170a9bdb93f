"""What each event becomes in the record's tables; pure, so it is tested without a database.

Schema: consumers/db/migrations/0012_record.sql; docs/record.md says what each table holds.
The functions here fold a batch down to one row per key where a table keeps one row per key
(an incident, a unit): PostgreSQL's `ON CONFLICT DO UPDATE` may touch a row once per
statement, and the same rules decide between the batch's rows and the stored row.

Enumerations go into the rows as the members themselves: a StrEnum member is its text, and
`.value` (a descriptor call per field) was a measurable share of a batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from dispatch.events import (
    Assignment,
    ClassifiedAlarm,
    CommanderCommand,
    CommandOutcome,
    DeadLetter,
    EventModel,
    FieldError,
    IncidentState,
    IncidentStateChange,
    Position,
    RawAlarm,
    ResponseEvent,
)

# An alarm's timeline row: uuid5(namespace, "<alarm_id>:<incident_id>"), so an alarm that a
# closed incident sent back into a new one has a row in each, and a replay the same one.
ALARM_EVENT_NAMESPACE = uuid.UUID("0b5d7c1e-6a2f-4e39-8d14-3c9e2f7a5b60")
# A record the sink itself could not read or store: uuid5(namespace, "topic:partition:offset
# [:index]"), apart from the stages' own dead letters of the same record.
SINK_SKIP_NAMESPACE = uuid.UUID("9e4a2b71-0c3d-4f58-a6e2-71d5b8c3f904")
SINK_STAGE = "sink"

# An incident in one of these is over; `merged` means an alarm joined it (still open).
CLOSED_STATES = frozenset({IncidentState.RESOLVED, IncidentState.CANCELLED})


class EventRow(NamedTuple):
    """One row of record_events: one event in an incident's timeline."""

    event_id: uuid.UUID
    incident_id: uuid.UUID
    kind: str
    at: datetime
    actor: str | None
    unit_id: str | None
    assignment_id: uuid.UUID | None
    state: str | None
    detail: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None


def event_row(
    event: EventModel,
    *,
    detail: str,
    topic: str | None,
    partition: int | None,
    offset: int | None,
) -> EventRow | None:
    """Return the timeline row of an event (None for one that belongs to no incident)."""
    fields = _timeline_fields(event)
    if fields is None:
        return None
    event_id, incident_id, kind, at, actor, unit_id, assignment_id, state = fields
    return EventRow(
        event_id,
        incident_id,
        kind,
        at,
        actor,
        unit_id,
        assignment_id,
        state,
        detail,
        topic,
        partition,
        offset,
    )


# (event_id, incident_id, kind, at, actor, unit_id, assignment_id, state)
_Timeline = tuple[
    uuid.UUID, uuid.UUID, str, datetime, str | None, str | None, uuid.UUID | None, str | None
]


def _state(e: IncidentStateChange) -> _Timeline:
    return (e.event_id, e.incident_id, "state", e.at, e.actor, None, None, e.state)


def _assignment(j: Assignment) -> _Timeline:
    return (
        j.assignment_id, j.incident_id, "assignment", j.dispatched_at, None, j.unit_id,
        j.assignment_id, None,
    )  # fmt: skip


def _response(r: ResponseEvent) -> _Timeline:
    return (
        r.event_id, r.incident_id, "response", r.occurred_at, r.actor, r.unit_id,
        r.assignment_id, None,
    )  # fmt: skip


def _command(c: CommanderCommand) -> _Timeline:
    return (c.event_id, c.incident_id, "command", c.issued_at, c.actor, c.unit_id, None, None)


def _alarm(a: ClassifiedAlarm) -> _Timeline:
    return (alarm_event_id(a), a.incident_id, "alarm", a.classified_at, None, None, None, None)


def _outcome(o: CommandOutcome) -> _Timeline:
    return (o.event_id, o.incident_id, "command_outcome", o.at, o.actor, o.unit_id, None, None)


_TIMELINE: dict[type[Any], Callable[[Any], _Timeline]] = {
    IncidentStateChange: _state,
    Assignment: _assignment,
    ResponseEvent: _response,
    CommanderCommand: _command,
    ClassifiedAlarm: _alarm,
    CommandOutcome: _outcome,
}


@cache
def _timeline_of(cls: type[EventModel]) -> Callable[[Any], _Timeline] | None:
    # By class, not isinstance: a pydantic model's isinstance goes through ABCMeta, and a
    # batch asks it tens of thousands of times. A subclass maps as its nearest base does.
    return next((_TIMELINE[base] for base in cls.__mro__ if base in _TIMELINE), None)


def _timeline_fields(event: EventModel) -> _Timeline | None:
    timeline = _timeline_of(type(event))
    return None if timeline is None else timeline(event)


def alarm_event_id(alarm: ClassifiedAlarm) -> uuid.UUID:
    """Return the id of an alarm's row in its incident's timeline."""
    return uuid.uuid5(ALARM_EVENT_NAMESPACE, f"{alarm.alarm_id}:{alarm.incident_id}")


# record_alarms columns, in the order the writer's statements take them.
ALARM_COLUMNS = (
    "alarm_id", "received_at", "source_kind", "source_id", "enterprise_id", "text", "place_id",
    "place_name", "lat", "lon", "reporter_name", "reporter_phone", "classified_at",
    "incident_id", "category", "priority", "grid_id", "place_type", "merged_into",
)  # fmt: skip
AlarmRow = tuple[object, ...]


def raw_alarm_row(alarm: RawAlarm) -> AlarmRow:
    """Return an alarm's row as alarms.raw knows it (unclassified)."""
    lat, lon = _lat_lon(alarm.position)
    return (
        alarm.alarm_id,
        alarm.received_at,
        alarm.source_kind,
        alarm.source_id,
        alarm.enterprise_id,
        alarm.text,
        alarm.place_id,
        alarm.place_name,
        lat,
        lon,
        alarm.reporter_name,
        alarm.reporter_phone,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )


def classified_alarm_row(alarm: ClassifiedAlarm) -> AlarmRow:
    """Return an alarm's row as alarms.classified knows it (placed and classified)."""
    return (
        alarm.alarm_id,
        alarm.received_at,
        alarm.source_kind,
        alarm.source_id,
        alarm.enterprise_id,
        alarm.text,
        alarm.place_id,
        alarm.place_name,
        alarm.position.lat,
        alarm.position.lon,
        alarm.reporter_name,
        alarm.reporter_phone,
        alarm.classified_at,
        alarm.incident_id,
        alarm.category,
        alarm.priority,
        alarm.grid_id,
        alarm.place_type,
        alarm.merged_into,
    )


def classified_over_raw(raw: AlarmRow, classified: AlarmRow) -> AlarmRow:
    """Return the row an alarm's raw row becomes once its classified row is applied, as the
    writer's upsert applies a classified row to a stored raw one: what the raw record said
    stays, its place only where the classified has none, the classification is added.

    For a batch that holds both: one statement may touch a row once (statements.UPSERT_ALARMS).
    """
    place_id = classified[6] if classified[6] is not None else raw[6]
    place_name = classified[7] if classified[7] is not None else raw[7]
    return (*raw[:6], place_id, place_name, classified[8], classified[9], *raw[10:12],
            *classified[12:])  # fmt: skip


def _lat_lon(position: Position | None) -> tuple[float | None, float | None]:
    return (None, None) if position is None else (position.lat, position.lon)


INCIDENT_COLUMNS = (
    "incident_id", "state", "previous_state", "priority", "category", "enterprise_id", "grid_id",
    "place_name", "lat", "lon", "first_alarm_id", "text", "reporter_name", "reporter_phone",
    "alarm_count", "received_at", "classified_at", "dispatched_at", "delivered_at",
    "accepted_at", "on_scene_at", "resolved_at", "closed_at", "is_open", "detail", "opened_at",
    "updated_at", "last_event_id",
)  # fmt: skip
IncidentRow = tuple[object, ...]
GridOf = Callable[[Position], str | None]


def incident_rows(
    changes: Iterable[tuple[IncidentStateChange, str]], grid_of: GridOf | None = None
) -> list[IncidentRow]:
    """Fold a batch's changes (each with its JSON) to one current row per incident.

    The row is the latest change's (by `at`; of equal ones the later read, as the stored row's
    rule `not older than` does); opened_at is the earliest `at` seen, closed_at the `at` of the
    first change into a closed state.
    """
    latest: dict[uuid.UUID, tuple[IncidentStateChange, str]] = {}
    opened: dict[uuid.UUID, datetime] = {}
    closed: dict[uuid.UUID, datetime] = {}
    for change, detail in changes:
        key = change.incident_id
        held = latest.get(key)
        if held is None or change.at >= held[0].at:
            latest[key] = (change, detail)
        opened[key] = min(opened.get(key, change.at), change.at)
        if change.state in CLOSED_STATES:
            closed[key] = min(closed.get(key, change.at), change.at)
    rows: list[IncidentRow] = []
    for key, (change, detail) in latest.items():
        timing = change.timing
        lat, lon = _lat_lon(change.position)
        grid = grid_of(change.position) if grid_of and change.position else None
        closed_at = closed.get(key)
        rows.append(
            (
                change.incident_id,
                change.state,
                change.previous_state,
                change.priority,
                change.category,
                change.enterprise_id,
                grid,
                change.place_name,
                lat,
                lon,
                change.first_alarm_id,
                change.text,
                change.reporter_name,
                change.reporter_phone,
                change.alarm_count,
                timing.received_at,
                timing.classified_at,
                timing.dispatched_at,
                timing.delivered_at,
                timing.accepted_at,
                timing.on_scene_at,
                timing.resolved_at,
                closed_at,
                closed_at is None,
                detail,
                opened[key],
                change.at,
                change.event_id,
            )
        )
    return rows


DEAD_LETTER_COLUMNS = (
    "event_id", "source_topic", "source_partition", "source_offset", "bundle_index", "key",
    "key_truncated", "value", "value_truncated", "reason", "errors", "stage", "failed_at",
)  # fmt: skip


def dead_letter_row(letter: DeadLetter, *, wire: dict[str, object]) -> tuple[object, ...]:
    """Return a dead letter's row; wire is the letter as its JSON writes it (key and value in
    base64, errors as objects)."""
    return (
        letter.event_id,
        letter.source_topic,
        letter.partition,
        letter.offset,
        letter.bundle_index,
        wire["key"],
        letter.key_truncated,
        wire["value"],
        letter.value_truncated,
        letter.reason,
        wire["errors"],
        letter.stage,
        letter.failed_at,
    )


def sink_skip(
    *,
    topic: str,
    partition: int,
    offset: int,
    index: int | None,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    at: datetime,
    errors: Sequence[FieldError] = (),
) -> DeadLetter:
    """Return the dead letter recording that the sink could not read or store a record."""
    letter = DeadLetter.capture(
        source_topic=topic,
        partition=partition,
        offset=offset,
        bundle_index=index,
        key=key,
        value=value,
        reason=reason,
        stage=SINK_STAGE,
        failed_at=at,
        errors=errors,
    )
    position = f"{topic}:{partition}:{offset}" + (f":{index}" if index is not None else "")
    return letter.model_copy(update={"event_id": uuid.uuid5(SINK_SKIP_NAMESPACE, position)})
