"""The whole way: what a desk tells intake reaches the commander, its own desk and the unit
sent, as far as each may see it; another enterprise's desk sees none of it.

On the real Kafka and PostgreSQL, with the pipeline, intake and the gateway (test_gateway_e2e).
"""

from __future__ import annotations

import uuid

from consumers.push.protocol import JobFrame
from dispatch.events import IncidentState, IncidentStateChange
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from tests.integration.test_gateway_e2e import (
    SITE,
    THEFT,
    board,
    raise_alarm,
    running_system,
)
from tests.integration.test_push_gateway import unit_client

CALLER = {"reporter_name": "王丽", "reporter_phone": "+86 722 333 1234"}


async def test_the_text_the_caller_and_the_gate_reach_those_who_act_and_no_other_desk(
    running_stack: Settings, postgres_url: str
) -> None:
    async with (
        running_system(running_stack, postgres_url) as system,
        board(system, system.commander, "commander") as commander,
        board(system, system.desk, "desk") as desk,
        board(system, system.other_desk, "desk") as other_desk,
        unit_client(system.gateway, system.first) as (first, _),
    ):
        response = await system.http.post(
            "/v1/alarms",
            json={"text": THEFT, "place_name": "2号门", **CALLER},
            headers=system.desk.headers,
        )
        assert response.status_code == 202, response.text
        alarm_id = uuid.UUID(response.json()["alarm_id"])
        incident_id = provisional_incident_id(alarm_id)
        gate = f"{system.zone.place(SITE).name} · 2号门"

        def dispatched(change: IncidentStateChange) -> bool:
            return change.incident_id == incident_id and change.state is IncidentState.DISPATCHED

        for seen in (await commander.until(dispatched), await desk.until(dispatched)):
            assert seen.first_alarm_id == alarm_id
            assert (seen.text, seen.place_name, seen.alarm_count) == (THEFT, gate, 1)
            assert (seen.reporter_name, seen.reporter_phone) == ("王丽", "+86 722 333 1234")
            assert seen.merged_alarm_ids == ()
        job = (await first.expect(JobFrame)).assignment
        assert (job.incident_id, job.place_name, job.text) == (incident_id, gate, THEFT)
        assert (job.reporter_name, job.reporter_phone) == ("王丽", "+86 722 333 1234")

        # The other desk got nothing of it: its first frame is its own enterprise's incident.
        _, elsewhere = await raise_alarm(system, system.other_desk, THEFT)
        first_seen = await other_desk.until(lambda c: c.incident_id == elsewhere)
        assert other_desk.changes == [first_seen]
