"""Turn a raw alarm into a located, classified alarm on its way to the merge step."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from dispatch.classify import Classification, Rules, classify
from dispatch.display import place_label, printable
from dispatch.events import (
    ClassifiedAlarm,
    EventModel,
    LocatedAlarm,
    RawAlarm,
    SourceKind,
    UtcTimestamp,
)
from dispatch.locate import Location, locate, merge_key
from dispatch.zone import Zone

INCIDENT_NAMESPACE = uuid.UUID("3c9a1f64-7d2e-4b8a-9f10-6e5d4c3b2a19")


def provisional_incident_id(alarm_id: uuid.UUID) -> uuid.UUID:
    """Return the incident id an alarm opens if it merges into nothing (stable on replay)."""
    return uuid.uuid5(INCIDENT_NAMESPACE, str(alarm_id))


def sensor_kind_of(zone: Zone, alarm: RawAlarm) -> str | None:
    """Return the alarm's sensor kind, or the kind the zone registers for its device."""
    if alarm.sensor_kind is not None or alarm.source_kind is not SourceKind.SENSOR:
        return alarm.sensor_kind
    device = zone.device(alarm.source_id)
    return device.kind if device is not None else None


def with_device_place(zone: Zone, alarm: RawAlarm) -> RawAlarm:
    """Place a sensor alarm that names no place at its registered device's place or position."""
    device = zone.device(alarm.source_id) if alarm.source_kind is SourceKind.SENSOR else None
    named = alarm.position or alarm.place_id or alarm.place_name or alarm.enterprise_id
    if device is None or named:
        return alarm
    return alarm.model_copy(update={"place_id": device.place_id, "position": device.position})


def triage(zone: Zone, rules: Rules, alarm: RawAlarm, *, now: datetime) -> LocatedAlarm:
    """Locate and classify an alarm; raise LocationUnresolved when the zone cannot place it."""
    alarm = with_device_place(zone, alarm)
    where = locate(zone, alarm)
    verdict = classify(
        rules,
        text=alarm.text,
        source_kind=alarm.source_kind,
        sensor_kind=sensor_kind_of(zone, alarm),
        place_type=where.place_type,
    )
    return located_alarm(alarm, where, verdict, now=now)


def located_alarm(
    alarm: RawAlarm, where: Location, verdict: Classification, *, now: datetime
) -> LocatedAlarm:
    """Build the located alarm of a raw alarm from where it is and what it is."""
    return LocatedAlarm(
        alarm_id=alarm.alarm_id,
        incident_id=provisional_incident_id(alarm.alarm_id),
        category=verdict.category,
        priority=verdict.priority,
        required_capabilities=verdict.required_capabilities,
        units_needed=verdict.units_needed,
        needs=tuple((need.capability, need.count) for need in verdict.needs),
        position=where.position,
        grid_id=where.grid_id,
        place_id=where.place.id if where.place else None,
        # The zone's name for the place and the caller's for the spot ("恒通 · 2号门").
        place_name=place_label(where.place.name if where.place else None, alarm.place_name),
        place_type=where.place_type,
        school_id=where.school_id,
        # An alarm raised for an enterprise stays that enterprise's wherever it is placed.
        enterprise_id=where.enterprise_id or alarm.enterprise_id,
        merge_key=merge_key(verdict.category, where),
        received_at=alarm.received_at,
        classified_at=now,
        text=printable(alarm.text),
        source_kind=alarm.source_kind,
        source_id=alarm.source_id,
        reporter_name=printable(alarm.reporter_name) if alarm.reporter_name else None,
        reporter_phone=alarm.reporter_phone,
        placed_by=alarm.placed_by,
    )


class OpenMerge(EventModel):
    """The incident that alarms of one merge key join while the window is open."""

    incident_id: uuid.UUID
    opened_at: UtcTimestamp


def merge_into(
    alarm: LocatedAlarm, current: OpenMerge | None, *, window: timedelta
) -> tuple[ClassifiedAlarm, OpenMerge | None]:
    """Decide an alarm's incident; return it and the merge entry to store (None: unchanged).

    An alarm the route stage sent back because the incident this key led to had closed
    (`reopen_of`) opens an incident of its own, unless another such alarm already did. An
    alarm the commander placed (`placed_by`) keeps the incident its escalation opened on the
    board, and joins no other: see place_without_merging.
    """
    fields = alarm.model_dump(exclude={"reopen_of"})
    if current is not None and current.incident_id == alarm.reopen_of:
        current = None
    if current is not None and current.incident_id == alarm.incident_id:
        # The alarm that opened this incident, replayed: same answer as the first time.
        return ClassifiedAlarm.model_validate(fields), None
    if alarm.placed_by is not None:
        return place_without_merging(alarm, current, window=window)
    if current is not None and abs(alarm.received_at - current.opened_at) <= window:
        fields |= {"incident_id": current.incident_id, "merged_into": current.incident_id}
        return ClassifiedAlarm.model_validate(fields), None
    opened = OpenMerge(incident_id=alarm.incident_id, opened_at=alarm.received_at)
    return ClassifiedAlarm.model_validate(fields), opened


def place_without_merging(
    alarm: LocatedAlarm, current: OpenMerge | None, *, window: timedelta
) -> tuple[ClassifiedAlarm, OpenMerge | None]:
    """Route a placed alarm as its own incident, the one the commander has been looking at.

    The zone could not place the alarm, so the classify stage showed it to the commander as an
    escalated incident of its provisional id, which no stage holds. Merged into another open
    incident, that escalation would stay open on every board and in the record for good, with
    nothing left to close it; kept, it is routed like any incident and the commander can
    close it as a duplicate. Later alarms of the key join it unless another incident of the
    key is open within the window (that one keeps them).
    """
    classified = ClassifiedAlarm.model_validate(alarm.model_dump(exclude={"reopen_of"}))
    if current is not None and abs(alarm.received_at - current.opened_at) <= window:
        return classified, None
    return classified, OpenMerge(incident_id=alarm.incident_id, opened_at=alarm.received_at)
