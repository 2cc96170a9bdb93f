"""Incidents as the pipeline writes them to the topics, for the sink's tests.

`story(n, at)` is one incident from its alarm to its resolution: the raw and classified alarm,
the state changes with their parties, the job, the unit's ack, accept, arrival and resolution,
its positions, and a commander's command with its outcome; every event has its own id, so a
test can tell exactly what must land once. `produce` writes events to the topics as the
stages do (keyed by the catalog's key; alarms.classified as bundles).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from dispatch.events import (
    ALARMS_CLASSIFIED,
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    ClassifiedAlarm,
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    CommandResult,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    PlaceType,
    Position,
    Priority,
    RawAlarm,
    ResponseAction,
    ResponseEvent,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    encode,
    key_of,
    spec_for,
)
from streams.bundles import bundle

# The demo zone's road G316 at Chengdong west, inside grid cd-g03.
PLACE = Position(lat=31.7, lon=113.402)
GRID = "cd-g03"


@dataclass(frozen=True)
class Story:
    """One incident's events, and the ids each table must hold once they are written."""

    incident_id: uuid.UUID
    alarm_id: uuid.UUID
    unit_id: str
    events: tuple[EventModel, ...]
    # Ids of the events that make a timeline row (all but the raw alarm and unit reports).
    timeline_ids: frozenset[uuid.UUID]

    @property
    def timeline(self) -> int:
        """Return how many record_events rows the story makes."""
        return len(self.timeline_ids)


def story(n: int, at: datetime, *, text: str = "路口两人打架 / a fight at the crossing") -> Story:
    """Return incident n, received at `at`, resolved 5 minutes later by unit u-<n % 20>."""
    alarm_id, incident_id, assignment_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    unit_id = f"u-{n % 20}"
    t = [at + timedelta(seconds=s) for s in (0, 0.05, 1, 2, 20, 30, 240, 300, 301)]
    raw = RawAlarm(
        alarm_id=alarm_id, received_at=t[0], source_kind=SourceKind.HOTLINE,
        source_id="hotline-1", text=text, enterprise_id="ent-hengtong", position=PLACE,
        reporter_name="张三", reporter_phone="+86 722 555 0101",
    )  # fmt: skip
    classified = ClassifiedAlarm(
        alarm_id=alarm_id, incident_id=incident_id, category=Category.FIGHT,
        priority=Priority.P2, required_capabilities=("patrol",), position=PLACE, grid_id=GRID,
        place_type=PlaceType.ROAD, enterprise_id="ent-hengtong", received_at=t[0],
        classified_at=t[1], text=text, source_kind=SourceKind.HOTLINE, source_id="hotline-1",
    )  # fmt: skip
    job = Assignment(
        assignment_id=assignment_id, incident_id=incident_id, unit_id=unit_id,
        kind=AssignmentKind.ASSIGNMENT, role=AssignmentRole.PRIMARY, attempt=1,
        priority=Priority.P2, category=Category.FIGHT, position=PLACE, dispatched_at=t[2],
        ack_deadline=t[2] + timedelta(seconds=60), summary="fight at G316",
    )  # fmt: skip
    party = Party(
        unit_id=unit_id, assignment_id=assignment_id, role=AssignmentRole.PRIMARY,
        kind=AssignmentKind.ASSIGNMENT, state=PartyState.DISPATCHED, dispatched_at=t[2],
    )  # fmt: skip

    def change(state: IncidentState, when: datetime, **timing: datetime) -> IncidentStateChange:
        return IncidentStateChange(
            event_id=uuid.uuid4(), incident_id=incident_id, state=state, actor="system",
            at=when, priority=Priority.P2, category=Category.FIGHT, position=PLACE,
            enterprise_id="ent-hengtong", first_alarm_id=alarm_id, alarm_count=1, text=text,
            timing=IncidentTiming(received_at=t[0], classified_at=t[1], **timing),
            parties=() if state is IncidentState.CLASSIFIED else (party,),
        )  # fmt: skip

    def respond(action: ResponseAction, when: datetime) -> ResponseEvent:
        return ResponseEvent(
            event_id=uuid.uuid4(), assignment_id=assignment_id, incident_id=incident_id,
            unit_id=unit_id, action=action, occurred_at=when, actor=unit_id,
        )  # fmt: skip

    def where(lat_offset: float, when: datetime) -> UnitStatus:
        position = Position(lat=PLACE.lat + lat_offset, lon=PLACE.lon)
        return UnitStatus(
            event_id=uuid.uuid4(), unit_id=unit_id, status=UnitAvailability.ASSIGNED,
            position=position, reported_at=when,
        )  # fmt: skip

    timed = {"dispatched_at": t[2]}
    close = CommanderCommand(
        event_id=uuid.uuid4(), incident_id=incident_id, action=CommanderAction.CLOSE,
        reason="settled on the spot", actor="commander-1", issued_at=t[7],
    )  # fmt: skip
    events: list[EventModel] = [
        raw,
        classified,
        change(IncidentState.CLASSIFIED, t[1]),
        job,
        change(IncidentState.DISPATCHED, t[2], **timed),
        respond(ResponseAction.ACK, t[3]),
        respond(ResponseAction.ACCEPT, t[4]),
        change(IncidentState.ACCEPTED, t[4], **timed, delivered_at=t[3], accepted_at=t[4]),
        where(0.01, t[4]),
        where(0.005, t[5]),
        respond(ResponseAction.ON_SCENE, t[6]),
        close,
        CommandOutcome.of(close, result=CommandResult.APPLIED, reason=None, at=t[7]),
        respond(ResponseAction.RESOLVED, t[7]),
        change(
            IncidentState.RESOLVED, t[8], **timed, delivered_at=t[3], accepted_at=t[4],
            on_scene_at=t[6], resolved_at=t[8],
        ),
    ]  # fmt: skip
    timeline = {event_id_of(e) for e in events if not isinstance(e, RawAlarm | UnitStatus)}
    return Story(incident_id, alarm_id, unit_id, tuple(events), frozenset(timeline))


def event_id_of(event: EventModel) -> uuid.UUID:
    """Return the id under which an event lands in record_events."""
    if isinstance(event, ClassifiedAlarm):
        from consumers.sink.rows import alarm_event_id

        return alarm_event_id(event)
    if isinstance(event, Assignment):
        return event.assignment_id
    event_id = getattr(event, "event_id", None)
    assert isinstance(event_id, uuid.UUID)
    return event_id


async def produce(
    producer: AIOKafkaProducer, topics: Mapping[str, str], events: Iterable[EventModel]
) -> None:
    """Write events to their topics (topics maps catalog names to the test's), in order."""
    classified: list[tuple[bytes, bytes]] = []
    sent = []
    for event in events:
        spec = spec_for(type(event))
        if spec is ALARMS_CLASSIFIED:
            classified.append((key_of(event), encode(event)))
            continue
        sent.append(await producer.send(topics[spec.name], encode(event), key=key_of(event)))
    if classified:
        sent.extend(await produce_bundles(producer, topics[ALARMS_CLASSIFIED.name], classified))
    for future in sent:
        await future


async def produce_bundles(
    producer: AIOKafkaProducer, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> list[object]:
    """Write records as the merge stage does: bundles, one per few, to partition 0."""
    sent = []
    for at in range(0, len(records), 5):
        for value in bundle(records[at : at + 5]):
            sent.append(await producer.send(topic, value, key=records[at][0], partition=0))
    return sent


class SteadyLoad:
    """Write one story every `every_s` until stopped, keeping what was written."""

    def __init__(
        self, producer: AIOKafkaProducer, topics: Mapping[str, str], *, every_s: float = 0.05
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._every_s = every_s
        self.stories: list[Story] = []
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start writing."""
        self._task = asyncio.create_task(self._run(), name="steady-load")

    async def stop(self) -> None:
        """Stop writing, once the story being written is on the topics."""
        self._stopping.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        start = datetime.now(UTC) - timedelta(hours=1)
        n = 0
        while not self._stopping.is_set():
            written = story(n, start + timedelta(seconds=n))
            # A story of its own: each bundle of alarms.classified holds one alarm.
            await produce(self._producer, self._topics, written.events)
            self.stories.append(written)
            n += 1
            # The pace of the load: the next story is due when this times out.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every_s)
