"""Stage 1: classify raw alarms and merge repeats of one place and kind into one incident."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from dispatch.classify import Rules, classify
from dispatch.events import (
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    LocatedAlarm,
    RawAlarm,
    encode,
)
from dispatch.locate import LocationUnresolved
from dispatch.triage import (
    INCIDENT_NAMESPACE,
    OpenMerge,
    merge_into,
    provisional_incident_id,
    triage,
)
from dispatch.zone import Zone
from streams.dead_letters import dead_letter_for, decode_or_dead_letter
from streams.topics import Topics


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
            located = triage(zone, rules, alarm, now=now)
        except LocationUnresolved as exc:
            await _unlocated(alarm, event, str(exc), now)
            return
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
            enterprise_id=alarm.enterprise_id,
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
            out, opened = merge_into(alarm, current, window=merge_window)
            if opened is not None:
                merges[key] = opened.model_dump_json().encode()
            await topics.alarms_classified.send(
                key=str(out.incident_id).encode(), value=encode(out)
            )

    return ClassifyStage(
        classify_agent=app.agent(topics.alarms_raw, name="classify-alarm")(classify_alarm),
        merge_agent=app.agent(topics.alarms_located, name="merge-alarm")(merge_alarm),
        merges=merges,
    )
