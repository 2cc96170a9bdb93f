"""The simulator against the real system: the stream pipeline, intake and the push gateway on
the session's Kafka and PostgreSQL (started as in test_gateway_e2e), driven only through their
public doors: ten unit phones on the websocket protocol, desks and the hotline over HTTP,
devices on alarms.raw. The ledger, read from incidents.state and alarms.dlq, must show every
receipted alarm decided, no job shown twice, and every unit told of every job taken from it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from dispatch.settings import Settings
from simulator.behaviour import Behaviour, Misbehaviour
from simulator.principals import ensure_demo_principals
from simulator.report import summary
from simulator.session import Doors, Simulation
from tests.integration.principals import connection
from tests.integration.test_gateway_e2e import running_system

UNITS = (
    "cd-patrol-1",
    "cd-patrol-2",
    "cd-patrol-3",
    "cd-patrol-4",
    "cd-patrol-station",
    "xh-patrol-1",
    "xh-patrol-2",
    "guard-hengtong",
    "guard-qixing",
    "fire-1",
)
ENTERPRISES = ("ent-hengtong", "ent-qixing", "ent-huaxin", "ent-liheng")
# Ten real seconds of a unit's job take a twentieth of a second: accept, drive, work, resolve.
SETTLE_S = 120.0  # a hang guard, not a performance bound: the ledger is printed if it fires
FAST = Behaviour(think_s=10.0, work_s=300.0, compression=200.0)


async def test_thirty_alarms_are_all_decided_and_no_unit_sees_a_job_twice(
    running_stack: Settings, postgres_url: str
) -> None:
    async with running_system(running_stack, postgres_url) as system:
        zone = system.zone
        async with connection(system.pool) as conn:
            principals = await ensure_demo_principals(conn, zone)
        behaviours = dict.fromkeys(UNITS, FAST)
        behaviours["cd-patrol-2"] = replace(FAST, misbehaviour=Misbehaviour.ACK_TWICE)
        behaviours["cd-patrol-3"] = replace(FAST, misbehaviour=Misbehaviour.DECLINE)
        doors = Doors(
            intake_url=str(system.http.base_url),
            push_url=f"ws://127.0.0.1:{system.gateway.port}/",
            bootstrap=running_stack.bootstrap_servers,
            topic_prefix=system.harness.prefix,
        )
        simulation = Simulation(
            zone, principals, doors, behaviours=behaviours, seed=13, enterprises=ENTERPRISES
        )
        async with simulation:
            await simulation.units_connected()
            # So that the first alarms find units: the route stage has read every unit's first
            # position (the two the harness reported, one per phone).
            board = system.harness.pipeline.board
            assert board is not None
            await board.wait_for_reports(system.harness.reports + len(UNITS))
            await simulation.load.steady(rate=10.0, duration_s=3.0)
            try:
                async with asyncio.timeout(SETTLE_S):
                    report = await simulation.settled()
            finally:
                print(summary(simulation.report()))

    assert report.sent == 30
    assert report.receipted == report.decided == 30
    assert report.undecided == ()
    assert report.shown_twice == 0
    assert [u.violations for u in report.units if u.violations] == []
    # Every job the parties show sent was shown, and every withdrawal told, on every unit.
    assert [u.unit_id for u in report.units if not u.consistent] == []
    # Not vacuous: the units were sent jobs.
    assert sum(len(u.jobs_shown) for u in report.units) > 0
    assert report.holds
