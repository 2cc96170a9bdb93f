"""Who reported an incident and their number reach only those the role matrix lets see them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from consumers.auth import Principal, Role
from consumers.auth.policy import can_read_reporter
from consumers.push.protocol import Channel
from consumers.push.sessions import Hub
from dispatch.events import AssignmentKind, AssignmentRole, Party, PartyState
from tests.unit.consumers.push.test_sessions import COMMANDER, DESK_A, board, change, settle

DESK_B = Principal(id="desk-b", role=Role.DESK, enterprise_id="ent-b", name="Desk B")
SENT = Principal(id="patrol-1", role=Role.PATROL, unit_id="p-1", name="Patrol 1")
ALERTED = Principal(id="guard-9", role=Role.GUARD, unit_id="g-9", name="Guard 9")
CALLER = {"reporter_name": "王丽", "reporter_phone": "+86 722 333 1234", "text": "有人打架"}


def party(unit_id: str, kind: AssignmentKind) -> Party:
    role = (
        AssignmentRole.PRIMARY if kind is AssignmentKind.ASSIGNMENT else AssignmentRole.MUTUAL_AID
    )
    return Party(unit_id=unit_id, role=role, kind=kind, state=PartyState.DISPATCHED)


def test_the_commander_the_own_desk_and_the_units_sent_may_read_the_caller() -> None:
    def may(principal: Principal, enterprise_id: str | None) -> bool:
        return can_read_reporter(principal, enterprise_id=enterprise_id, sent_unit_ids={"p-1"})

    assert may(COMMANDER, "ent-a")
    assert may(COMMANDER, None)
    assert may(DESK_A, "ent-a")
    assert not may(DESK_A, "ent-b")
    assert not may(DESK_A, None)
    assert may(SENT, "ent-b")
    assert not may(ALERTED, "ent-a")  # alerted for mutual aid, not sent
    admin = Principal(id="admin-1", role=Role.ADMIN, name="Admin")
    sensor = Principal(id="cam-1", role=Role.SENSOR, enterprise_id="ent-a", name="Camera")
    assert not may(admin, "ent-a")
    assert not may(sensor, "ent-a")


async def frames(hub: Hub, *principals: Principal) -> list[list[dict[str, Any]]]:
    """Publish a change at ent-a (sent p-1, alerted g-9) and return what each board got."""
    boards = [board(hub, who, Channel.COMMANDER) for who in principals]
    writers = [asyncio.create_task(session.run_writer()) for session, _ in boards]
    parties = (
        party("p-1", AssignmentKind.ASSIGNMENT),
        party("g-9", AssignmentKind.MUTUAL_AID_ALERT),
    )
    hub.publish_incident(change("ent-a").model_copy(update={**CALLER, "parties": parties}))
    await settle()
    for writer in writers:
        writer.cancel()
    return [[json.loads(text)["change"] for text in sock.sent] for _, sock in boards]


async def test_a_board_that_may_see_the_incident_but_not_the_caller_gets_it_without_them() -> None:
    cmd, desk_a, desk_b, sent, alerted = await frames(
        Hub(), COMMANDER, DESK_A, DESK_B, SENT, ALERTED
    )
    for got in (cmd, desk_a, sent):
        (shown,) = got
        assert (shown["reporter_name"], shown["reporter_phone"]) == ("王丽", "+86 722 333 1234")
    assert desk_b == []  # another enterprise's desk sees nothing of it at all
    (shown,) = alerted
    assert (shown["reporter_name"], shown["reporter_phone"], shown["text"]) == (
        None,
        None,
        "有人打架",
    )
