"""The role matrix: every role tries every action on its own and on others' data."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from consumers.auth import (
    Principal,
    Role,
    can_act_on_assignment,
    can_administer,
    can_command,
    can_raise_alarm,
    can_read_incident,
)

# Enterprise E1 is "own" for the bound principals below; E2 is someone else's.
PRINCIPALS = {
    "desk_e1": Principal(id="desk-e1", role=Role.DESK, enterprise_id="E1", name="E1 desk"),
    "guard_g1_e1": Principal(
        id="guard-g1", role=Role.GUARD, unit_id="G1", enterprise_id="E1", name="E1 guards"
    ),
    "guard_g2_free": Principal(id="guard-g2", role=Role.GUARD, unit_id="G2", name="Guard co."),
    "patrol_p1": Principal(id="patrol-p1", role=Role.PATROL, unit_id="P1", name="Chengdong"),
    "unit_f1": Principal(id="unit-f1", role=Role.UNIT, unit_id="F1", name="Fire brigade"),
    "sensor_e1": Principal(id="cam-e1", role=Role.SENSOR, enterprise_id="E1", name="E1 camera"),
    "sensor_free": Principal(id="hotline", role=Role.SENSOR, name="Hotline system"),
    "commander": Principal(id="cmd-1", role=Role.COMMANDER, name="Duty commander"),
    "admin": Principal(id="admin-1", role=Role.ADMIN, name="Administrator"),
}

Check = Callable[[Principal], bool]

ACTIONS: dict[str, Check] = {
    # raise an alarm at E1, at E2, not at any enterprise
    "raise_e1": lambda p: can_raise_alarm(p, enterprise_id="E1"),
    "raise_e2": lambda p: can_raise_alarm(p, enterprise_id="E2"),
    "raise_none": lambda p: can_raise_alarm(p, enterprise_id=None),
    # read an incident at E1 sent to nobody; at E2 sent or alerted to G1; to P1 and F1;
    # at E2 sent to nobody; away from any enterprise, sent to G2
    "read_e1_none": lambda p: can_read_incident(p, enterprise_id="E1", unit_ids=()),
    "read_e2_g1": lambda p: can_read_incident(p, enterprise_id="E2", unit_ids={"G1"}),
    "read_e2_p1_f1": lambda p: can_read_incident(p, enterprise_id="E2", unit_ids=["P1", "F1"]),
    "read_e2_none": lambda p: can_read_incident(p, enterprise_id="E2", unit_ids=()),
    "read_away_g2": lambda p: can_read_incident(p, enterprise_id=None, unit_ids={"G2"}),
    # answer an assignment or mutual-aid alert of unit G1, G2, P1, F1, a unit nobody holds
    "act_g1": lambda p: can_act_on_assignment(p, unit_id="G1"),
    "act_g2": lambda p: can_act_on_assignment(p, unit_id="G2"),
    "act_p1": lambda p: can_act_on_assignment(p, unit_id="P1"),
    "act_f1": lambda p: can_act_on_assignment(p, unit_id="F1"),
    "act_other": lambda p: can_act_on_assignment(p, unit_id="X9"),
    "command": can_command,
    "administer": can_administer,
}

# One row per principal, one column per action, in the order of ACTIONS; 1 allowed, 0 refused.
# Written out by hand so the test states the matrix instead of recomputing the policy.
MATRIX = {
    #                raise       read           act         cmd adm
    #                E1 E2 -   E1 G1 PF E2 G2   G1 G2 P1 F1 X
    "desk_e1":       "1 0 0    1  0  0  0  0    0  0  0  0  0  0  0",
    "guard_g1_e1":   "1 0 0    0  1  0  0  0    1  0  0  0  0  0  0",
    "guard_g2_free": "1 1 1    0  0  0  0  1    0  1  0  0  0  0  0",
    "patrol_p1":     "0 0 0    0  0  1  0  0    0  0  1  0  0  0  0",
    "unit_f1":       "0 0 0    0  0  1  0  0    0  0  0  1  0  0  0",
    "sensor_e1":     "1 0 0    0  0  0  0  0    0  0  0  0  0  0  0",
    "sensor_free":   "1 1 1    0  0  0  0  0    0  0  0  0  0  0  0",
    "commander":     "1 1 1    1  1  1  1  1    1  1  1  1  1  1  0",
    "admin":         "0 0 0    0  0  0  0  0    0  0  0  0  0  0  1",
}  # fmt: skip


def expected(principal_key: str, action: str) -> bool:
    """Look one cell up in MATRIX."""
    cells = MATRIX[principal_key].split()
    assert len(cells) == len(ACTIONS), principal_key
    return cells[list(ACTIONS).index(action)] == "1"


CASES = [(who, action) for who in PRINCIPALS for action in ACTIONS]


@pytest.mark.parametrize(("who", "action"), CASES, ids=[f"{w}-{a}" for w, a in CASES])
def test_role_matrix(who: str, action: str) -> None:
    assert ACTIONS[action](PRINCIPALS[who]) is expected(who, action)


def test_matrix_covers_every_role() -> None:
    assert {p.role for p in PRINCIPALS.values()} == set(Role)
    assert set(MATRIX) == set(PRINCIPALS)


def test_unit_id_must_match_exactly() -> None:
    patrol = PRINCIPALS["patrol_p1"]
    assert not can_act_on_assignment(patrol, unit_id="p1")
    assert not can_act_on_assignment(patrol, unit_id="P1 ")
    assert not can_read_incident(patrol, enterprise_id=None, unit_ids={"P10", "XP1"})


def test_desk_reads_own_enterprise_whoever_was_sent() -> None:
    desk = PRINCIPALS["desk_e1"]
    assert can_read_incident(desk, enterprise_id="E1", unit_ids={"P1", "G2"})
    assert not can_read_incident(desk, enterprise_id=None, unit_ids={"P1"})


@pytest.mark.parametrize(
    ("role", "enterprise_id", "unit_id"),
    [
        (Role.DESK, None, None),  # a desk must name its enterprise
        (Role.GUARD, None, None),  # a unit role must name its unit
        (Role.PATROL, None, None),
        (Role.UNIT, None, None),
        (Role.PATROL, "E1", "P1"),  # only desk, guard and sensor can be bound to an enterprise
        (Role.COMMANDER, "E1", None),
        (Role.ADMIN, "E1", None),
        (Role.DESK, "E1", "P1"),  # only unit roles have a unit
        (Role.SENSOR, None, "S1"),
        (Role.COMMANDER, None, "P1"),
    ],
)
def test_principal_binding_must_fit_role(
    role: Role, enterprise_id: str | None, unit_id: str | None
) -> None:
    with pytest.raises(ValidationError):
        Principal(id="p-1", role=role, enterprise_id=enterprise_id, unit_id=unit_id, name="n")


@pytest.mark.parametrize("bad_id", ["", "-leading-dash", "has space", "x" * 65, "中文"])
def test_principal_id_follows_identifier_pattern(bad_id: str) -> None:
    with pytest.raises(ValidationError):
        Principal(id=bad_id, role=Role.COMMANDER, name="n")
