"""Join routing and the lifecycle: choose units for an incident and dispatch them."""

from __future__ import annotations

from datetime import datetime

from dispatch.events import AssignmentKind, AssignmentRole
from dispatch.lifecycle import (
    Effects,
    Incident,
    LifecyclePolicy,
    Offer,
    dispatch_offers,
    escalate,
    units_still_needed,
)
from dispatch.lifecycle.transitions import ACTIVE_PARTY_STATES
from dispatch.routing import RouteDecision, RoutingPolicy, RoutingRequest, UnitIndex, route


def routing_request(incident: Incident, *, now: datetime) -> RoutingRequest:
    """Ask routing for the units an incident still lacks, never one already tried or engaged."""
    tried = {p.unit_id for p in incident.parties}
    return RoutingRequest(
        position=incident.position,
        priority=incident.priority,
        now=now,
        required_capabilities=frozenset(incident.required_capabilities),
        units_needed=max(1, units_still_needed(incident)),
        grid_id=incident.grid_id,
        school_place_id=incident.school_id,
        enterprise_place_id=incident.enterprise_id,
        excluded_unit_ids=frozenset(incident.excluded_unit_ids) | tried,
    )


def offers_for(incident: Incident, decision: RouteDecision) -> tuple[Offer, ...]:
    """Turn a routing decision into offers: the first unit leads unless one already does."""
    has_lead = any(
        p.role is AssignmentRole.PRIMARY and p.state in ACTIVE_PARTY_STATES
        for p in incident.parties
    )
    offers = []
    for n, chosen in enumerate(decision.primaries):
        role = AssignmentRole.PRIMARY if n == 0 and not has_lead else AssignmentRole.SUPPORT
        offers.append(Offer(chosen.unit_id, role, AssignmentKind.ASSIGNMENT, chosen.eta_s))
    for guard in decision.mutual_aid:
        offers.append(
            Offer(
                guard.unit_id,
                AssignmentRole.MUTUAL_AID,
                AssignmentKind.MUTUAL_AID_ALERT,
                guard.eta_s,
            )
        )
    return tuple(offers)


def plan_dispatch(
    incident: Incident,
    index: UnitIndex,
    *,
    now: datetime,
    routing: RoutingPolicy,
    lifecycle: LifecyclePolicy,
) -> Effects:
    """Route the units the incident still needs and dispatch them; escalate what is missing."""
    if incident.is_closed or units_still_needed(incident) == 0:
        return Effects(incident)
    decision = route(index, routing_request(incident, now=now), routing)
    effects = dispatch_offers(incident, offers_for(incident, decision), now=now, policy=lifecycle)
    if decision.commander_needed or not decision.primaries:
        reason = decision.commander_reason or "no available unit can take this incident"
        effects = effects.then(escalate(effects.incident, reason=reason, now=now))
    return effects


def assigned_units(effects: Effects) -> tuple[str, ...]:
    """Return the units an effect sent on a job (not mutual-aid alerts): they are now busy."""
    return tuple(a.unit_id for a in effects.assignments if a.kind is AssignmentKind.ASSIGNMENT)
