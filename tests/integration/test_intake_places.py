"""A caller bound to an enterprise raises alarms only at its own enterprise, by any field.

The shipped zone (dispatch/zone/data/suizhou_hightech.toml) has the enterprise places
ent-hengtong and ent-jinghui among others; the desks here are bound to ent-hengtong.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from consumers.auth import Role
from tests.integration.principals import Caller
from tests.integration.test_intake_api import Service, fields_of, make_caller
from tests.integration.test_intake_api import http as http
from tests.integration.test_intake_api import service as service

OWN = "ent-hengtong"
OTHER = "ent-jinghui"
BODY = {"text": "两人在门口打架 / two men fighting at the gate"}


async def hengtong_desk(service: Service) -> Caller:
    """Return a new desk of ent-hengtong."""
    return await make_caller(service.pool, Role.DESK, enterprise_id=OWN)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"place_id": OTHER}, "place_id"),
        ({"place_id": "park-chengdong"}, "place_id"),
        ({"place_id": "no-such-place"}, "place_id"),
        ({"place_name": "随州晶辉光电有限公司"}, "place_name"),  # ent-jinghui's name
        ({"place_name": "Jinghui Optoelectronics, gate 2"}, "place_name"),  # its alias inside
        ({"place_id": OWN, "place_name": "晶辉光电"}, "place_name"),
        ({"enterprise_id": OWN, "place_id": OTHER}, "place_id"),
    ],
)
async def test_a_bound_caller_naming_a_place_outside_its_enterprise_is_403(
    service: Service, http: httpx.AsyncClient, fields: dict[str, str], field: str
) -> None:
    for role in (Role.DESK, Role.GUARD):
        unit = "guard-hengtong-1" if role is Role.GUARD else None
        caller = await make_caller(service.pool, role, enterprise_id=OWN, unit_id=unit)
        response = await http.post("/v1/alarms", json=BODY | fields, headers=caller.headers)
        assert response.status_code == 403, response.text
        assert fields_of(response) == [field]
        assert await service.alarms_from(caller.id) == []


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"place_id": OWN},
        {"place_name": "恒通零部件 2号门"},  # its own alias, and where at it
        {"place_name": "2号门 / gate 2"},  # no place of the zone at all
        {"position": {"lat": 31.714, "lon": 113.418}},  # at ent-jinghui, without a place
    ],
)
async def test_a_bound_caller_may_name_its_own_place_or_none(
    service: Service, http: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    desk = await hengtong_desk(service)
    response = await http.post("/v1/alarms", json=BODY | fields, headers=desk.headers)
    assert response.status_code == 202, response.text
    [alarm] = await service.alarms_from(desk.id)
    # The raw alarm always carries the desk's own enterprise, which the classify stage takes
    # as the place when no place_id or place_name resolves; a position does not move it
    # (tests/unit/consumers/intake/test_own_place.py follows it through triage).
    assert alarm.enterprise_id == OWN


async def test_the_commander_and_unbound_sources_may_name_any_place(
    service: Service, http: httpx.AsyncClient
) -> None:
    commander = await make_caller(service.pool, Role.COMMANDER)
    hotline = await make_caller(service.pool, Role.SENSOR)
    for caller in (commander, hotline):
        response = await http.post(
            "/v1/alarms", json=BODY | {"place_id": OTHER}, headers=caller.headers
        )
        assert response.status_code == 202, response.text


async def test_an_empty_body_is_400_naming_the_body(
    service: Service, http: httpx.AsyncClient
) -> None:
    desk = await hengtong_desk(service)
    headers = desk.headers | {"Content-Type": "application/json"}
    for content in (b"", b"null"):
        response = await http.post("/v1/alarms", content=content, headers=headers)
        assert response.status_code == 400, response.text
        assert fields_of(response) == ["$"]
    assert await service.alarms_from(desk.id) == []
