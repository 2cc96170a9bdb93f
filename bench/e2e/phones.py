"""Every unit's phone, in a process of its own: the simulator's fleet, accepting at once.

The phones are the simulator's (`simulator.fleet.Fleet`, `simulator.unit_client.UnitClient`,
written from docs/protocol.md): token header, hello, exactly-once display, an ack for every
job shown, position reports every 30 s. Only the crew differs: `AcceptingCrew` accepts each
job the moment it is shown (each on a task of its own, so a unit given several jobs at once
accepts them all at once) and does nothing more, so the bench measures the system's path and
not a crew's think time. The time a job was shown is the simulator's own `ShownJob.shown_at`,
stamped when the frame was parsed on arrival; the time of an acceptance is when the gateway's
`ok` for it arrived.

The driver speaks to this process by lines: `count T` answers how many incidents had a job
shown and accepted since T (epoch seconds), `dump T` the jobs and acceptances since T as
JSON; end of input stops the phones.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from consumers.auth import Role
from dispatch.events import UNITS_STATUS, Position, UnitAvailability, UnitStatus, encode, key_of
from dispatch.zone import load_zone
from simulator.behaviour import Behaviour
from simulator.crew import Crew, Order, Request
from simulator.fleet import Fleet
from simulator.principals import DemoPrincipal
from simulator.records import Changes

CONNECT_GUARD_S = 120.0  # a hang guard while the phones connect


@dataclass(frozen=True)
class PhonesSpec:
    """What the phones' process needs: the gateway, the zone file and the units' tokens."""

    push_url: str
    zone_file: str
    tokens_file: str  # JSON: unit id -> [role, secret]
    bootstrap: str  # Kafka, for the units' reports that they are free again


@dataclass(frozen=True)
class Accepted:
    """One acceptance: when it was sent, when its answer came, what the answer was."""

    assignment_id: str
    sent_at: float
    answered_at: float
    code: str


class FreeReports:
    """Report a unit available again at its base on `units.status`, once it has accepted."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )
        self._sending: set[asyncio.Future[object]] = set()

    async def free(self, unit_id: str, home: Position) -> None:
        """Queue the report; its acknowledgement is not awaited."""
        status = UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=unit_id,
            status=UnitAvailability.AVAILABLE,
            position=Position(lat=home.lat, lon=home.lon, accuracy_m=10.0),
            reported_at=datetime.now(UTC),
        )
        sent = await self.producer.send(UNITS_STATUS.name, encode(status), key=key_of(status))
        self._sending.add(sent)
        sent.add_done_callback(self._sending.discard)


class AcceptingCrew(Crew):
    """Accept every job the moment it is shown, then report the unit free; nothing more."""

    def __init__(
        self,
        behaviour: Behaviour,
        home: Position,
        request: Request,
        *,
        unit_id: str,
        reports: FreeReports,
    ) -> None:
        super().__init__(behaviour, home, request)
        self.home = home
        self.unit_id = unit_id
        self.reports = reports
        self.accepted: list[Accepted] = []
        self._answering: set[asyncio.Task[None]] = set()

    def take(self, order: Order) -> None:
        """Accept the job at once, beside any other still being accepted."""
        task = asyncio.create_task(self._accept(order))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _accept(self, order: Order) -> None:
        sent = time.time()
        reply = await self._request({"type": "respond", "seq": order.seq, "action": "accept"})
        self.accepted.append(Accepted(str(order.assignment_id), sent, time.time(), reply.code))
        await self.reports.free(self.unit_id, self.home)


def fleet_of(spec: PhonesSpec, reports: FreeReports) -> tuple[Fleet, dict[str, AcceptingCrew]]:
    """Build the fleet of every unit of the zone, each with an accepting crew."""
    zone = load_zone(spec.zone_file)
    tokens: dict[str, list[str]] = json.loads(Path(spec.tokens_file).read_text())
    principals = {
        unit_id: DemoPrincipal(unit_id, Role(role), SecretStr(secret), unit_id=unit_id)
        for unit_id, (role, secret) in tokens.items()
    }
    behaviours = {unit.id: Behaviour(think_s=0.0, work_s=0.0) for unit in zone.units}
    fleet = Fleet(spec.push_url, zone, principals, behaviours, Changes())
    crews = {}
    for unit_id, client in fleet.clients.items():
        home = zone.home_position(zone.unit(unit_id))
        crews[unit_id] = AcceptingCrew(
            client.behaviour, home, client.request, unit_id=unit_id, reports=reports
        )
        client.crew = crews[unit_id]
    return fleet, crews


def jobs_since(fleet: Fleet, since: float) -> list[tuple[str, str, str, str, float]]:
    """Return (incident, assignment, unit, kind, shown at) of every frame shown since then."""
    return [
        (str(job.incident_id), str(job.assignment_id), unit_id, job.kind, job.shown_at.timestamp())
        for unit_id, client in fleet.clients.items()
        for job in client.record.shown
        if job.shown_at.timestamp() >= since
    ]


async def run_phones(spec: PhonesSpec) -> None:
    """Connect every phone, then answer the driver's lines until its input ends."""
    reports = FreeReports(spec.bootstrap)
    await reports.producer.start()
    try:
        await serve_driver(spec, reports)
    finally:
        await reports.producer.stop()


async def serve_driver(spec: PhonesSpec, reports: FreeReports) -> None:
    """Connect the fleet, then answer the driver's lines until its input ends."""
    fleet, crews = fleet_of(spec, reports)
    loop = asyncio.get_running_loop()
    async with fleet:
        async with asyncio.timeout(CONNECT_GUARD_S):
            await asyncio.gather(*(c.connected.wait() for c in fleet.clients.values()))
        print(f"connected {len(fleet.clients)}", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, _, value = line.strip().partition(" ")
            since = float(value or 0)
            jobs = jobs_since(fleet, since)
            if command == "count":
                # Incidents whose job was shown and answered: the acceptance comes last.
                answered = {a.assignment_id for crew in crews.values() for a in crew.accepted}
                done = {job[0] for job in jobs if job[3] == "assignment" and job[1] in answered}
                print(len(done), flush=True)
            elif command == "dump":
                accepted = [
                    (a.assignment_id, a.sent_at, a.answered_at, a.code)
                    for crew in crews.values()
                    for a in crew.accepted
                    if a.sent_at >= since
                ]
                problems = {
                    unit_id: {
                        "violations": client.record.violations[-5:],
                        "errors": client.record.errors[-5:],
                        "reconnects": client.record.reconnects,
                        "shown_twice": client.record.shown_twice,
                    }
                    for unit_id, client in fleet.clients.items()
                    if client.record.violations or client.record.errors or client.record.reconnects
                }
                dump = {"jobs": jobs, "accepted": accepted, "problems": problems}
                print(json.dumps(dump), flush=True)
