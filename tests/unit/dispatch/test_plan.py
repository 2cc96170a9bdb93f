"""Routing joined to the lifecycle, without a broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    Category,
    ClassifiedAlarm,
    IncidentState,
    PlaceType,
    Position,
    Priority,
    SourceKind,
    UnitAvailability,
)
from dispatch.lifecycle import Incident, LifecyclePolicy, expire_deadlines, open_incident
from dispatch.plan import assigned_units, plan_dispatch, routing_request
from dispatch.routing import RoutingPolicy, UnitIndex, UnitRecord

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
SITE = Position(lat=31.725, lon=113.42)


def north(metres: float) -> Position:
    return Position(lat=SITE.lat + metres / 111_320, lon=SITE.lon)


def unit(
    unit_id: str,
    kind: str,
    metres: float,
    availability: UnitAvailability = UnitAvailability.AVAILABLE,
) -> UnitRecord:
    return UnitRecord(
        unit_id=unit_id,
        kind=kind,
        capabilities=frozenset({kind}),
        speed_kmh=40 if kind == "patrol" else 12,
        availability=availability,
        position=north(metres),
        position_at=NOW,
    )


def incident(priority: Priority = Priority.P1, needed: int = 1) -> Incident:
    return open_incident(
        ClassifiedAlarm(
            alarm_id=uuid.uuid4(),
            incident_id=uuid.uuid4(),
            category=Category.ROBBERY,
            priority=priority,
            required_capabilities=("patrol",),
            units_needed=needed,
            position=SITE,
            place_type=PlaceType.ENTERPRISE,
            enterprise_id="ent-1",
            received_at=NOW,
            classified_at=NOW,
            text="抢劫",
            source_kind=SourceKind.DESK,
            source_id="desk-1",
        )
    )


def index(*records: UnitRecord) -> UnitIndex:
    built = UnitIndex()
    for record in records:
        built.upsert(record)
    return built


def test_nearest_patrol_leads_and_nearby_guards_are_alerted() -> None:
    idx = index(
        unit("p-far", "patrol", 4000),
        unit("p-near", "patrol", 1500),
        unit("g-in", "guard", 400),
        unit("g-out", "guard", 2000),
    )
    effects = plan_dispatch(
        incident(), idx, now=NOW, routing=RoutingPolicy(), lifecycle=LifecyclePolicy()
    )
    jobs = [(a.unit_id, a.kind, a.role) for a in effects.assignments]
    assert jobs == [
        ("p-near", AssignmentKind.ASSIGNMENT, AssignmentRole.PRIMARY),
        ("g-in", AssignmentKind.MUTUAL_AID_ALERT, AssignmentRole.MUTUAL_AID),
    ]
    assert assigned_units(effects) == ("p-near",)
    assert effects.incident.state is IncidentState.DISPATCHED


def test_second_unit_of_a_p1_is_support() -> None:
    idx = index(unit("p-1", "patrol", 500), unit("p-2", "patrol", 900))
    effects = plan_dispatch(
        incident(needed=2), idx, now=NOW, routing=RoutingPolicy(), lifecycle=LifecyclePolicy()
    )
    roles = [(a.unit_id, a.role) for a in effects.assignments]
    assert roles == [("p-1", AssignmentRole.PRIMARY), ("p-2", AssignmentRole.SUPPORT)]


def test_nobody_available_escalates() -> None:
    idx = index(unit("p-1", "patrol", 500, UnitAvailability.BUSY))
    effects = plan_dispatch(
        incident(), idx, now=NOW, routing=RoutingPolicy(), lifecycle=LifecyclePolicy()
    )
    assert effects.assignments == ()
    assert [c.state for c in effects.state_changes] == [IncidentState.ESCALATED]
    assert effects.incident.in_commander_queue


def test_after_a_timeout_the_next_best_is_chosen_and_the_first_is_not_asked_again() -> None:
    idx = index(unit("p-1", "patrol", 500), unit("p-2", "patrol", 900))
    policy = LifecyclePolicy()
    first = plan_dispatch(incident(), idx, now=NOW, routing=RoutingPolicy(), lifecycle=policy)
    later = NOW + timedelta(minutes=1)
    expired = expire_deadlines(first.incident, now=later)
    assert expired.reroute
    assert "p-1" in routing_request(expired.incident, now=later).excluded_unit_ids
    second = plan_dispatch(
        expired.incident, idx, now=later, routing=RoutingPolicy(), lifecycle=policy
    )
    assert [a.unit_id for a in second.assignments] == ["p-2"]
    assert second.assignments[0].attempt == 2
    assert second.assignments[0].role is AssignmentRole.PRIMARY


def test_a_covered_incident_is_not_routed_again() -> None:
    idx = index(unit("p-1", "patrol", 500), unit("p-2", "patrol", 900))
    policy = LifecyclePolicy()
    first = plan_dispatch(incident(), idx, now=NOW, routing=RoutingPolicy(), lifecycle=policy)
    again = plan_dispatch(first.incident, idx, now=NOW, routing=RoutingPolicy(), lifecycle=policy)
    assert again.assignments == ()
    assert again.incident == first.incident
