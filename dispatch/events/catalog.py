"""The topic catalog (name, schema, key per topic) and the one way to encode and decode events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from dispatch.events.alarms import ClassifiedAlarm, LocatedAlarm, RawAlarm
from dispatch.events.assignments import Assignment
from dispatch.events.base import EventModel
from dispatch.events.commands import CommanderCommand, CommandOutcome
from dispatch.events.dead_letters import MAX_FIELD_CHARS, MAX_REASON_CHARS, DeadLetter, FieldError
from dispatch.events.incidents import IncidentStateChange
from dispatch.events.reservations import Reservation
from dispatch.events.responses import ResponseEvent
from dispatch.events.ticks import DeadlineTick
from dispatch.events.units import UnitStatus

E = TypeVar("E", bound=EventModel)

ROOT_FIELD = "$"
"""The field an error names when it concerns the whole payload (not JSON, not an object)."""


@dataclass(frozen=True, slots=True)
class TopicSpec(Generic[E]):
    """Describe one topic: its name, the model of its values, the field that keys it."""

    name: str
    model: type[E]
    key_field: str
    compacted: bool
    description: str
    # How long records stay (None: compacted, the latest per key stays for good).
    retention_days: int | None = 7
    # Set where records can be larger than Kafka's 1 MB default (dead letters carry originals).
    max_message_bytes: int | None = None
    # Internal hops between the stages: a record may be a bundle of many (streams.bundles).
    bundled: bool = False

    def __post_init__(self) -> None:
        if self.key_field not in self.model.model_fields:
            raise ValueError(f"{self.model.__name__} has no key field {self.key_field!r}")


ALARMS_RAW = TopicSpec(
    name="alarms.raw",
    model=RawAlarm,
    key_field="source_id",
    compacted=False,
    retention_days=30,
    description="Alarms as received, after validation, before classification.",
)
ALARMS_CLASSIFIED = TopicSpec(
    name="alarms.classified",
    model=ClassifiedAlarm,
    key_field="incident_id",
    compacted=False,
    description="Alarms with category, priority, capabilities and place, grouped by incident.",
    bundled=True,
)
ALARMS_LOCATED = TopicSpec(
    name="alarms.located",
    model=LocatedAlarm,
    key_field="merge_key",
    compacted=False,
    description="Internal: classified alarms keyed by place and kind, so one worker merges them.",
    retention_days=1,
    bundled=True,
)
COMMANDER_COMMANDS = TopicSpec(
    name="commander.commands",
    model=CommanderCommand,
    key_field="incident_id",
    compacted=False,
    description="Commanders' manual assign, reassign, cancel and close, applied by route.",
    retention_days=30,
)
COMMANDER_OUTCOMES = TopicSpec(
    name="commander.outcomes",
    model=CommandOutcome,
    key_field="incident_id",
    compacted=False,
    description="What route made of each commander command: applied, or refused and why.",
    retention_days=30,
)
DISPATCH_TICKS = TopicSpec(
    name="dispatch.ticks",
    model=DeadlineTick,
    key_field="incident_id",
    compacted=False,
    description="Internal: the route timer's requests to expire an incident's deadlines.",
    retention_days=1,
)
DISPATCH_ASSIGNMENTS = TopicSpec(
    name="dispatch.assignments",
    model=Assignment,
    key_field="unit_id",
    compacted=False,
    description="Jobs and mutual-aid alerts pushed to units, in order per unit.",
)
RESPONSES_EVENTS = TopicSpec(
    name="responses.events",
    model=ResponseEvent,
    key_field="incident_id",
    compacted=False,
    description="Acks, accepts, declines and progress reported by units.",
)
UNITS_STATUS = TopicSpec(
    name="units.status",
    model=UnitStatus,
    key_field="unit_id",
    compacted=True,
    retention_days=None,
    description="Each unit's availability and position; compaction keeps the latest per unit.",
)
UNITS_RESERVATIONS = TopicSpec(
    name="units.reservations",
    model=Reservation,
    key_field="unit_id",
    compacted=False,
    retention_days=1,
    description="Internal: route's jobs and releases per unit, for the one writer that holds a "
    "unit for one incident at a time and passes its jobs on to dispatch.assignments.",
)
INCIDENTS_STATE = TopicSpec(
    name="incidents.state",
    model=IncidentStateChange,
    key_field="incident_id",
    compacted=False,
    retention_days=30,
    description="Every incident state change with its parties and timers.",
)
ALARMS_DLQ = TopicSpec(
    name="alarms.dlq",
    model=DeadLetter,
    key_field="source_topic",
    compacted=False,
    retention_days=30,
    max_message_bytes=2 * 1024 * 1024,
    description="Records a stage could not process, with the reason and the original bytes.",
)

TOPICS: Mapping[str, TopicSpec[Any]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ALARMS_RAW,
            ALARMS_LOCATED,
            ALARMS_CLASSIFIED,
            DISPATCH_ASSIGNMENTS,
            RESPONSES_EVENTS,
            UNITS_STATUS,
            UNITS_RESERVATIONS,
            INCIDENTS_STATE,
            ALARMS_DLQ,
            DISPATCH_TICKS,
            COMMANDER_COMMANDS,
            COMMANDER_OUTCOMES,
        )
    }
)
_SPEC_BY_MODEL: Mapping[type[EventModel], TopicSpec[Any]] = {
    spec.model: spec for spec in TOPICS.values()
}


class UnknownEventType(LookupError):
    """Raised when an event's class belongs to no topic in the catalog."""


class InvalidEvent(ValueError):
    """Raised when bytes do not parse as the expected event; `errors` names each bad field."""

    def __init__(self, model_name: str, errors: Sequence[FieldError]) -> None:
        self.model_name = model_name
        self.errors: list[FieldError] = list(errors)
        super().__init__(_describe(model_name, self.errors))


def _describe(model_name: str, errors: Sequence[FieldError]) -> str:
    if not errors:
        return f"invalid {model_name}"
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid {model_name}: {first.field}: {first.message}{more}"


def _field_errors(exc: ValidationError) -> list[FieldError]:
    # Bounded here because a path can hold an unknown key of any length from the input.
    return [
        FieldError(
            field=(".".join(str(part) for part in error["loc"]) or ROOT_FIELD)[:MAX_FIELD_CHARS],
            message=error["msg"][:MAX_REASON_CHARS],
        )
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def decode(model_cls: type[E], data: bytes) -> E:
    """Parse JSON bytes as model_cls; raise InvalidEvent naming every bad field."""
    try:
        return model_cls.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidEvent(model_cls.__name__, _field_errors(exc)) from exc


def encode(event: EventModel) -> bytes:
    """Serialise an event to the JSON bytes written to its topic."""
    return event.model_dump_json().encode("utf-8")


def spec_for(model_cls: type[EventModel]) -> TopicSpec[Any]:
    """Return the topic spec whose values are model_cls (or a class it derives from)."""
    for cls in model_cls.__mro__:
        spec = _SPEC_BY_MODEL.get(cls)
        if spec is not None:
            return spec
    raise UnknownEventType(f"{model_cls.__name__} is the value of no topic in the catalog")


def key_of(event: EventModel) -> bytes:
    """Return the Kafka key for an event: its key field as UTF-8 text."""
    return str(getattr(event, spec_for(type(event)).key_field)).encode("utf-8")
