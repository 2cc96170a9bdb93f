"""The route stage's answer to every commander command: applied, or refused and why."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dispatch.classify import Rules
from dispatch.events import (
    ALARMS_DLQ,
    COMMANDER_OUTCOMES,
    INCIDENTS_STATE,
    Assignment,
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    CommandResult,
    DeadLetter,
    IncidentStateChange,
    decode,
    encode,
    key_of,
)
from dispatch.settings import Settings
from dispatch.zone import Zone
from streams.pipeline import load_zone_and_rules
from streams.stages import Queued
from tests.unit.streams.test_stages import NOW, Stages, jobs_of, of, record, school_fight


@pytest.fixture(scope="module")
def zone_and_rules() -> tuple[Zone, Rules]:
    return load_zone_and_rules(Settings())


def order(incident_id: uuid.UUID, action: CommanderAction, **fields: Any) -> CommanderCommand:
    return CommanderCommand(
        event_id=uuid.uuid4(),
        incident_id=incident_id,
        action=action,
        actor="commander-1",
        issued_at=NOW,
        **fields,
    )


def run(stages: Stages, command: CommanderCommand) -> Queued:
    out = Queued()
    stages.router.command(record("commander.commands", encode(command)), out, NOW)
    return out


def outcome_of(out: Queued) -> CommandOutcome:
    (value,) = of(out, COMMANDER_OUTCOMES)
    return decode(CommandOutcome, value)


@pytest.fixture
def opened(zone_and_rules: tuple[Zone, Rules]) -> tuple[Stages, uuid.UUID, str]:
    """A routed school fight: the stages, its incident and the unit leading it."""
    stages = Stages(*zone_and_rules)
    alarm, officer = school_fight(zone_and_rules[0])
    out = stages.through(alarm)
    job = decode(Assignment, jobs_of(out)[0])
    return stages, job.incident_id, officer


def test_an_applied_command_says_so_after_its_changes(
    opened: tuple[Stages, uuid.UUID, str],
) -> None:
    stages, incident_id, _ = opened
    command = order(incident_id, CommanderAction.CANCEL, reason="false alarm")
    out = run(stages, command)
    outcome = outcome_of(out)
    assert (outcome.result, outcome.reason) == (CommandResult.APPLIED, None)
    assert outcome.command_event_id == command.event_id
    assert (outcome.incident_id, outcome.action, outcome.actor) == (
        incident_id,
        CommanderAction.CANCEL,
        "commander-1",
    )
    changes = [decode(IncidentStateChange, v) for v in of(out, INCIDENTS_STATE)]
    assert [c.state for c in changes] == ["cancelled"]
    # Keyed like the command, so it stays in order with the incident's other records.
    (key,) = [k for spec, k, _ in out.records if spec is COMMANDER_OUTCOMES]
    assert key == key_of(command) == str(incident_id).encode()
    assert of(out, ALARMS_DLQ) == []


def test_a_command_for_an_unknown_incident_is_refused_naming_it(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    missing = uuid.uuid4()
    out = run(stages, order(missing, CommanderAction.CLOSE))
    outcome = outcome_of(out)
    assert outcome.result is CommandResult.REFUSED
    assert outcome.reason == f"no incident {missing}"
    # Still dead-lettered, with the same reason, as before outcomes existed.
    (letter,) = [decode(DeadLetter, v) for v in of(out, ALARMS_DLQ)]
    assert letter.reason == outcome.reason
    assert of(out, INCIDENTS_STATE) == []


def test_sending_a_unit_the_zone_does_not_know_is_refused_and_changes_nothing(
    opened: tuple[Stages, uuid.UUID, str],
) -> None:
    stages, incident_id, officer = opened
    before = dict(stages.incidents)
    command = order(
        incident_id, CommanderAction.REASSIGN, unit_id="patrol-nowhere-9", from_unit_id=officer
    )
    out = run(stages, command)
    outcome = outcome_of(out)
    assert outcome.result is CommandResult.REFUSED
    assert outcome.reason == "unit patrol-nowhere-9 is not a unit of the zone"
    assert (outcome.unit_id, outcome.from_unit_id) == ("patrol-nowhere-9", officer)
    assert stages.incidents == before
    assert jobs_of(out) == []
    assert of(out, INCIDENTS_STATE) == []


def test_a_command_to_a_closed_incident_is_refused(
    opened: tuple[Stages, uuid.UUID, str],
) -> None:
    stages, incident_id, _ = opened
    assert outcome_of(run(stages, order(incident_id, CommanderAction.CLOSE))).result == "applied"
    again = outcome_of(run(stages, order(incident_id, CommanderAction.CANCEL)))
    assert again.result is CommandResult.REFUSED
    assert again.reason == f"incident {incident_id} is already resolved"


def test_a_replayed_command_gives_the_same_outcome_id_and_no_second_change(
    opened: tuple[Stages, uuid.UUID, str],
) -> None:
    stages, incident_id, _ = opened
    command = order(incident_id, CommanderAction.CLOSE, reason="suspect caught")
    first = run(stages, command)
    replay = run(stages, command)
    assert outcome_of(replay) == outcome_of(first)
    assert outcome_of(replay).result is CommandResult.APPLIED
    assert of(replay, INCIDENTS_STATE) == []


def test_an_unreadable_command_gets_only_its_dead_letter(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    out = Queued()
    stages.router.command(record("commander.commands", b'{"action": "close"}'), out, NOW)
    assert of(out, COMMANDER_OUTCOMES) == []
    assert len(of(out, ALARMS_DLQ)) == 1
