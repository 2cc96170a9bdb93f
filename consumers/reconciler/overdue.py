"""The change that shows an overdue alarm to the commander: `escalated`, on its own incident."""

from __future__ import annotations

import uuid
from datetime import datetime

from consumers.reconciler.ledger import RECONCILER
from dispatch.classify import Rules, classify
from dispatch.display import printable
from dispatch.events import (
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Position,
    Priority,
    RawAlarm,
)
from dispatch.events.assignments import EXCERPT_CHARS
from dispatch.locate import LocationUnresolved, locate
from dispatch.triage import provisional_incident_id
from dispatch.zone import Zone

OVERDUE_NAMESPACE = uuid.UUID("5b0e3f2a-9c41-4d6e-8a7b-2f1c0d9e8b73")


def overdue_change(
    zone: Zone, rules: Rules, alarm: RawAlarm, *, reports: int, now: datetime
) -> IncidentStateChange:
    """Return the escalation of an alarm that has had no decision: at least P2, whatever its
    text says, since an alarm nobody decided is urgent by now."""
    verdict = classify(
        rules, text=alarm.text, source_kind=alarm.source_kind, sensor_kind=alarm.sensor_kind
    )
    position: Position | None = alarm.position
    place_name = alarm.place_name
    try:
        where = locate(zone, alarm)
        position = where.position
        place_name = where.place.name if where.place else place_name
    except LocationUnresolved:
        pass  # the commander places it, as for any alarm the zone cannot place
    waited = (now - alarm.received_at).total_seconds()
    reason = f"overdue: alarm {alarm.alarm_id} received {waited:.0f} s ago has no decision yet" + (
        "; published again" if reports == 0 else f"; reminder {reports}"
    )
    incident_id = provisional_incident_id(alarm.alarm_id)
    return IncidentStateChange(
        event_id=uuid.uuid5(OVERDUE_NAMESPACE, f"{alarm.alarm_id}:{reports}"),
        incident_id=incident_id,
        state=IncidentState.ESCALATED,
        reason=reason,
        actor=RECONCILER,
        at=now,
        priority=min(verdict.priority, Priority.P2),
        category=verdict.category,
        position=position,
        place_name=place_name,
        enterprise_id=alarm.enterprise_id,
        timing=IncidentTiming(received_at=alarm.received_at),
        first_alarm_id=alarm.alarm_id,
        text=printable(alarm.text)[:EXCERPT_CHARS],
        reporter_name=printable(alarm.reporter_name) if alarm.reporter_name else None,
        reporter_phone=alarm.reporter_phone,
    )
