"""The ledger's decision rules: which alarms the system decided, which jobs it withdrew."""

from __future__ import annotations

import base64
import json
import struct
import uuid
from datetime import UTC, datetime

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    Category,
    DeadLetter,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    Priority,
)
from dispatch.triage import provisional_incident_id
from simulator.ledger import BUNDLE_MAGIC, Ledger, alarm_ids_in


def change(
    incident_id: uuid.UUID,
    state: IncidentState = IncidentState.CLASSIFIED,
    *,
    parties: tuple[Party, ...] = (),
    actor: str = "system",
    merged: tuple[uuid.UUID, ...] = (),
    first: uuid.UUID | None = None,
) -> IncidentStateChange:
    """Return an incidents.state record."""
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=incident_id,
        state=state,
        actor=actor,
        at=datetime.now(UTC),
        priority=Priority.P2,
        category=Category.FIGHT,
        timing=IncidentTiming(),
        parties=parties,
        merged_alarm_ids=merged,
        first_alarm_id=first,
    )


def party(unit_id: str, assignment_id: uuid.UUID, state: PartyState) -> Party:
    """Return a unit's party in an incident."""
    return Party(
        unit_id=unit_id,
        assignment_id=assignment_id,
        role=AssignmentRole.PRIMARY,
        kind=AssignmentKind.ASSIGNMENT,
        state=state,
    )


def dead_letter(value: bytes) -> DeadLetter:
    """Return a dead letter of a record of alarms.raw."""
    return DeadLetter.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "source_topic": "alarms.raw",
            "partition": 0,
            "offset": 7,
            "value": base64.b64encode(value).decode(),
            "reason": "invalid RawAlarm",
            "stage": "classify",
            "failed_at": datetime.now(UTC).isoformat(),
        }
    )


def test_an_alarm_is_decided_by_a_change_of_the_incident_it_opens() -> None:
    ledger = Ledger()
    alarm = uuid.uuid4()
    assert not ledger.decided(alarm)
    ledger.add_change(change(provisional_incident_id(alarm)))
    assert ledger.decided(alarm)


def test_an_alarm_is_decided_when_a_change_lists_it_as_merged_or_first() -> None:
    ledger = Ledger()
    merged, first, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ledger.add_change(change(uuid.uuid4(), IncidentState.MERGED, merged=(merged,), first=first))
    assert ledger.decided(merged)
    assert ledger.decided(first)
    assert ledger.undecided([merged, other, first]) == [other]


def test_an_alarm_is_decided_by_its_dead_letter_plain_or_in_a_bundle() -> None:
    ledger = Ledger()
    plain, bundled = uuid.uuid4(), uuid.uuid4()
    ledger.add_dead_letter(dead_letter(json.dumps({"alarm_id": str(plain)}).encode()))
    value = json.dumps({"alarm_id": str(bundled)}).encode()
    key = b"fight@ent-hengtong"
    frame = struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value
    ledger.add_dead_letter(dead_letter(BUNDLE_MAGIC + frame))
    assert ledger.decided(plain)
    assert ledger.decided(bundled)


def test_a_dead_letter_that_is_not_an_alarm_decides_nothing() -> None:
    assert alarm_ids_in(b"\x00\xff not json") == set()
    assert alarm_ids_in(b'{"alarm_id": "not a uuid"}') == set()
    assert alarm_ids_in(BUNDLE_MAGIC + b"\x00\x00") == set()


def test_cancelled_and_timed_out_parties_are_withdrawn_jobs() -> None:
    ledger = Ledger()
    incident, a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ledger.add_change(
        change(
            incident,
            IncidentState.DISPATCHED,
            parties=(
                party("u1", a, PartyState.DISPATCHED),
                party("u2", b, PartyState.DISPATCHED),
                party("u3", c, PartyState.DISPATCHED),
            ),
        )
    )
    ledger.add_change(
        change(
            incident,
            IncidentState.TIMED_OUT,
            parties=(
                party("u1", a, PartyState.TIMED_OUT),
                party("u2", b, PartyState.CANCELLED),
                party("u3", c, PartyState.DECLINED),
            ),
        )
    )
    assert ledger.jobs_withdrawn(ledger.incidents) == {"u1": {a}, "u2": {b}}


def test_on_resolution_every_other_active_party_is_withdrawn_not_the_resolver() -> None:
    ledger = Ledger(actor_units={"phone-7": "u1"})
    incident, a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ledger.add_change(
        change(
            incident,
            IncidentState.ON_SCENE,
            parties=(
                party("u1", a, PartyState.ON_SCENE),
                party("u2", b, PartyState.EN_ROUTE),
                party("u3", c, PartyState.DECLINED),
            ),
        )
    )
    resolved = change(
        incident,
        IncidentState.RESOLVED,
        actor="phone-7",
        parties=(
            party("u1", a, PartyState.RESOLVED),
            party("u2", b, PartyState.RESOLVED),
            party("u3", c, PartyState.DECLINED),
        ),
    )
    ledger.add_change(resolved)
    ledger.add_change(resolved)  # a replayed change withdraws nothing more
    assert ledger.jobs_withdrawn(ledger.incidents) == {"u2": {b}}


def test_a_commanders_close_withdraws_every_active_party() -> None:
    ledger = Ledger()
    incident, a = uuid.uuid4(), uuid.uuid4()
    ledger.add_change(
        change(incident, IncidentState.ACCEPTED, parties=(party("u1", a, PartyState.ACCEPTED),))
    )
    ledger.add_change(
        change(
            incident,
            IncidentState.RESOLVED,
            actor="commander-duty",
            parties=(party("u1", a, PartyState.RESOLVED),),
        )
    )
    assert ledger.jobs_withdrawn(ledger.incidents) == {"u1": {a}}
