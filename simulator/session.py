"""One simulation: the fleet of units, the desks, the hotline and the devices, the load, and
the ledger following the outcome, wired to the system's public doors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx

from dispatch.events import ALARMS_RAW
from dispatch.zone import Zone
from simulator.alarms import AlarmMaker
from simulator.behaviour import Behaviour
from simulator.desk_client import DeskClient
from simulator.fleet import Fleet
from simulator.ledger import EVER, Ledger
from simulator.ledger_reader import follow_ledger
from simulator.load import Load
from simulator.principals import DemoPrincipal, DemoPrincipals
from simulator.records import Changes
from simulator.report import LedgerReport, audit
from simulator.sensor_client import SensorClient
from simulator.tasks import cancel_and_wait


class BackgroundStopped(RuntimeError):
    """Raised when the ledger's reader or a unit's phone stopped while the run was waiting."""


@dataclass(frozen=True)
class Doors:
    """Where the system's public doors are."""

    intake_url: str  # http://host:intake_port
    push_url: str  # ws://host:push_port/
    bootstrap: str  # Kafka, for the devices' alarms.raw and the ledger's reading
    topic_prefix: str = ""  # tests run the system on prefixed topics


class Simulation:
    """Run units, desks and devices against the system; audit what it decided."""

    def __init__(
        self,
        zone: Zone,
        principals: DemoPrincipals,
        doors: Doors,
        *,
        behaviours: Mapping[str, Behaviour],
        seed: int,
        sensor_share: float = 0.3,
        enterprises: Sequence[str] | None = None,
    ) -> None:
        self.zone = zone
        self.principals = principals
        self.doors = doors
        self.changes = Changes()
        self.ledger = Ledger(actor_units={p.id: str(p.unit_id) for p in principals.units.values()})
        self.fleet = Fleet(doors.push_url, zone, principals.units, behaviours, self.changes)
        self.maker = AlarmMaker(zone, seed)
        self.sensor_share = sensor_share
        self.enterprises = list(enterprises or principals.desks)
        self._stack = AsyncExitStack()
        self._load: Load | None = None
        self._background: list[asyncio.Task[None]] = []
        self.started_at = EVER

    @property
    def load(self) -> Load:
        """Return the load driver (once the simulation has started)."""
        if self._load is None:
            raise RuntimeError("the simulation has not started")
        return self._load

    async def __aenter__(self) -> Self:
        self.started_at = datetime.now(UTC)
        stack = self._stack
        doors = self.doors
        follower = asyncio.create_task(
            follow_ledger(doors.bootstrap, self.ledger, self.changes, prefix=doors.topic_prefix),
            name="the ledger's reader",
        )
        stack.push_async_callback(cancel_and_wait, [follower])
        self._background = [follower]
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=self.doors.intake_url))
        sensors = await stack.enter_async_context(
            SensorClient(self.doors.bootstrap, topic=self.doors.topic_prefix + ALARMS_RAW.name)
        )

        def desk(principal: DemoPrincipal) -> DeskClient:
            return DeskClient(http, principal_id=principal.id, token=principal.token)

        self._load = Load(
            self.maker,
            desks={e: desk(self.principals.desks[e]) for e in self.enterprises},
            hotline=desk(self.principals.hotline),
            sensors=sensors,
            sensor_share=self.sensor_share,
        )
        await stack.enter_async_context(self.fleet)
        self._background += self.fleet.tasks
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def units_connected(self) -> None:
        """Wait until every unit's phone has been welcomed and resumed once."""
        clients = self.fleet.clients.values()
        await self.until(lambda: all(client.connected.is_set() for client in clients))

    async def settled(self) -> LedgerReport:
        """Wait until the run is at rest (LedgerReport.at_rest); return the report of that
        moment. Raise BackgroundStopped if the ledger's reader or a unit's phone stops first."""
        return await self.until(lambda: self.report().at_rest)

    async def until(self, check: Callable[[], bool]) -> LedgerReport:
        """Wait until check() holds; return the report of that moment (nothing runs between
        the check and the report). Raise BackgroundStopped if a background task ends first."""

        async def report_when_true() -> LedgerReport:
            await self.changes.wait_for(check)
            return self.report()

        waiting = asyncio.create_task(report_when_true())
        try:
            done, _ = await asyncio.wait(
                [waiting, *self._background], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            await cancel_and_wait([waiting])
        for task in done - {waiting}:
            cause = None if task.cancelled() else task.exception()
            raise BackgroundStopped(f"{task.get_name()} stopped: {cause!r}") from cause
        return waiting.result()

    def report(self) -> LedgerReport:
        """Return the ledger's verdict as it stands."""
        return audit(
            self.ledger,
            sent=self.load.sent,
            receipted=self.load.receipted,
            units=self.fleet.records,
            since=self.started_at,
        )
