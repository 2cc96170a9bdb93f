"""The dispatch core on the real broker: classify, merge, route, respond, escalate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from dispatch.events import (
    AssignmentKind,
    CommanderAction,
    CommanderCommand,
    IncidentState,
    IncidentStateChange,
    PlaceType,
    Position,
    ResponseAction,
    SensorKind,
    SourceKind,
    UnitAvailability,
)
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from dispatch.zone import UnitKind, Zone
from tests.integration.harness import Harness, Seen, fast_lifecycle, running_pipeline


def at(zone: Zone, place_id: str, north_m: float = 0.0) -> Position:
    """Return a position north_m metres north of a zone place."""
    place = zone.place(place_id)
    return Position(lat=place.position.lat + north_m / 111_320, lon=place.position.lon)


async def first_dispatch(h: Harness) -> IncidentStateChange:
    """Wait for the first dispatch step; its parties are in the order they were chosen."""
    seen = await h.wait_for(lambda s: bool(states(s, IncidentState.DISPATCHED)))
    return next(c for c in seen.states if c.state is IncidentState.DISPATCHED)


def jobs(seen: Seen) -> list[str]:
    return [a.unit_id for a in seen.assignments if a.kind is AssignmentKind.ASSIGNMENT]


async def test_school_alarm_goes_to_the_schools_own_officer_first(
    running_stack: Settings,
) -> None:
    async with running_pipeline(running_stack) as h:
        zone = h.pipeline.zone
        school = next(p for p in zone.places if p.type is PlaceType.SCHOOL)
        (officer,) = zone.school_officers_for(school.id)
        patrol = zone.units_of_kind(UnitKind.PATROL)[0]
        # The patrol is closer than the school's own officer; the officer still goes first.
        await h.report(patrol.id, at(zone, school.id, north_m=50))
        await h.report(officer.id, at(zone, school.id, north_m=400))
        await h.units_known()
        await h.raise_alarm(text="两个人在学校门口打架", place_id=school.id)
        lead = (await first_dispatch(h)).parties[0]
        assert (lead.unit_id, lead.role) == (officer.id, "primary")
        seen = await h.wait_for(lambda s: any(a.unit_id == officer.id for a in s.assignments))
        assert next(a for a in seen.assignments if a.unit_id == officer.id).category == "fight"


async def test_enterprise_robbery_sends_police_and_alerts_guards_within_the_radius(
    running_stack: Settings,
) -> None:
    async with running_pipeline(running_stack) as h:
        zone = h.pipeline.zone
        site = "ent-hengtong"
        patrols = zone.units_of_kind(UnitKind.PATROL)
        guards = [g for g in zone.units_of_kind(UnitKind.GUARD) if g.home_place_id != site][:3]
        await h.report(patrols[0].id, at(zone, site, north_m=5000))
        await h.report(patrols[1].id, at(zone, site, north_m=1800))
        for guard, metres in zip(guards, (300, 900, 1500), strict=True):
            await h.report(guard.id, at(zone, site, north_m=metres))
        await h.units_known()
        await h.raise_alarm(text="仓库有人持刀抢劫", enterprise_id=site)
        # The dispatch state change lists every party of that one dispatch step, in order on
        # the incident's key; jobs for different units travel on different partitions.
        dispatched = await first_dispatch(h)
        police = [p.unit_id for p in dispatched.parties if p.kind is AssignmentKind.ASSIGNMENT]
        alerted = {
            p.unit_id for p in dispatched.parties if p.kind is AssignmentKind.MUTUAL_AID_ALERT
        }
        assert police[0] == patrols[1].id  # the nearer patrol leads
        assert alerted == {guards[0].id, guards[1].id}  # 300 m and 900 m, not 1500 m
        # Police and guards were sent in the same dispatch step, at the same moment.
        assert len({p.dispatched_at for p in dispatched.parties}) == 1
        seen = await h.wait_for(lambda s: len(s.assignments) == len(dispatched.parties))
        lead = next(a for a in seen.assignments if a.unit_id == patrols[1].id)
        assert (lead.category, lead.priority) == ("robbery", "P1")


async def test_fire_goes_to_the_fire_brigade(running_stack: Settings) -> None:
    async with running_pipeline(running_stack) as h:
        zone = h.pipeline.zone
        site = "ent-qixing"
        fire = zone.units_of_kind(UnitKind.FIRE)
        await h.report(zone.units_of_kind(UnitKind.PATROL)[0].id, at(zone, site, north_m=100))
        for unit in fire:
            await h.report(unit.id, at(zone, site, north_m=3000))
        await h.units_known()
        await h.raise_alarm(text="厂房起火了,浓烟很大", enterprise_id=site)
        dispatched = await first_dispatch(h)
        sent = {p.unit_id for p in dispatched.parties if p.kind is AssignmentKind.ASSIGNMENT}
        assert sent
        assert sent <= {u.id for u in fire}
        assert dispatched.category == "fire"


async def test_dispute_goes_to_the_mediator(running_stack: Settings) -> None:
    async with running_pipeline(running_stack) as h:
        zone = h.pipeline.zone
        (mediator,) = zone.units_of_kind(UnitKind.MEDIATOR)
        site = "mediation-room"
        await h.report(mediator.id, at(zone, site, north_m=10))
        await h.units_known()
        await h.raise_alarm(text="两户邻居因为噪音发生纠纷,吵得很凶", place_id=site)
        seen = await h.wait_for(lambda s: len(jobs(s)) >= 1)
        assert jobs(seen) == [mediator.id]
        assert seen.assignments[0].category == "dispute"


def states(seen: Seen, state: IncidentState) -> list[str]:
    return [c.reason or "" for c in seen.states if c.state is state]


def merged_changes(seen: Seen) -> list[IncidentStateChange]:
    return [c for c in seen.states if c.state is IncidentState.MERGED]


async def two_patrols(h: Harness, site: str) -> tuple[str, str]:
    """Report two free patrols near site, the first nearer; return their ids."""
    zone = h.pipeline.zone
    near, far = zone.units_of_kind(UnitKind.PATROL)[:2]
    await h.report(near.id, at(zone, site, north_m=500))
    await h.report(far.id, at(zone, site, north_m=2500))
    await h.units_known()
    return near.id, far.id


async def test_no_acceptance_redispatches_to_the_next_best_and_tells_the_commander(
    running_stack: Settings,
) -> None:
    async with running_pipeline(
        running_stack, lifecycle=fast_lifecycle(accept_s=1.0), tick_interval_s=0.2
    ) as h:
        near, far = await two_patrols(h, "ent-hengtong")
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) >= 2)
        assert jobs(seen) == [near, far]
        sent = [a for a in seen.assignments if a.kind is AssignmentKind.ASSIGNMENT]
        assert [a.attempt for a in sent] == [1, 2]
        # The unit that did not answer is told its job is withdrawn.
        withdrawn = [a.unit_id for a in seen.assignments if a.kind is AssignmentKind.STAND_DOWN]
        assert withdrawn == [near]
        seen = await h.wait_for(lambda s: bool(states(s, IncidentState.ESCALATED)))
        assert any(near in reason for reason in states(seen, IncidentState.TIMED_OUT))
        assert any("next-best" in reason for reason in states(seen, IncidentState.ESCALATED))


async def test_decline_goes_to_the_next_best_at_once(running_stack: Settings) -> None:
    async with running_pipeline(running_stack) as h:
        near, far = await two_patrols(h, "ent-hengtong")
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) >= 1)
        await h.respond(seen.assignments[0], ResponseAction.DECLINE, reason="vehicle broke down")
        seen = await h.wait_for(
            lambda s: len(jobs(s)) >= 2 and bool(states(s, IncidentState.DECLINED))
        )
        assert jobs(seen) == [near, far]
        assert states(seen, IncidentState.DECLINED) == ["vehicle broke down"]
        assert not states(seen, IncidentState.TIMED_OUT)


async def test_all_units_busy_goes_to_the_commander_queue(running_stack: Settings) -> None:
    async with running_pipeline(running_stack) as h:
        zone = h.pipeline.zone
        for patrol in zone.units_of_kind(UnitKind.PATROL):
            await h.report(patrol.id, at(zone, "ent-hengtong", 800), UnitAvailability.BUSY)
        await h.units_known()
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: bool(states(s, IncidentState.ESCALATED)))
        assert jobs(seen) == []
        assert states(seen, IncidentState.CLASSIFIED)


async def test_sensor_storm_becomes_one_incident(running_stack: Settings) -> None:
    async with running_pipeline(running_stack) as h:
        await two_patrols(h, "ent-hengtong")
        storm = [
            await h.raise_alarm(
                text="防爬刺报警",
                source_kind=SourceKind.SENSOR,
                source_id=f"sensor-{n % 3}",
                sensor_kind=SensorKind.ANTI_CLIMB,
                enterprise_id="ent-hengtong",
            )
            for n in range(30)
        ]
        seen = await h.wait_for(
            lambda s: len(states(s, IncidentState.MERGED)) == len(storm) - 1 and bool(jobs(s))
        )
        assert len(jobs(seen)) == 1
        assert len({c.incident_id for c in seen.states}) == 1
        merges = merged_changes(seen)
        last = merges[-1]
        assert last.alarm_count == len(storm)
        # A change carries the most recent merged ids only (a storm's records stay small),
        # the alarm it is about among them: together they name every alarm once.
        assert all(len(c.merged_alarm_ids) <= 20 for c in merges)
        named = {last.first_alarm_id} | {a for c in merges for a in c.merged_alarm_ids}
        assert named == {a.alarm_id for a in storm}
        # The incident itself, in order on its own key, holds one party: one job was sent.
        assert len(last.parties) == 1


async def test_replayed_alarm_creates_no_second_job_even_after_a_restart(
    running_stack: Settings,
) -> None:
    app_id, prefix = f"replay-{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:10]}."
    alarm_text = "有人偷电动车"
    async with running_pipeline(running_stack, app_id=app_id, prefix=prefix) as h:
        await two_patrols(h, "ent-hengtong")
        alarm = await h.raise_alarm(text=alarm_text, enterprise_id="ent-hengtong")
        await h.wait_for(lambda s: len(jobs(s)) == 1)
        await h.send("alarms.raw", alarm)  # the same record again, as a replay would
        # A later alarm of the same place and kind travels the same partitions behind the
        # replay; once its merge shows, the replay has been through every stage.
        await h.raise_alarm(text=alarm_text, enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(states(s, IncidentState.MERGED)) == 1)
        assert len(jobs(seen)) == 1
        assert len(merged_changes(seen)[-1].parties) == 1
    # A new worker with the same app id recovers the tables from their changelogs.
    async with running_pipeline(running_stack, app_id=app_id, prefix=prefix) as h:
        await h.send("alarms.raw", alarm)
        await h.raise_alarm(text=alarm_text, enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(states(s, IncidentState.MERGED)) == 2)
        assert len(jobs(seen)) == 1
        assert len(merged_changes(seen)[-1].parties) == 1


async def test_poison_message_goes_to_the_dead_letter_topic_and_work_goes_on(
    running_stack: Settings,
) -> None:
    async with running_pipeline(running_stack) as h:
        await two_patrols(h, "ent-hengtong")
        await h.send_raw("alarms.raw", b'{"text": "no id", "source_kind": "pigeon"}', b"x")
        await h.send_raw("alarms.raw", b"\x00\x01 garbage", b"x")
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) == 1 and len(s.dead_letters) == 2)
        fields = {e.field for e in seen.dead_letters[0].errors}
        assert {"alarm_id", "source_kind"} <= fields
        assert seen.dead_letters[1].value == b"\x00\x01 garbage"
        assert {d.stage for d in seen.dead_letters} == {"classify"}


async def test_deadline_survives_a_worker_restart(running_stack: Settings) -> None:
    app_id, prefix = f"timer-{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:10]}."
    lifecycle = fast_lifecycle(accept_s=1.0)
    # The first worker's timer never fires in its lifetime: only the restarted one can act.
    async with running_pipeline(
        running_stack, app_id=app_id, prefix=prefix, lifecycle=lifecycle, tick_interval_s=3600
    ) as h:
        near, far = await two_patrols(h, "ent-hengtong")
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) == 1)
        first = seen.assignments[0]
    async with running_pipeline(
        running_stack, app_id=app_id, prefix=prefix, lifecycle=lifecycle, tick_interval_s=0.2
    ) as h:
        seen = await h.wait_for(lambda s: len(jobs(s)) == 2)
        assert jobs(seen) == [near, far]
        assert seen.assignments[1].dispatched_at >= first.ack_deadline


async def test_alarm_after_its_incident_closed_opens_and_dispatches_a_new_one(
    running_stack: Settings,
) -> None:
    async with running_pipeline(running_stack) as h:
        await two_patrols(h, "ent-hengtong")
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) == 1)
        first = seen.assignments[0]
        for action in (ResponseAction.ACCEPT, ResponseAction.ON_SCENE, ResponseAction.RESOLVED):
            await h.respond(first, action)
        seen = await h.wait_for(lambda s: bool(states(s, IncidentState.RESOLVED)))
        # Inside the merge window of the closed incident's place and kind: a new incident.
        again = await h.raise_alarm(text="又有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) == 2)
        second = [a for a in seen.assignments if a.kind is AssignmentKind.ASSIGNMENT][1]
        assert second.incident_id == provisional_incident_id(again.alarm_id)
        assert not any("closed" in r for r in states(seen, IncidentState.ESCALATED))
        timing = next(c for c in seen.states if c.state is IncidentState.RESOLVED).timing
        assert timing.to_accept_s is not None
        assert timing.to_scene_s is not None
        assert timing.to_resolve_s is not None


async def test_commander_reassigns_and_closes_with_the_commander_on_record(
    running_stack: Settings,
) -> None:
    async with running_pipeline(running_stack) as h:
        near, far = await two_patrols(h, "ent-hengtong")
        await h.raise_alarm(text="有人偷电动车", enterprise_id="ent-hengtong")
        seen = await h.wait_for(lambda s: len(jobs(s)) == 1)
        incident_id = seen.assignments[0].incident_id

        def order(action: CommanderAction, **fields: str) -> CommanderCommand:
            return CommanderCommand.model_validate(
                {
                    "event_id": uuid.uuid4(),
                    "incident_id": incident_id,
                    "action": action,
                    "actor": "commander-zhang",
                    "issued_at": datetime.now(UTC),
                    **fields,
                }
            )

        await h.send(
            "commander.commands", order(CommanderAction.REASSIGN, unit_id=far, from_unit_id=near)
        )
        seen = await h.wait_for(lambda s: len(jobs(s)) == 2)
        assert jobs(seen) == [near, far]
        await h.send("commander.commands", order(CommanderAction.CLOSE, reason="suspect caught"))
        seen = await h.wait_for(lambda s: bool(states(s, IncidentState.RESOLVED)))
        by_commander = [c for c in seen.states if c.actor == "commander-zhang"]
        assert {c.state for c in by_commander} >= {
            IncidentState.REDISPATCHED,
            IncidentState.RESOLVED,
        }
        # A command for a closed incident is refused into the dead-letter topic, with why.
        await h.send("commander.commands", order(CommanderAction.CANCEL))
        seen = await h.wait_for(lambda s: bool(s.dead_letters))
        assert "already resolved" in seen.dead_letters[0].reason
