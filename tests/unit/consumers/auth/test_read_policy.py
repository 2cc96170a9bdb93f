"""The read API's part of the role matrix: who may list, search by enterprise, read the board."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consumers.auth import Principal
from consumers.auth.policy import (
    can_list_alarms,
    can_list_incidents,
    can_read_board,
    can_search_enterprise,
)
from tests.unit.consumers.auth.test_policy import PRINCIPALS

Check = Callable[[Principal], bool]

ACTIONS: dict[str, Check] = {
    "list_incidents": can_list_incidents,
    "list_alarms": can_list_alarms,
    # name enterprise E1 (own for the bound principals), E2 (nobody's here) in a search
    "search_e1": lambda p: can_search_enterprise(p, enterprise_id="E1"),
    "search_e2": lambda p: can_search_enterprise(p, enterprise_id="E2"),
    "board": can_read_board,
}

# One row per principal, in the order of ACTIONS; 1 allowed, 0 refused (written by hand).
EXPECTED = {
    "desk_e1": (1, 1, 1, 0, 0),
    "guard_g1_e1": (1, 0, 1, 1, 0),
    "guard_g2_free": (1, 0, 1, 1, 0),
    "patrol_p1": (1, 0, 1, 1, 0),
    "unit_f1": (1, 0, 1, 1, 0),
    "sensor_e1": (0, 0, 0, 0, 0),
    "sensor_free": (0, 0, 0, 0, 0),
    "commander": (1, 1, 1, 1, 1),
    "admin": (0, 0, 0, 0, 0),
}


def test_every_principal_has_a_row() -> None:
    assert set(EXPECTED) == set(PRINCIPALS)
    assert {len(row) for row in EXPECTED.values()} == {len(ACTIONS)}


@pytest.mark.parametrize(
    ("who", "action", "allowed"),
    [
        (who, action, bool(row[i]))
        for who, row in EXPECTED.items()
        for i, action in enumerate(ACTIONS)
    ],
)
def test_read_matrix(who: str, action: str, allowed: bool) -> None:
    assert ACTIONS[action](PRINCIPALS[who]) is allowed
