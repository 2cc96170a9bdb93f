"""What decides an alarm, and how an overdue one is shown to the commander."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from consumers.reconciler.ledger import RECONCILER, decision_of
from consumers.reconciler.overdue import overdue_change
from dispatch.events import (
    Category,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Priority,
    RawAlarm,
    SourceKind,
)
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from streams.pipeline import load_zone_and_rules

NOW = datetime.now(UTC)


def change(
    *, actor: str = "system", first: uuid.UUID | None = None, merged: int = 0
) -> IncidentStateChange:
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        state=IncidentState.MERGED,
        actor=actor,
        at=NOW,
        priority=Priority.P3,
        category=Category.THEFT,
        timing=IncidentTiming(),
        first_alarm_id=first,
        merged_alarm_ids=tuple(uuid.uuid4() for _ in range(merged)),
    )


def test_a_change_decides_its_incident_and_every_alarm_it_names() -> None:
    first = uuid.uuid4()
    seen = change(first=first, merged=3)
    decision = decision_of(seen)
    assert decision is not None
    assert decision.incident_id == seen.incident_id
    assert decision.alarm_ids == (first, *seen.merged_alarm_ids)


def test_the_reconcilers_own_escalation_decides_nothing() -> None:
    assert decision_of(change(actor=RECONCILER, first=uuid.uuid4())) is None


def raw(text: str) -> RawAlarm:
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=NOW - timedelta(seconds=45),
        source_kind=SourceKind.DESK,
        source_id="desk-hengtong",
        enterprise_id="ent-hengtong",
        text=text,
        reporter_phone="+86 722 333 1234",
    )


def test_an_overdue_alarm_goes_to_the_commander_at_p2_at_least_with_its_caller() -> None:
    zone, rules = load_zone_and_rules(Settings())
    minor = raw("门口停了一辆车挡路")
    shown = overdue_change(zone, rules, minor, reports=0, now=NOW)
    assert shown.state is IncidentState.ESCALATED
    assert shown.actor == RECONCILER
    assert shown.incident_id == provisional_incident_id(minor.alarm_id)
    assert shown.priority <= Priority.P2
    assert shown.reporter_phone == minor.reporter_phone
    assert shown.position is not None  # placed at the desk's enterprise
    assert shown.reason is not None
    assert "45 s" in shown.reason
    assert "published again" in shown.reason
    # A reminder is another event, not the same one again.
    again = overdue_change(zone, rules, minor, reports=1, now=NOW)
    assert again.event_id != shown.event_id
    # A life threat stays P1.
    urgent = overdue_change(zone, rules, raw("仓库着火了,有人被困"), reports=0, now=NOW)
    assert urgent.priority is Priority.P1
