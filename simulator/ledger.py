"""The tester's audit: did the system decide every alarm it gave a receipt for, and was every
unit told of every job taken from it? Built from `incidents.state` and `alarms.dlq` alone.

Decision rules (docs/events.md): an alarm is decided when
- a state change of the incident it opens exists (`provisional_incident_id(alarm_id)`), or a
  change names it as its `first_alarm_id`, or lists it in `merged_alarm_ids` (the most recent
  20 of an incident, so every merge's own change lists the alarm it merged), or
- a dead letter holds it (the record's `alarm_id`, read from its original value).

Withdrawn jobs per the parties: a party whose state becomes `cancelled` (reassigned, cancelled)
or `timed_out`, or `resolved` in the incident's `resolved` change without being the unit that
resolved it (its actor), since docs/lifecycle.md stands all of those down.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dispatch.events import (
    AssignmentKind,
    DeadLetter,
    IncidentState,
    IncidentStateChange,
    Party,
    PartyState,
)
from dispatch.triage import provisional_incident_id

# docs/events.md (Bundles): how the internal hops frame several records in one.
BUNDLE_MAGIC = b"\x00dispatch-bundle/1\n"
EVER = datetime.min.replace(tzinfo=UTC)
WITHDRAWN_STATES = frozenset({PartyState.CANCELLED, PartyState.TIMED_OUT})
# A party in one of these is still on its job (docs/events.md, Party). Written here from the
# docs rather than imported from dispatch.lifecycle: the audit must not share the code it audits.
ON_IT = frozenset(
    {
        PartyState.DISPATCHED,
        PartyState.DELIVERED,
        PartyState.ACKED,
        PartyState.ACCEPTED,
        PartyState.EN_ROUTE,
        PartyState.ON_SCENE,
    }
)


def alarm_ids_in(value: bytes) -> set[uuid.UUID]:
    """Return the alarm ids a dead letter's original value holds (a record or a bundle)."""
    values = [value]
    if value.startswith(BUNDLE_MAGIC):
        values, rest = [], value[len(BUNDLE_MAGIC) :]
        try:
            while rest:
                (key_len,) = struct.unpack(">I", rest[:4])
                rest = rest[4 + key_len :]
                (value_len,) = struct.unpack(">I", rest[:4])
                values.append(rest[4 : 4 + value_len])
                rest = rest[4 + value_len :]
        except struct.error:
            pass  # a broken frame: what was read before it still counts
    found = set()
    for one in values:
        try:
            record = json.loads(one)
            found.add(uuid.UUID(str(record["alarm_id"])))
        except (ValueError, TypeError, KeyError):
            continue
    return found


@dataclass
class Ledger:
    """Fold incident changes and dead letters, in topic order, into what was decided."""

    # principal id -> unit id, for telling the unit that resolved an incident (default: same).
    actor_units: Mapping[str, str] = field(default_factory=dict)
    incidents: set[uuid.UUID] = field(default_factory=set)
    # alarm id -> the incident whose change names it (first_alarm_id, merged_alarm_ids)
    named: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    dead_lettered: set[uuid.UUID] = field(default_factory=set)
    # assignment id -> (unit id, incident id, when) of every job the parties show withdrawn
    withdrawn: dict[uuid.UUID, tuple[str, uuid.UUID, datetime]] = field(default_factory=dict)
    unreadable: int = 0
    _parties: dict[uuid.UUID, dict[uuid.UUID, Party]] = field(default_factory=dict)

    def add_change(self, change: IncidentStateChange) -> None:
        """Take one incidents.state record."""
        self.incidents.add(change.incident_id)
        for alarm_id in (*change.merged_alarm_ids, change.first_alarm_id):
            if alarm_id is not None:
                self.named[alarm_id] = change.incident_id
        before = self._parties.setdefault(change.incident_id, {})
        resolver = self.actor_units.get(change.actor, change.actor)
        for party in change.parties:
            if party.assignment_id is None:
                continue
            earlier = before.get(party.assignment_id)
            if party.state in WITHDRAWN_STATES or (
                party.state is PartyState.RESOLVED
                and change.state is IncidentState.RESOLVED
                and (earlier is None or earlier.state is not PartyState.RESOLVED)
                and party.unit_id != resolver
            ):
                self.withdrawn.setdefault(
                    party.assignment_id, (party.unit_id, change.incident_id, change.at)
                )
            before[party.assignment_id] = party

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Take one alarms.dlq record."""
        self.dead_lettered.update(alarm_ids_in(letter.value))

    def decided(self, alarm_id: uuid.UUID) -> bool:
        """Tell whether the system decided an alarm: an incident of it, or a dead letter."""
        return (
            provisional_incident_id(alarm_id) in self.incidents
            or alarm_id in self.named
            or alarm_id in self.dead_lettered
        )

    def undecided(self, alarm_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        """Return the alarms of alarm_ids not decided yet, in their order."""
        return [alarm_id for alarm_id in alarm_ids if not self.decided(alarm_id)]

    def incidents_of(self, alarm_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Return the incidents the given alarms opened or merged into, as far as seen."""
        found = set()
        for alarm_id in alarm_ids:
            if (opened := provisional_incident_id(alarm_id)) in self.incidents:
                found.add(opened)
            if alarm_id in self.named:
                found.add(self.named[alarm_id])
        return found

    def _parties_of(
        self, incident_ids: Iterable[uuid.UUID], since: datetime
    ) -> list[tuple[uuid.UUID, Party]]:
        return [
            (assignment_id, party)
            for incident_id in incident_ids
            for assignment_id, party in self._parties.get(incident_id, {}).items()
            if party.dispatched_at is None or party.dispatched_at >= since
        ]

    def jobs_sent(
        self, incident_ids: Iterable[uuid.UUID], since: datetime = EVER
    ) -> dict[str, set[uuid.UUID]]:
        """Return, per unit, the jobs and alerts of these incidents dispatched since a moment
        (a run's alarms may merge into an older incident, whose earlier jobs are not the run's),
        less those the reserve stage refused before they reached their unit (`taken`).
        """
        sent: dict[str, set[uuid.UUID]] = {}
        for assignment_id, party in self._parties_of(incident_ids, since):
            if party.state is PartyState.TAKEN:
                # Refused by the unit's single writer (another incident held the unit): the
                # job never went to the unit, and the incident sent another instead.
                continue
            sent.setdefault(party.unit_id, set()).add(assignment_id)
        return sent

    def jobs_withdrawn(
        self, incident_ids: Iterable[uuid.UUID], since: datetime = EVER
    ) -> dict[str, set[uuid.UUID]]:
        """Return, per unit, the jobs of these incidents the parties show withdrawn since then."""
        wanted = set(incident_ids)
        withdrawn: dict[str, set[uuid.UUID]] = {}
        for assignment_id, (unit_id, incident_id, at) in self.withdrawn.items():
            if incident_id in wanted and at >= since:
                withdrawn.setdefault(unit_id, set()).add(assignment_id)
        return withdrawn

    def units_still_on(self, incident_ids: Iterable[uuid.UUID], since: datetime = EVER) -> int:
        """Return how many units sent to these incidents since then are still on them (not
        alerted guards: an alert stays open on an incident that waits for the commander)."""
        return sum(
            1
            for _, party in self._parties_of(incident_ids, since)
            if party.kind is AssignmentKind.ASSIGNMENT and party.state in ON_IT
        )
