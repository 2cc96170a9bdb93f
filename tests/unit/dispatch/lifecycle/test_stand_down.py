"""Every party whose job is withdrawn is told so, once, and a unit taken off is free again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    CommanderAction,
    IncidentState,
    PartyState,
    Priority,
    ResponseAction,
    encode,
)
from dispatch.lifecycle import (
    Effects,
    Incident,
    Offer,
    apply_command,
    apply_response,
    cancel,
    close,
    dispatch_offers,
    expire_deadlines,
)
from tests.unit.dispatch.lifecycle.test_commands import command
from tests.unit.dispatch.lifecycle.test_lifecycle import AID, JOB, POLICY, T0, dispatched, response

AT = T0 + timedelta(seconds=30)
STAND_DOWN = AssignmentKind.STAND_DOWN


def with_guard(incident: Incident) -> Incident:
    """Return the incident with guard-1 alerted for mutual aid."""
    aid = (Offer("guard-1", AssignmentRole.MUTUAL_AID, AID),)
    return dispatch_offers(incident, aid, now=T0 + timedelta(seconds=2), policy=POLICY).incident


def job_of(incident: Incident, unit_id: str) -> uuid.UUID:
    party = next(p for p in incident.parties if p.unit_id == unit_id)
    assert party.assignment_id is not None
    return party.assignment_id


def told(effects: Effects) -> dict[str, Assignment]:
    """Return the stand-downs of an effect by unit, checking their shape on the way."""
    downs = {a.unit_id: a for a in effects.assignments if a.kind is STAND_DOWN}
    for down in downs.values():
        assert down.schema_version == 2
        assert down.incident_id == effects.incident.incident_id
        assert down.summary.startswith("Stand down: ")
        assert Assignment.model_validate_json(encode(down)) == down  # a valid record
    return downs


def test_a_reassign_tells_the_unit_taken_off_which_job_is_withdrawn_and_frees_it() -> None:
    incident = dispatched("patrol-1")
    cmd = command(incident, CommanderAction.REASSIGN, unit_id="patrol-2", from_unit_id="patrol-1")
    effects = apply_command(incident, cmd, policy=POLICY)
    (down,) = told(effects).values()
    assert (down.unit_id, down.withdraws) == ("patrol-1", job_of(incident, "patrol-1"))
    assert down.reason is not None
    assert "commander-1" in down.reason
    assert down.dispatched_at == AT
    assert effects.freed_units == ("patrol-1",)


@pytest.mark.parametrize("decide", [cancel, close])
def test_cancel_and_close_tell_every_active_party_and_free_only_units_sent(
    decide: Callable[..., Effects],
) -> None:
    incident = with_guard(dispatched("patrol-1", "patrol-2", priority=Priority.P1, needed=2))
    declined = apply_response(
        incident, response(incident, "patrol-2", ResponseAction.DECLINE, T0, reason="broken down")
    ).incident
    effects: Effects = decide(declined, reason="false alarm", actor="commander-1", now=AT)
    downs = told(effects)
    # patrol-2 declined: it already knows, and its job is no longer its own to withdraw.
    assert sorted(downs) == ["guard-1", "patrol-1"]
    assert downs["guard-1"].role is AssignmentRole.MUTUAL_AID
    assert downs["patrol-1"].withdraws == job_of(incident, "patrol-1")
    assert effects.freed_units == ("patrol-1",)  # alerting a guard never made it busy


def test_a_unit_resolving_stands_down_the_others_still_on_it() -> None:
    incident = with_guard(dispatched("patrol-1", "patrol-2", priority=Priority.P1, needed=2))
    on_scene = apply_response(
        incident, response(incident, "patrol-1", ResponseAction.ON_SCENE, T0)
    ).incident
    effects = apply_response(on_scene, response(on_scene, "patrol-1", ResponseAction.RESOLVED, AT))
    assert effects.incident.state is IncidentState.RESOLVED
    downs = told(effects)
    assert sorted(downs) == ["guard-1", "patrol-2"]  # not the unit that resolved it
    assert "resolved by patrol-1" in (downs["patrol-2"].reason or "")
    assert effects.freed_units == ("patrol-2",)
    states = {p.unit_id: p.state for p in effects.incident.parties}
    assert set(states.values()) == {PartyState.RESOLVED}


def test_a_unit_that_did_not_accept_in_time_is_told_but_not_freed() -> None:
    incident = dispatched("patrol-1", priority=Priority.P1)
    due = incident.deadlines[0].due_at
    effects = expire_deadlines(incident, now=due)
    (down,) = told(effects).values()
    assert (down.unit_id, down.withdraws) == ("patrol-1", job_of(incident, "patrol-1"))
    assert effects.freed_units == ()  # silent: offered nothing more until it reports in


def test_a_decline_recorded_by_the_commander_tells_the_unit_its_job_is_withdrawn() -> None:
    incident = dispatched("patrol-1", priority=Priority.P1)
    by_radio = response(incident, "patrol-1", ResponseAction.DECLINE, AT, reason="tyre burst")
    by_radio = by_radio.model_copy(update={"actor": "commander-1"})
    effects = apply_response(incident, by_radio)
    (down,) = told(effects).values()
    assert (down.unit_id, down.withdraws) == ("patrol-1", job_of(incident, "patrol-1"))
    assert down.reason == "declined for you by commander-1: tyre burst"
    assert effects.freed_units == ()  # as after its own decline
    assert effects.reroute  # the next-best unit is still sought
    # Replayed, it withdraws nothing twice; the unit's own decline needs no stand-down.
    assert apply_response(effects.incident, by_radio).assignments == ()
    own = response(incident, "patrol-1", ResponseAction.DECLINE, AT, reason="tyre burst")
    assert told(apply_response(incident, own)) == {}


def test_a_replay_withdraws_nothing_twice_and_the_ids_are_stable() -> None:
    incident = dispatched("patrol-1")
    first = cancel(incident, reason="false alarm", actor="commander-1", now=AT)
    again = cancel(incident, reason="false alarm", actor="commander-1", now=AT)
    assert first.assignments == again.assignments  # same input, same ids
    assert cancel(first.incident, reason="x", actor="commander-1", now=AT).assignments == ()
    cmd = command(incident, CommanderAction.CANCEL)
    once = apply_command(incident, cmd, policy=POLICY)
    assert apply_command(once.incident, cmd, policy=POLICY).assignments == ()
    # A job and its stand-down never share an id.
    assert once.assignments[0].assignment_id != job_of(incident, "patrol-1")


def test_only_a_stand_down_withdraws_and_it_says_what() -> None:
    job = dispatch_offers(
        dispatched(), (Offer("patrol-1", AssignmentRole.PRIMARY, JOB),), now=T0, policy=POLICY
    ).assignments[0]
    data = job.model_dump()
    with pytest.raises(ValueError, match="only a stand_down withdraws"):
        Assignment.model_validate({**data, "withdraws": uuid.uuid4()})
    with pytest.raises(ValueError, match="names what it withdraws"):
        Assignment.model_validate({**data, "kind": STAND_DOWN, "schema_version": 2})
    with pytest.raises(ValueError, match="schema_version 2"):
        Assignment.model_validate({**data, "kind": STAND_DOWN, "withdraws": uuid.uuid4()})
