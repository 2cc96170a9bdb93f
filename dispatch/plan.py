"""Join routing and the lifecycle: choose units for an incident and dispatch them."""

from __future__ import annotations

from datetime import datetime

from dispatch.events import AssignmentKind, AssignmentRole, Category
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
from dispatch.routing import (
    MAX_PARTS,
    Need,
    RouteDecision,
    RoutingPolicy,
    RoutingRequest,
    UnitIndex,
    legacy_needs,
    plan_size,
    route,
)


def needs_of(incident: Incident) -> tuple[Need, ...]:
    """Return the incident's counted needs; older records are read from capabilities and units."""
    if incident.needs:
        return tuple(Need(capability, count) for capability, count in incident.needs)
    return legacy_needs(incident.required_capabilities, incident.units_needed)


def engaged_units(incident: Incident) -> frozenset[str]:
    """Return the units on a job for the incident now: they keep the parts they hold."""
    return frozenset(
        p.unit_id
        for p in incident.parties
        if p.kind is AssignmentKind.ASSIGNMENT and p.state in ACTIVE_PARTY_STATES
    )


def routing_request(incident: Incident, *, now: datetime) -> RoutingRequest:
    """Ask routing for the parts an incident still lacks, never from a unit already tried."""
    tried = {p.unit_id for p in incident.parties}
    return RoutingRequest(
        position=incident.position,
        priority=incident.priority,
        now=now,
        needs=needs_of(incident),
        grid_id=incident.grid_id,
        school_place_id=incident.school_id,
        enterprise_place_id=incident.enterprise_id,
        excluded_unit_ids=frozenset(incident.excluded_unit_ids) | tried,
        engaged_unit_ids=engaged_units(incident),
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


def commander_reason(incident: Incident, decision: RouteDecision) -> str | None:
    """Say why the commander must look at this incident now, or None."""
    reasons = []
    if incident.category is Category.UNCLASSIFIED and incident.attempt == 0:
        # Nothing in the text matched: a person reads it; the nearest patrol goes meanwhile.
        reasons.append(f"unclassified alarm, nothing in it matched the rules: {incident.summary}")
    if decision.commander_needed:
        reasons.append(decision.commander_reason or "some parts could not be covered")
    return "; ".join(reasons) or None


def plan_dispatch(
    incident: Incident,
    index: UnitIndex,
    *,
    now: datetime,
    routing: RoutingPolicy,
    lifecycle: LifecyclePolicy,
) -> Effects:
    """Route the parts the incident still lacks and dispatch them; escalate what is missing."""
    if incident.is_closed:
        return Effects(incident)
    request = routing_request(incident, now=now)
    # The plan may hold more parts than classification counted (the school's officer beside
    # the patrol): the lifecycle re-routes until this many units are engaged.
    size = min(MAX_PARTS, plan_size(request, routing))
    if incident.units_needed != size:
        incident = incident.model_copy(update={"units_needed": size})
    if units_still_needed(incident) == 0:
        return Effects(incident)
    decision = route(index, request, routing)
    effects = dispatch_offers(incident, offers_for(incident, decision), now=now, policy=lifecycle)
    reason = commander_reason(incident, decision)
    if reason is not None:
        effects = effects.then(escalate(effects.incident, reason=reason, now=now))
    return effects


def assigned_units(effects: Effects) -> tuple[str, ...]:
    """Return the units an effect sent on a job (not mutual-aid alerts): they are now busy."""
    return tuple(a.unit_id for a in effects.assignments if a.kind is AssignmentKind.ASSIGNMENT)
