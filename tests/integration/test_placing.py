"""The commander places an alarm the zone could not: intake's place endpoint and the pipeline.

On the real Kafka and PostgreSQL: the intake API (served by uvicorn, as in test_intake_api.py)
writes to the alarms.raw of a running pipeline (classify, merge, route: harness.py), so the
test follows a placed alarm from the commander's request to the units it sends.
docs/lifecycle.md, "Unlocated alarms".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from consumers.auth import Role, history
from consumers.intake.app import build_app
from dispatch.events import (
    AssignmentKind,
    IncidentState,
    PlaceType,
    Position,
)
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from dispatch.zone import UnitKind
from tests.integration.harness import WAIT_S, Harness, Seen, running_pipeline
from tests.integration.principals import Caller, connection, enterprise, fresh_store, make_caller
from tests.integration.test_intake_api import alarms_on, serving, started_producer

LOST = "有人在打架,快来人 / a fight, come quick"


@dataclass
class Placing:
    """A running pipeline with an intake API in front of it, and a commander and a desk."""

    harness: Harness
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    commander: Caller
    desk: Caller

    async def raise_alarm(self, who: Caller, **body: object) -> uuid.UUID:
        """Raise an alarm through intake; return its alarm id."""
        answer = await self.http.post("/v1/alarms", json=body, headers=who.headers)
        assert answer.status_code == 202, answer.text
        return uuid.UUID(answer.json()["alarm_id"])

    async def place(self, who: Caller, alarm_id: object, **body: object) -> httpx.Response:
        """Ask intake to place an alarm."""
        path = f"/v1/alarms/{alarm_id}/place"
        return await self.http.post(path, json=body, headers=who.headers)


@pytest.fixture
async def placing(running_stack: Settings, postgres_url: str) -> AsyncIterator[Placing]:
    """Start a pipeline on fresh topics and an intake API writing to its alarms.raw."""
    settings = running_stack.model_copy(update={"rate_limit_per_minute": 10_000})
    async with (
        running_pipeline(settings) as harness,
        fresh_store(postgres_url) as pool,
        started_producer(settings.bootstrap_servers) as producer,
    ):
        topic = harness.prefix + "alarms.raw"
        app = build_app(settings, producer=producer, pool=pool, topic=topic)
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
            commander = await make_caller(pool, Role.COMMANDER)
            desk = await make_caller(pool, Role.DESK, enterprise_id=enterprise())
            yield Placing(harness, http, pool, commander, desk)


def states_of(seen: Seen, incident_id: uuid.UUID) -> list[IncidentState]:
    """Return the states an incident went through, in the order seen."""
    return [c.state for c in seen.states if c.incident_id == incident_id]


def fields_of(response: httpx.Response) -> list[str]:
    """Return the names of the fields an error answer blames."""
    return [problem["field"] for problem in response.json()["fields"]]


async def test_a_placed_alarm_is_routed_as_the_incident_the_commander_saw(
    placing: Placing,
) -> None:
    h = placing.harness
    zone = h.pipeline.zone
    park = next(p for p in zone.places if p.type is PlaceType.PARK)
    patrol = zone.units_of_kind(UnitKind.PATROL)[0]
    await h.report(patrol.id, Position(lat=park.position.lat + 0.003, lon=park.position.lon))
    await h.units_known()

    # Words and no place the zone knows: the commander is told, nobody is sent.
    alarm_id = await placing.raise_alarm(placing.commander, text=LOST, reporter_phone="13800000000")
    incident_id = provisional_incident_id(alarm_id)
    await h.wait_for(lambda s: IncidentState.ESCALATED in states_of(s, incident_id))

    # Only the commander places, only an alarm that exists, only a real position.
    spot = {"lat": park.position.lat, "lon": park.position.lon}
    refused = await placing.place(placing.desk, alarm_id, position=spot)
    assert refused.status_code == 403
    assert (await placing.place(placing.commander, uuid.uuid4(), position=spot)).status_code == 404
    bad = await placing.place(placing.commander, alarm_id, position={"lat": 91, "lon": 113.4})
    assert (bad.status_code, fields_of(bad)) == (422, ["position.lat"])

    placed = await placing.place(placing.commander, alarm_id, position=spot)
    assert placed.status_code == 202, placed.text
    assert placed.json() == {
        "alarm_id": str(alarm_id),
        "incident_id": str(incident_id),
        "position": spot | {"accuracy_m": None},
        "placed_by": placing.commander.id,
    }
    # The incident the commander saw is routed from the place given: the patrol is sent.
    seen = await h.wait_for(
        lambda s: any(
            a.incident_id == incident_id and a.kind is AssignmentKind.ASSIGNMENT
            for a in s.assignments
        )
    )
    job = next(a for a in seen.assignments if a.incident_id == incident_id)
    assert job.unit_id == patrol.id
    assert (job.position.lat, job.position.lon) == (spot["lat"], spot["lon"])
    seen = await h.wait_for(lambda s: IncidentState.DISPATCHED in states_of(s, incident_id))
    dispatched = next(
        c
        for c in seen.states
        if c.incident_id == incident_id and c.state is IncidentState.DISPATCHED
    )
    assert dispatched.position is not None
    assert (dispatched.position.lat, dispatched.position.lon) == (spot["lat"], spot["lon"])
    assert dispatched.first_alarm_id == alarm_id

    # The same placement again (a lost answer): the same, sent once; elsewhere: refused.
    again = await placing.place(placing.commander, alarm_id, position=spot)
    assert (again.status_code, again.json()) == (202, placed.json())
    moved = await placing.place(
        placing.commander, alarm_id, position={"lat": spot["lat"] + 0.01, "lon": spot["lon"]}
    )
    assert (moved.status_code, fields_of(moved)) == (409, ["position"])

    records = await alarms_on(
        h.pipeline.settings.bootstrap_servers,
        h.prefix + "alarms.raw",
        h.pipeline.settings.kafka_partitions,
    )
    copies = [alarm for _, alarm in records if alarm.alarm_id == alarm_id]
    assert [(a.position is None, a.placed_by) for a in copies] == [
        (True, None),
        (False, placing.commander.id),
    ]
    first, second = copies
    # One alarm, timed from its reception, not from the placement.
    assert dispatched.timing.received_at == first.received_at
    assert second.model_dump(exclude={"position", "placed_by"}) == first.model_dump(
        exclude={"position", "placed_by"}
    )
    async with connection(placing.pool) as conn:
        entries = await history(conn, subject=f"alarm:{alarm_id}")
    assert [(e.action, e.actor) for e in entries if e.action == "alarm.place"] == [
        ("alarm.place", placing.commander.id)
    ]


async def test_an_alarm_the_zone_places_itself_is_not_placed_again(placing: Placing) -> None:
    zone = placing.harness.pipeline.zone
    park = next(p for p in zone.places if p.type is PlaceType.PARK)
    alarm_id = await placing.raise_alarm(placing.commander, text=LOST, place_id=park.id)
    answer = await placing.place(
        placing.commander,
        alarm_id,
        position={"lat": park.position.lat, "lon": park.position.lon},
    )
    assert (answer.status_code, fields_of(answer)) == (409, ["alarm_id"])
