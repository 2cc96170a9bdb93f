"""What the board shows of one open incident, by the policy, on PostgreSQL's JSON of it."""

from __future__ import annotations

import json
from typing import Any, cast

import asyncpg

from consumers.auth import Principal, Role
from consumers.intake.read_rows import board_incident, without_contact

COMMANDER = Principal(id="cmd", role=Role.COMMANDER, name="Commander")
DESK_A = Principal(id="desk-a", role=Role.DESK, enterprise_id="ent-a", name="Desk A")
DESK_B = Principal(id="desk-b", role=Role.DESK, enterprise_id="ent-b", name="Desk B")
GUARD = Principal(id="g", role=Role.GUARD, unit_id="guard-1", name="Guard")
PATROL = Principal(id="p", role=Role.PATROL, unit_id="patrol-1", name="Patrol")


def row() -> asyncpg.Record:
    parties = [
        {"unit_id": "patrol-1", "kind": "assignment"},
        {"unit_id": "guard-1", "kind": "mutual_aid_alert"},
    ]
    body = {"incident_id": "x", "reporter_name": "王丽", "reporter_phone": "+86 722 1"}
    fields: dict[str, Any] = {
        "enterprise_id": "ent-a",
        "parties": json.dumps(parties),
        "body": json.dumps(body, ensure_ascii=False),
    }
    # The function reads a row by column name, as it reads asyncpg's.
    return cast(asyncpg.Record, fields)


def test_who_may_read_it_gets_it_whole_or_without_the_caller() -> None:
    whole = row()["body"]
    assert board_incident(COMMANDER, row()) == whole
    assert board_incident(DESK_A, row()) == whole
    assert board_incident(PATROL, row()) == whole  # sent to it
    alerted = board_incident(GUARD, row())  # only alerted for mutual aid
    assert alerted is not None
    assert json.loads(alerted) == {
        "incident_id": "x",
        "reporter_name": None,
        "reporter_phone": None,
    }
    assert board_incident(DESK_B, row()) is None


def test_without_contact_reaches_into_every_level() -> None:
    event = {"reporter_name": "a", "inner": [{"reporter_phone": "1", "keep": 2}], "keep": 1}
    assert without_contact(event) == {
        "reporter_name": None,
        "inner": [{"reporter_phone": None, "keep": 2}],
        "keep": 1,
    }
