"""The read API's rows made answers: what a caller may see of each, and its JSON.

Pure functions over the rows of consumers.intake.read_queries: each checks the policy
(can_read_incident, can_read_reporter) for its row and builds the read_models answer, with who
called removed where the caller may not read it.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from consumers.auth import Principal, can_read_incident
from consumers.auth.policy import can_read_reporter
from consumers.intake.read_models import (
    Incident,
    IncidentProgress,
    PartyProgress,
    TimelineEntry,
)
from dispatch.events import (
    AssignmentKind,
    Party,
    Position,
)

_CONTACT_FIELDS = ("reporter_name", "reporter_phone")
PARTIES: TypeAdapter[list[Party]] = TypeAdapter(list[Party])
_DETAIL: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


@dataclass(frozen=True, slots=True)
class Visibility:
    """Whether a principal may see a row, and who called it in."""

    visible: bool
    contact: bool


def visibility_of(
    principal: Principal, enterprise_id: str | None, parties: list[Party]
) -> Visibility:
    """Return what principal may see of an incident at enterprise_id with these parties."""
    units = {p.unit_id for p in parties}
    sent = {p.unit_id for p in parties if p.kind is AssignmentKind.ASSIGNMENT}
    return Visibility(
        visible=can_read_incident(principal, enterprise_id=enterprise_id, unit_ids=units),
        contact=can_read_reporter(principal, enterprise_id=enterprise_id, sent_unit_ids=sent),
    )


def without_contact(value: Any) -> Any:
    """Return value (an event's JSON) with every reporter_name and reporter_phone nulled."""
    if isinstance(value, dict):
        return {
            key: None if key in _CONTACT_FIELDS else without_contact(inner)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [without_contact(inner) for inner in value]
    return value


def position_of(row: asyncpg.Record, prefix: str = "", accuracy: bool = False) -> Position | None:
    lat, lon = row[prefix + "lat"], row[prefix + "lon"]
    if lat is None or lon is None:
        return None
    return Position(lat=lat, lon=lon, accuracy_m=row["accuracy_m"] if accuracy else None)


def incident_of(row: asyncpg.Record, parties: list[Party], *, contact: bool) -> Incident:
    """Return the Incident of a record_incidents row."""
    return Incident(
        incident_id=row["incident_id"],
        state=row["state"],
        is_open=row["is_open"],
        priority=row["priority"],
        category=row["category"],
        enterprise_id=row["enterprise_id"],
        grid_id=row["grid_id"],
        place_name=row["place_name"],
        position=position_of(row),
        first_alarm_id=row["first_alarm_id"],
        alarm_count=row["alarm_count"],
        text=row["text"],
        reporter_name=row["reporter_name"] if contact else None,
        reporter_phone=row["reporter_phone"] if contact else None,
        received_at=row["received_at"],
        classified_at=row["classified_at"],
        dispatched_at=row["dispatched_at"],
        delivered_at=row["delivered_at"],
        accepted_at=row["accepted_at"],
        on_scene_at=row["on_scene_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        updated_at=row["updated_at"],
        last_event_id=row["last_event_id"],
        parties=parties,
    )


def alarm_fields(row: asyncpg.Record, *, contact: bool) -> dict[str, Any]:
    """Return the fields of an Alarm from a record_alarms row."""
    return {
        "alarm_id": row["alarm_id"],
        "received_at": row["received_at"],
        "source_kind": row["source_kind"],
        "source_id": row["source_id"],
        "enterprise_id": row["enterprise_id"],
        "text": row["text"],
        "place_id": row["place_id"],
        "place_name": row["place_name"],
        "position": position_of(row),
        "reporter_name": row["reporter_name"] if contact else None,
        "reporter_phone": row["reporter_phone"] if contact else None,
        "classified_at": row["classified_at"],
        "incident_id": row["incident_id"],
        "category": row["category"],
        "priority": row["priority"],
        "grid_id": row["grid_id"],
        "place_type": row["place_type"],
        "merged_into": row["merged_into"],
    }


def timeline_entry(row: asyncpg.Record, *, contact: bool) -> TimelineEntry:
    """Return a TimelineEntry from a record_events row."""
    detail = _DETAIL.validate_json(row["detail"])
    return TimelineEntry(
        event_id=row["event_id"],
        kind=row["kind"],
        at=row["at"],
        actor=row["actor"],
        unit_id=row["unit_id"],
        assignment_id=row["assignment_id"],
        state=row["state"],
        detail=detail if contact else without_contact(detail),
    )


def board_incident(principal: Principal, row: asyncpg.Record) -> str | None:
    """Return an open incident's board JSON as principal may see it, or None."""
    parties = json.loads(row["parties"])
    units = {p["unit_id"] for p in parties}
    sent = {p["unit_id"] for p in parties if p["kind"] == AssignmentKind.ASSIGNMENT}
    where = row["enterprise_id"]
    if not can_read_incident(principal, enterprise_id=where, unit_ids=units):
        return None
    body: str = row["body"]
    if can_read_reporter(principal, enterprise_id=where, sent_unit_ids=sent):
        return body
    hidden = json.loads(body) | dict.fromkeys(_CONTACT_FIELDS)
    return json.dumps(hidden, ensure_ascii=False)


def page_of(rows: list[asyncpg.Record], limit: int) -> tuple[list[asyncpg.Record], bool]:
    return rows[:limit], len(rows) > limit


def progress_of(
    row: asyncpg.Record, parties: list[Party] | None, etas: dict[uuid.UUID, float]
) -> IncidentProgress | None:
    if row["i_incident_id"] is None or parties is None:
        return None
    return IncidentProgress(
        incident_id=row["i_incident_id"],
        state=row["i_state"],
        is_open=row["i_is_open"],
        priority=row["i_priority"],
        category=row["i_category"],
        dispatched_at=row["i_dispatched_at"],
        accepted_at=row["i_accepted_at"],
        on_scene_at=row["i_on_scene_at"],
        resolved_at=row["i_resolved_at"],
        closed_at=row["i_closed_at"],
        updated_at=row["i_updated_at"],
        parties=[with_eta(party, etas) for party in parties],
    )


def with_eta(party: Party, etas: dict[uuid.UUID, float]) -> PartyProgress:
    eta = etas.get(party.assignment_id) if party.assignment_id else None
    at = (
        party.dispatched_at + timedelta(seconds=eta)
        if eta is not None and party.dispatched_at is not None
        else None
    )
    return PartyProgress(**dict(party), eta_s=eta, eta_at=at)
