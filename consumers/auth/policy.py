"""The role matrix: who may do what to which data. Pure functions, no I/O.

Each function returns a bool and never raises: the gateway turns False into a 403 for a
request and uses the same function as a filter on what it streams, and a filter wants a
predicate. A principal is already authenticated (enabled, token active) when it gets here.

One principal has one role. An administrator manages principals and tokens and does nothing
operational; a person who also commands holds a second, commander principal. That keeps each
token's power obvious from its role alone. See docs/auth.md for the matrix as a table.
"""

from __future__ import annotations

from collections.abc import Collection

from consumers.auth.models import UNIT_ROLES, Principal, Role

# Sources that raise alarms: desks, guard handhelds, sensors (and the hotline system, which is a
# sensor principal), and the commander, who may take an alarm by phone.
_RAISERS = frozenset({Role.DESK, Role.GUARD, Role.SENSOR, Role.COMMANDER})


def can_raise_alarm(principal: Principal, *, enterprise_id: str | None) -> bool:
    """Tell whether principal may raise an alarm at enterprise_id (None: not at an enterprise).

    A principal bound to an enterprise (every desk; a guard or sensor when bound) raises only
    for that enterprise; an unbound guard or sensor raises anywhere; the commander anywhere.
    """
    if principal.role not in _RAISERS:
        return False
    if principal.enterprise_id is not None:
        return enterprise_id == principal.enterprise_id
    # A desk is always bound (Principal refuses one without an enterprise), so only unbound
    # guards and sensors, and the commander, get here.
    return True


def can_read_incident(
    principal: Principal, *, enterprise_id: str | None, unit_ids: Collection[str]
) -> bool:
    """Tell whether principal may see an incident.

    enterprise_id is the enterprise the incident happened at (None: elsewhere); unit_ids are
    the units it was sent to or alerted for mutual aid. A desk sees its own enterprise's
    incidents, a unit those sent or alerted to it, the commander all.
    """
    if principal.role is Role.COMMANDER:
        return True
    if principal.role is Role.DESK:
        return enterprise_id is not None and enterprise_id == principal.enterprise_id
    if principal.role in UNIT_ROLES:
        return principal.unit_id is not None and principal.unit_id in unit_ids
    return False


def can_read_reporter(
    principal: Principal, *, enterprise_id: str | None, sent_unit_ids: Collection[str]
) -> bool:
    """Tell whether principal may see who reported an incident and their call-back number.

    The commander, the desk of the incident's own enterprise and the units sent to it; not a
    guard only alerted for mutual aid, who may belong to another enterprise.
    """
    if principal.role is Role.COMMANDER:
        return True
    if principal.role is Role.DESK:
        return enterprise_id is not None and enterprise_id == principal.enterprise_id
    if principal.role in UNIT_ROLES:
        return principal.unit_id is not None and principal.unit_id in sent_unit_ids
    return False


# Roles that may list and open incidents through the read API; which ones, can_read_incident
# decides row by row (a desk its enterprise's, a unit those it was a party to).
_INCIDENT_READERS = frozenset({Role.COMMANDER, Role.DESK, *UNIT_ROLES})


def can_list_incidents(principal: Principal) -> bool:
    """Tell whether principal may search incidents at all (each row: can_read_incident)."""
    return principal.role in _INCIDENT_READERS


def can_list_alarms(principal: Principal) -> bool:
    """Tell whether principal may list alarms and their progress: a desk (its enterprise's
    only) and the commander (all). A raiser reads its own receipts one by one instead."""
    return principal.role in (Role.COMMANDER, Role.DESK)


def can_search_enterprise(principal: Principal, *, enterprise_id: str) -> bool:
    """Tell whether principal may ask for enterprise_id's incidents or alarms by name.

    A desk names only its own: naming another is refused rather than answered empty, so a
    desk learns nothing of another enterprise, not even that it has none. A unit's search
    stays within its own incidents, whatever it names; the commander names any.
    """
    if principal.role is Role.DESK:
        return enterprise_id == principal.enterprise_id
    return principal.role in _INCIDENT_READERS


def can_read_board(principal: Principal) -> bool:
    """Tell whether principal may read the board's starting picture and every unit's position."""
    return principal.role is Role.COMMANDER


def can_read_reports(principal: Principal) -> bool:
    """Tell whether principal may read the zone's reports (every grid's, unit's and
    enterprise's figures): the commander only."""
    return principal.role is Role.COMMANDER


def can_place_alarm(principal: Principal) -> bool:
    """Tell whether principal may place an alarm the zone could not: the commander only, who
    sees the escalation and can call the caller back."""
    return principal.role is Role.COMMANDER


def can_act_on_assignment(principal: Principal, *, unit_id: str) -> bool:
    """Tell whether principal may answer (accept, decline, report progress) for unit_id's job.

    A unit acts only for itself; the commander may act for any unit (e.g. record an
    acceptance that came in by radio). The same check covers a unit's position reports.
    """
    if principal.role is Role.COMMANDER:
        return True
    return principal.role in UNIT_ROLES and principal.unit_id == unit_id


def can_command(principal: Principal) -> bool:
    """Tell whether principal may assign, reassign, cancel and close by hand and see the board."""
    return principal.role is Role.COMMANDER


def can_administer(principal: Principal) -> bool:
    """Tell whether principal may manage principals and tokens."""
    return principal.role is Role.ADMIN
