"""Turn a raw alarm into a located, classified alarm on its way to the merge step."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from dispatch.classify import Rules, classify
from dispatch.display import place_label, printable
from dispatch.events import ClassifiedAlarm, EventModel, LocatedAlarm, RawAlarm, UtcTimestamp
from dispatch.locate import locate, merge_key
from dispatch.zone import Zone

INCIDENT_NAMESPACE = uuid.UUID("3c9a1f64-7d2e-4b8a-9f10-6e5d4c3b2a19")


def provisional_incident_id(alarm_id: uuid.UUID) -> uuid.UUID:
    """Return the incident id an alarm opens if it merges into nothing (stable on replay)."""
    return uuid.uuid5(INCIDENT_NAMESPACE, str(alarm_id))


def triage(zone: Zone, rules: Rules, alarm: RawAlarm, *, now: datetime) -> LocatedAlarm:
    """Locate and classify an alarm; raise LocationUnresolved when the zone cannot place it."""
    where = locate(zone, alarm)
    verdict = classify(
        rules,
        text=alarm.text,
        source_kind=alarm.source_kind,
        sensor_kind=alarm.sensor_kind,
        place_type=where.place_type,
    )
    return LocatedAlarm(
        alarm_id=alarm.alarm_id,
        incident_id=provisional_incident_id(alarm.alarm_id),
        category=verdict.category,
        priority=verdict.priority,
        required_capabilities=verdict.required_capabilities,
        units_needed=verdict.units_needed,
        position=where.position,
        grid_id=where.grid_id,
        place_id=where.place.id if where.place else None,
        # The zone's name for the place and the caller's for the spot ("恒通 · 2号门").
        place_name=place_label(where.place.name if where.place else None, alarm.place_name),
        place_type=where.place_type,
        school_id=where.school_id,
        enterprise_id=where.enterprise_id,
        merge_key=merge_key(verdict.category, where),
        received_at=alarm.received_at,
        classified_at=now,
        text=printable(alarm.text),
        source_kind=alarm.source_kind,
        source_id=alarm.source_id,
        reporter_name=printable(alarm.reporter_name) if alarm.reporter_name else None,
        reporter_phone=alarm.reporter_phone,
    )


class OpenMerge(EventModel):
    """The incident that alarms of one merge key join while the window is open."""

    incident_id: uuid.UUID
    opened_at: UtcTimestamp


def merge_into(
    alarm: LocatedAlarm, current: OpenMerge | None, *, window: timedelta
) -> tuple[ClassifiedAlarm, OpenMerge | None]:
    """Decide an alarm's incident; return it and the merge entry to store (None: unchanged)."""
    fields = alarm.model_dump()
    if current is not None and current.incident_id == alarm.incident_id:
        # The alarm that opened this incident, replayed: same answer as the first time.
        return ClassifiedAlarm.model_validate(fields), None
    if current is not None and abs(alarm.received_at - current.opened_at) <= window:
        fields |= {"incident_id": current.incident_id, "merged_into": current.incident_id}
        return ClassifiedAlarm.model_validate(fields), None
    opened = OpenMerge(incident_id=alarm.incident_id, opened_at=alarm.received_at)
    return ClassifiedAlarm.model_validate(fields), opened
