"""Who may place an alarm the zone could not: every role of the matrix's principals tries."""

from __future__ import annotations

import pytest

from consumers.auth.policy import can_place_alarm
from tests.unit.consumers.auth.test_policy import PRINCIPALS


@pytest.mark.parametrize("who", PRINCIPALS)
def test_only_the_commander_places_an_alarm(who: str) -> None:
    assert can_place_alarm(PRINCIPALS[who]) is (who == "commander")
