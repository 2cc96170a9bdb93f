"""Stage 1: classify raw alarms and merge repeats of one place and kind into one incident."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from dispatch.classify import Rules, classify
from dispatch.events import (
    ClassifiedAlarm,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    LocatedAlarm,
    RawAlarm,
    UtcTimestamp,
    encode,
)
from dispatch.locate import LocationUnresolved, locate, merge_key
from dispatch.zone import Zone
from streams.dead_letters import dead_letter_for, decode_or_dead_letter
from streams.topics import Topics

INCIDENT_NAMESPACE = uuid.UUID("3c9a1f64-7d2e-4b8a-9f10-6e5d4c3b2a19")


def provisional_incident_id(alarm_id: uuid.UUID) -> uuid.UUID:
    """Return the incident id an alarm opens if it merges into nothing (stable on replay)."""
    return uuid.uuid5(INCIDENT_NAMESPACE, str(alarm_id))


class OpenMerge(EventModel):
    """The incident that alarms of one merge key join while the window is open."""

    incident_id: uuid.UUID
    opened_at: UtcTimestamp


@dataclass(frozen=True)
class ClassifyStage:
    """The classify and merge agents of one app."""

    classify_agent: Any
    merge_agent: Any
    merges: Any


def register_classify(
    app: faust.App, topics: Topics, *, zone: Zone, rules: Rules, merge_window: timedelta
) -> ClassifyStage:
    """Add the classify and merge agents to app."""
    merges = app.Table(
        "incident-merges",
        default=None,
        key_type=bytes,
        value_type=bytes,
    )

    async def classify_alarm(stream: Any) -> None:
        async for event in stream.events():
            alarm = await decode_or_dead_letter(
                RawAlarm, event, topics.dead_letters, stage="classify"
            )
            if alarm is not None:
                await _classify_one(alarm, event)

    async def _classify_one(alarm: RawAlarm, event: Any) -> None:
        now = datetime.now(UTC)
        try:
            where = locate(zone, alarm)
        except LocationUnresolved as exc:
            await _unlocated(alarm, event, str(exc), now)
            return
        verdict = classify(
            rules,
            text=alarm.text,
            source_kind=alarm.source_kind,
            sensor_kind=alarm.sensor_kind,
            place_type=where.place_type,
        )
        located = LocatedAlarm(
            alarm_id=alarm.alarm_id,
            incident_id=provisional_incident_id(alarm.alarm_id),
            category=verdict.category,
            priority=verdict.priority,
            required_capabilities=verdict.required_capabilities,
            units_needed=verdict.units_needed,
            position=where.position,
            grid_id=where.grid_id,
            place_id=where.place.id if where.place else None,
            place_name=where.place.name if where.place else alarm.place_name,
            place_type=where.place_type,
            school_id=where.school_id,
            enterprise_id=where.enterprise_id,
            merge_key=merge_key(verdict.category, where),
            received_at=alarm.received_at,
            classified_at=now,
            text=alarm.text,
            source_kind=alarm.source_kind,
            source_id=alarm.source_id,
        )
        await topics.alarms_located.send(key=located.merge_key.encode(), value=encode(located))

    async def _unlocated(alarm: RawAlarm, event: Any, why: str, now: datetime) -> None:
        # Nothing waits silently: the commander sees it at once, and the original bytes wait
        # in the dead-letter topic to be replayed once the zone knows the place.
        verdict = classify(
            rules, text=alarm.text, source_kind=alarm.source_kind, sensor_kind=alarm.sensor_kind
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
            timing=IncidentTiming(received_at=alarm.received_at, classified_at=now),
        )
        await topics.incidents_state.send(key=str(incident_id).encode(), value=encode(change))
        letter = dead_letter_for(event.message, stage="classify", reason=why)
        await topics.dead_letters.send(key=letter.source_topic.encode(), value=encode(letter))

    async def merge_alarm(stream: Any) -> None:
        async for event in stream.events():
            alarm = await decode_or_dead_letter(
                LocatedAlarm, event, topics.dead_letters, stage="merge"
            )
            if alarm is None:
                continue
            key = alarm.merge_key.encode()
            stored = merges.get(key)
            current = OpenMerge.model_validate_json(stored) if stored else None
            joins = (
                current is not None
                and current.incident_id != alarm.incident_id
                and abs(alarm.received_at - current.opened_at) <= merge_window
            )
            fields = alarm.model_dump()
            if joins and current is not None:
                fields |= {"incident_id": current.incident_id, "merged_into": current.incident_id}
            elif current is None or current.incident_id != alarm.incident_id:
                opened = OpenMerge(incident_id=alarm.incident_id, opened_at=alarm.received_at)
                merges[key] = opened.model_dump_json().encode()
            out = ClassifiedAlarm.model_validate(fields)
            await topics.alarms_classified.send(
                key=str(out.incident_id).encode(), value=encode(out)
            )

    return ClassifyStage(
        classify_agent=app.agent(topics.alarms_raw, name="classify-alarm")(classify_alarm),
        merge_agent=app.agent(topics.alarms_located, name="merge-alarm")(merge_alarm),
        merges=merges,
    )
