"""The command_outcome frame: its shape, and that only commanders get it."""

from __future__ import annotations

import asyncio
import json
import uuid

from consumers.auth import Principal, Role
from consumers.push.protocol import (
    Channel,
    CommandOutcomeFrame,
    command_outcome_frame,
    parse_server_frame,
)
from consumers.push.sessions import Hub
from dispatch.events import (
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    CommandResult,
    encode,
)
from tests.unit.consumers.push.test_sessions import COMMANDER, DESK_A, NOW, board, settle

OTHER_COMMANDER = Principal(id="cmd-2", role=Role.COMMANDER, name="Night commander")


def refused() -> CommandOutcome:
    command = CommanderCommand(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        action=CommanderAction.ASSIGN,
        unit_id="patrol-nowhere",
        actor="cmd",
        issued_at=NOW,
    )
    return CommandOutcome.of(
        command,
        result=CommandResult.REFUSED,
        reason="unit patrol-nowhere is not a unit of the zone",
        at=NOW,
    )


def test_a_spliced_outcome_frame_parses_as_the_frame() -> None:
    outcome = refused()
    text = command_outcome_frame(encode(outcome).decode())
    assert parse_server_frame(text) == CommandOutcomeFrame(outcome=outcome)
    assert json.loads(text)["outcome"]["result"] == "refused"


async def test_every_commander_gets_the_outcome_and_no_desk_does() -> None:
    hub = Hub()
    sessions = [
        board(hub, COMMANDER, Channel.COMMANDER),
        board(hub, OTHER_COMMANDER, Channel.COMMANDER),
        board(hub, DESK_A, Channel.DESK),
    ]
    writers = [asyncio.create_task(session.run_writer()) for session, _ in sessions]
    outcome = refused()
    hub.publish_command_outcome(outcome)
    await settle()
    for writer in writers:
        writer.cancel()
    got = [[parse_server_frame(text) for text in sock.sent] for _, sock in sessions]
    assert got == [[CommandOutcomeFrame(outcome=outcome)]] * 2 + [[]]
