"""Merging a later alarm into its open incident, and telling the units on it what changed."""

from __future__ import annotations

from dispatch.display import printable
from dispatch.events import (
    Assignment,
    AssignmentKind,
    ClassifiedAlarm,
    IncidentState,
)
from dispatch.events.assignments import EXCERPT_CHARS
from dispatch.lifecycle.incident import Incident
from dispatch.lifecycle.transitions import (
    ACTIVE_PARTY_STATES,
    RECENT_ALARM_IDS,
    SYSTEM,
    Effects,
    notice,
    state_change,
    units_still_needed,
)


def merged_needs(incident: Incident, alarm: ClassifiedAlarm) -> tuple[tuple[str, int], ...]:
    """Return the incident's counted needs grown by an alarm's: each capability at the higher
    count, the incident's own first."""
    needs = dict(incident.needs)
    for capability, count in alarm.needs:
        needs[capability] = max(count, needs.get(capability, 0))
    return tuple(needs.items())


def merge_alarm(incident: Incident, alarm: ClassifiedAlarm) -> Effects:
    """Fold another alarm of the same place and kind into its open incident.

    The incident takes the more urgent priority and the larger needs of the two. It asks to be
    routed again (`reroute`) when the alarm made it more urgent or needier (a second call
    reporting someone trapped), or when it still lacks units and no commander holds it yet.
    Which alarms an incident already took is the route stage's to remember (every one, not
    only the recent ids kept here); an alarm among those is a replay and changes nothing.
    """
    if alarm.alarm_id in incident.alarm_ids:
        return Effects(incident)  # replayed input
    urgent = min(incident.priority, alarm.priority)  # "P1" < "P2": the more urgent wins
    needs = merged_needs(incident, alarm)
    capabilities = tuple(
        dict.fromkeys((*incident.required_capabilities, *alarm.required_capabilities))
    )
    grew = urgent != incident.priority or dict(needs) != dict(incident.needs)
    merged = incident.model_copy(
        update={
            "alarm_ids": (*incident.alarm_ids, alarm.alarm_id)[-RECENT_ALARM_IDS:],
            "alarm_count": max(incident.alarm_count, len(incident.alarm_ids)) + 1,
            "priority": urgent,
            "needs": needs,
            "required_capabilities": capabilities[:8],
            "units_needed": max(incident.units_needed, alarm.units_needed),
        }
    )
    reason = f"alarm {alarm.alarm_id} merged ({merged.alarm_count} alarms)"
    if grew:
        wanted = ", ".join(f"{capability} x{count}" for capability, count in needs)
        reason += f"; now {urgent}, needs {wanted or 'unchanged'}"
    change = state_change(
        merged,
        IncidentState.MERGED,
        previous=incident.state,
        reason=reason,
        actor=SYSTEM,
        at=alarm.classified_at,
    )
    lacking = units_still_needed(merged) > 0 and not merged.in_commander_queue
    told = update_notices(merged, alarm, reason=reason.partition("; ")[2]) if grew else ()
    return Effects(merged, assignments=told, state_changes=(change,), reroute=grew or lacking)


def update_notices(
    incident: Incident, alarm: ClassifiedAlarm, *, reason: str
) -> tuple[Assignment, ...]:
    """Tell every unit still on the incident what a later alarm changed, with its words and
    caller; the notice's id derives from the job and the alarm, so a replay tells nobody twice."""
    notices = []
    for party in incident.parties:
        if party.assignment_id is None or party.state not in ACTIVE_PARTY_STATES:
            continue
        sent = party.kind is AssignmentKind.ASSIGNMENT
        name = printable(alarm.reporter_name) if sent and alarm.reporter_name else None
        notices.append(
            notice(
                incident,
                party,
                kind=AssignmentKind.UPDATE,
                at=alarm.classified_at,
                summary=f"Update: {alarm.text}",
                of=alarm.alarm_id,
                text=printable(alarm.text)[:EXCERPT_CHARS],
                # The caller is for the units sent, not for guards alerted to help.
                reporter_name=name,
                reporter_phone=alarm.reporter_phone if sent else None,
                reason=reason or None,
                updates=party.assignment_id,
            )
        )
    return tuple(notices)
