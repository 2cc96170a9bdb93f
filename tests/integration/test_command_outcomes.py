"""A commander learns what became of every command, on the channel and in the timeline.

The whole way on the real Kafka and PostgreSQL: a desk's alarm opens an incident through the
stream pipeline, the commander's commands go through the gateway to the route stage, and the
route stage's outcome comes back to every commander connection as a `command_outcome` frame;
the sink stores it in the incident's timeline, which the read API shows. A command the route
stage refuses (a unit the zone does not know, an incident that does not exist, one already
closed) changes nothing and says why.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from consumers.push.actions import command_event_id
from consumers.push.protocol import (
    CommandOutcomeFrame,
    ErrorFrame,
    IncidentFrame,
    OkFrame,
    UnitStatusFrame,
)
from consumers.sink.reading import catalog_topics
from consumers.sink.service import Sink
from dispatch.events import CommandOutcome, IncidentState, IncidentStateChange
from dispatch.settings import Settings
from tests.integration.principals import connection
from tests.integration.test_gateway_e2e import (
    THEFT,
    Board,
    System,
    board,
    raise_alarm,
    running_system,
    take_job,
)
from tests.integration.test_push_gateway import unit_client

WAIT_S = 120.0  # a hang guard, not a performance bound


class Commander:
    """A commander's channel that keeps incident changes and command outcomes apart."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.outcomes: list[CommandOutcome] = []

    async def command(self, **fields: Any) -> uuid.UUID:
        """Send a command; return the event id of its `ok`."""
        command_id = uuid.uuid4()
        await self.board.channel.send(type="command", command_id=str(command_id), **fields)
        while True:
            frame = await self.board.channel.frame()
            if isinstance(frame, OkFrame):
                assert frame.event_id == command_event_id(self.board.who.id, command_id)
                return frame.event_id
            assert not isinstance(frame, ErrorFrame), frame
            self._keep(frame)

    async def outcome_of(self, event_id: uuid.UUID) -> CommandOutcome:
        """Read the channel until the outcome of the command with this event id comes."""
        while True:
            found = [o for o in self.outcomes if o.command_event_id == event_id]
            if found:
                (outcome,) = found
                return outcome
            self._keep(await self.board.channel.frame())

    def _keep(self, frame: Any) -> None:
        if isinstance(frame, CommandOutcomeFrame):
            self.outcomes.append(frame.outcome)
        elif isinstance(frame, IncidentFrame):
            self.board.changes.append(frame.change)
        else:
            assert isinstance(frame, UnitStatusFrame), frame


@asynccontextmanager
async def recording(system: System) -> AsyncIterator[Sink]:
    """Run a sink on the system's topics, into its store."""
    sink = Sink(
        bootstrap=system.harness.pipeline.settings.bootstrap_servers,
        pool=system.pool,
        zone=system.zone,
        topics=catalog_topics(system.harness.prefix),
        group_id=f"sink-{uuid.uuid4().hex[:10]}",
    )
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


async def timeline_kinds(system: System, sink: Sink, incident_id: uuid.UUID, want: int) -> Any:
    """Return the incident's timeline from the read API once it holds want command outcomes."""
    path = f"/v1/incidents/{incident_id}"
    while True:
        commits = sink.status.batches
        response = await system.http.get(path, headers=system.commander.headers)
        if response.status_code == 200:
            timeline = response.json()["timeline"]
            if len([e for e in timeline if e["kind"] == "command_outcome"]) >= want:
                return timeline
        await asyncio.wait_for(sink.wait_commits(commits + 1), WAIT_S)


async def test_refused_and_applied_commands_come_back_to_the_commander_and_the_timeline(
    running_stack: Settings, postgres_url: str
) -> None:
    async with (
        running_system(running_stack, postgres_url) as system,
        recording(system) as sink,
        board(system, system.commander, "commander") as channel,
        board(system, system.commander, "commander") as other_screen,
        unit_client(system.gateway, system.first) as (first, _),
    ):
        commander = Commander(channel)
        _, incident_id = await raise_alarm(system, system.desk, THEFT)
        job = await take_job(first, incident_id)

        # A unit the zone does not know: refused, nothing changes, and the commander is told.
        sent = await commander.command(
            action="reassign",
            incident_id=str(incident_id),
            unit_id="patrol-nowhere-9",
            from_unit_id=job.assignment.unit_id,
            reason="held up",
        )
        refused = await commander.outcome_of(sent)
        assert (refused.result, refused.reason) == (
            "refused",
            "unit patrol-nowhere-9 is not a unit of the zone",
        )
        assert (refused.incident_id, refused.action, refused.actor) == (
            incident_id,
            "reassign",
            system.commander.id,
        )
        assert (refused.unit_id, refused.from_unit_id) == (
            "patrol-nowhere-9",
            job.assignment.unit_id,
        )
        # Every commander connection is told, not only the one that sent it.
        also = Commander(other_screen)
        assert await also.outcome_of(sent) == refused

        # An incident that does not exist.
        missing = uuid.uuid4()
        nowhere = await commander.outcome_of(
            await commander.command(action="close", incident_id=str(missing))
        )
        assert (nowhere.result, nowhere.reason) == ("refused", f"no incident {missing}")

        # Applied: the change comes as an incident frame, the outcome says applied.
        closed = await commander.outcome_of(
            await commander.command(
                action="close", incident_id=str(incident_id), reason="suspect caught"
            )
        )
        assert (closed.result, closed.reason) == ("applied", None)

        def resolution(c: IncidentStateChange) -> bool:
            return c.incident_id == incident_id and c.state is IncidentState.RESOLVED

        # Two topics, no order between them: the change may have come before the outcome.
        seen = [c for c in channel.changes if resolution(c)]
        resolved = seen[0] if seen else await channel.until(resolution)
        assert resolved.actor == system.commander.id

        # Once closed, a cancel is refused.
        late = await commander.outcome_of(
            await commander.command(action="cancel", incident_id=str(incident_id))
        )
        assert (late.result, late.reason) == (
            "refused",
            f"incident {incident_id} is already resolved",
        )
        # Refused commands were dead-lettered as before, with the same reasons.
        letters = await system.harness.wait_for(lambda seen: len(seen.dead_letters) >= 3)
        assert {d.reason for d in letters.dead_letters} >= {
            refused.reason,
            nowhere.reason,
            late.reason,
        }

        # The timeline keeps the command and its outcome, oldest first.
        timeline = await timeline_kinds(system, sink, incident_id, want=3)
        outcomes = [e for e in timeline if e["kind"] == "command_outcome"]
        assert [(e["detail"]["result"], e["detail"]["command_event_id"]) for e in outcomes] == [
            ("refused", str(refused.command_event_id)),
            ("applied", str(closed.command_event_id)),
            ("refused", str(late.command_event_id)),
        ]
        assert outcomes[0]["actor"] == system.commander.id
        assert [e["event_id"] for e in outcomes] == [
            str(o.event_id) for o in (refused, closed, late)
        ]
        commands = [e for e in timeline if e["kind"] == "command"]
        assert [e["event_id"] for e in commands] == [
            str(o.command_event_id) for o in (refused, closed, late)
        ]
        # The outcome of a command to no incident is on record too, under the id it named.
        async with connection(system.pool) as conn:
            stored = await conn.fetchval(
                "SELECT detail->>'reason' FROM record_events "
                "WHERE incident_id = $1 AND kind = 'command_outcome'",
                missing,
            )
        assert stored == nowhere.reason
