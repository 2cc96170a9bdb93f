"""A dry run of triage and routing for one alarm, as `dispatch triage` shows it to a person.

Nothing is published: the alarm is located, classified on its whole text and planned against a
unit board (every zone unit available at home, or the statuses given), exactly as the stages
would, and the answer says which units would go for which part, and what the commander gets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatch.classify import Classification, Rules, classify
from dispatch.events import (
    ClassifiedAlarm,
    Position,
    RawAlarm,
    SourceKind,
    UnitAvailability,
)
from dispatch.events.base import Text
from dispatch.lifecycle import Incident, open_incident
from dispatch.locate import Location, LocationUnresolved, locate
from dispatch.plan import commander_reason, routing_request
from dispatch.routing import Candidate, RouteDecision, RoutingPolicy, UnitIndex, UnitRecord, route
from dispatch.triage import located_alarm, sensor_kind_of, with_device_place
from dispatch.zone import Zone, ring_centroid

# The event schema's bound on alarm text (dispatch.events.base.Text); the classifier reads the
# whole text, locating and the incident record use this much of it.
_TEXT_LIMIT: int = next(
    int(m.max_length) for m in getattr(Text, "__metadata__", ()) if hasattr(m, "max_length")
)
DRY_RUN_NAMESPACE = uuid.UUID("0d7c4e52-6a1b-4f3e-9b8d-2c5a7e9f1b36")


class InvalidDryAlarm(ValueError):
    """Raised when a dry-run input line is not an alarm (no text, unknown source)."""


@dataclass(frozen=True, slots=True)
class DryRun:
    """One alarm's triage and plan, without sending anything."""

    classification: Classification
    location: Location | None
    incident: Incident | None
    decision: RouteDecision | None
    commander: str | None


def fleet_at_home(zone: Zone, now: datetime) -> UnitIndex:
    """Return a board on which every zone unit is available at its home position."""
    return fleet_from(zone, {}, now)


# unit id -> (availability, position); a unit without a position waits at home.
Statuses = Mapping[str, tuple[str, Position | None]]


def fleet_from(
    zone: Zone, statuses: Statuses, now: datetime, *, unlisted: str = "available"
) -> UnitIndex:
    """Return a board of the zone's units, each with the given (availability, position)."""
    index = UnitIndex()
    for unit in zone.units:
        availability, position = statuses.get(unit.id, (unlisted, None))
        index.upsert(
            UnitRecord(
                unit_id=unit.id,
                kind=unit.kind,
                capabilities=frozenset(unit.capabilities),
                speed_kmh=unit.speed_kmh,
                home_grid_id=unit.home_grid_id,
                home_place_id=unit.home_place_id,
                availability=UnitAvailability(availability),
                position=position or zone.home_position(unit),
                position_at=now,
            )
        )
    return index


def zone_centre(zone: Zone) -> Position:
    """Return the mean of the zone's grid centres: where a dry run without a place is planned."""
    centres = [ring_centroid(grid.polygon) for grid in zone.grids]
    lat = sum(c[0] for c in centres) / len(centres)
    lon = sum(c[1] for c in centres) / len(centres)
    return Position(lat=lat, lon=lon)


def raw_alarm(fields: Mapping[str, Any], *, now: datetime) -> RawAlarm:
    """Build the raw alarm of a dry-run input (`text`, `source`, place fields), text cut to fit."""
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidDryAlarm("an alarm needs a non-empty 'text'")
    source = str(fields.get("source") or fields.get("source_kind") or "hotline")
    if source not in SourceKind.__members__.values():
        raise InvalidDryAlarm(f"unknown source {source!r}: hotline, desk, guard or sensor")
    position = None
    if fields.get("lat") is not None and fields.get("lon") is not None:
        position = {"lat": fields["lat"], "lon": fields["lon"]}
    return RawAlarm.model_validate(
        {
            "alarm_id": uuid.uuid5(DRY_RUN_NAMESPACE, text),
            "received_at": now,
            "source_kind": source,
            "source_id": fields.get("source_id") or f"{source}-dry-run",
            "text": text[:_TEXT_LIMIT],
            "sensor_kind": fields.get("sensor_kind"),
            "position": position,
            "place_id": fields.get("place_id"),
            "place_name": fields.get("place_name"),
            "enterprise_id": fields.get("enterprise_id"),
        }
    )


def dry_run(
    zone: Zone,
    rules: Rules,
    fields: Mapping[str, Any],
    index: UnitIndex,
    *,
    now: datetime,
    routing: RoutingPolicy,
    fallback: Position | None = None,
) -> DryRun:
    """Triage one alarm on its whole text and plan it on the board, sending nothing.

    An alarm that names no place is planned at `fallback` when one is given (the CLI's zone
    centre), and has no plan when none is.
    """
    alarm = with_device_place(zone, raw_alarm(fields, now=now))
    try:
        where: Location | None = locate(zone, alarm)
    except LocationUnresolved:
        where = None
        if fallback is not None:
            grid = zone.grid_at(fallback)
            where = Location(position=fallback, grid_id=grid.id if grid else None, place=None)
    verdict = classify(
        rules,
        text=str(fields["text"]),
        source_kind=alarm.source_kind,
        sensor_kind=sensor_kind_of(zone, alarm),
        place_type=where.place_type if where is not None else None,
    )
    if where is None:
        reason = "location unresolved: the commander must place it before anyone is sent"
        return DryRun(verdict, None, None, None, reason)
    located = located_alarm(alarm, where, verdict, now=now)
    incident = open_incident(
        ClassifiedAlarm.model_validate(located.model_dump(exclude={"reopen_of"}))
    )
    decision = route(index, routing_request(incident, now=now), routing)
    return DryRun(verdict, where, incident, decision, commander_reason(incident, decision))


def as_json(run: DryRun, zone: Zone) -> dict[str, Any]:
    """Return a dry run as one JSON object: category, priority, signals and the plan."""
    verdict = run.classification
    return {
        "category": str(verdict.category),
        "priority": int(verdict.priority.removeprefix("P")),
        "capabilities": list(verdict.required_capabilities),
        "needs": {n.capability: n.count for n in verdict.needs},
        "signals": [
            {"name": s.name, "evidence": [_evidence(e) for e in s.evidence]}
            for s in verdict.signals
        ],
        "discounted": [_evidence(e) for e in verdict.discounted],
        "place": _place(run),
        "plan": _plan(run, zone),
    }


def _evidence(evidence: Any) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "keyword": evidence.keyword,
        "text": evidence.text,
        "at": evidence.start,
    }
    if evidence.hedged:
        shown["hedged"] = True
    if evidence.discounted_by is not None:
        shown["discounted_by"] = evidence.discounted_by
    return shown


def _place(run: DryRun) -> dict[str, Any] | None:
    where = run.location
    if where is None:
        return None
    return {
        "place_id": where.place.id if where.place else None,
        "name": where.place.name if where.place else None,
        "type": str(where.place_type),
        "grid_id": where.grid_id,
        "lat": where.position.lat,
        "lon": where.position.lon,
    }


def _plan(run: DryRun, zone: Zone) -> dict[str, Any]:
    decision = run.decision
    units = _units(decision.primaries if decision else (), zone)
    aid = _units(decision.mutual_aid if decision else (), zone)
    missing = {n.capability: n.count for n in decision.missing} if decision else {}
    return {
        "units": units,
        "mutual_aid": aid,
        "commander": {
            "needed": run.commander is not None,
            "reason": run.commander,
            "missing": missing,
        },
    }


def _units(candidates: Iterable[Candidate], zone: Zone) -> list[dict[str, Any]]:
    shown = []
    for candidate in candidates:
        unit = zone.unit(candidate.unit_id)
        shown.append(
            {
                "unit_id": unit.id,
                "name": unit.name,
                "kind": str(unit.kind),
                "part": candidate.part,
                "eta_s": round(candidate.eta_s, 1),
                "reason": str(candidate.reason),
            }
        )
    return shown
