"""What a stage worker counts once Kafka acknowledged a batch's writes, and the route stage's
escalated incidents as `/metrics` reads them."""

from __future__ import annotations

from typing import Any, cast

from prometheus_client import REGISTRY

from dispatch.events import ALARMS_DLQ, DISPATCH_ASSIGNMENTS, INCIDENTS_STATE
from streams.pipeline import Pipeline
from streams.probe import escalated_incidents
from streams.stages import Queued
from streams.tables import ChangelogTable
from streams.worker import StageSpec, _count_writes


def value(name: str, **labels: str) -> float:
    """Return a sample of the process's registry (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_dead_letters_decisions_and_escalations_are_counted() -> None:
    before = {
        "dead": value("dispatch_stage_dead_letters_total", stage="unit-route"),
        "jobs": value("dispatch_route_decisions_total", decision="assignment"),
        "escalated": value("dispatch_route_decisions_total", decision="state:escalated"),
        "escalations": value("dispatch_route_escalations_total"),
    }
    out = Queued()
    out.send(ALARMS_DLQ, b"k", b"{}")
    out.send(DISPATCH_ASSIGNMENTS, b"k", b"{}")
    out.send(DISPATCH_ASSIGNMENTS, b"k", b"{}")
    out.send(INCIDENTS_STATE, b"k", b'{"state":"escalated","reason":"no unit"}')
    out.send(INCIDENTS_STATE, b"k", b"not json")
    _count_writes("unit-route", out)
    assert value("dispatch_stage_dead_letters_total", stage="unit-route") == before["dead"] + 1
    assert value("dispatch_route_decisions_total", decision="assignment") == before["jobs"] + 2
    escalated = value("dispatch_route_decisions_total", decision="state:escalated")
    assert escalated == before["escalated"] + 1
    assert value("dispatch_route_escalations_total") == before["escalations"] + 1
    assert value("dispatch_route_decisions_total", decision="state:unknown") >= 1


class _Worker:
    def __init__(self, spec: StageSpec) -> None:
        self.spec = spec


class _Pipeline:
    def __init__(self, *workers: _Worker) -> None:
        self.workers = list(workers)


def test_escalated_incidents_are_read_from_the_route_tables() -> None:
    incidents = ChangelogTable("incidents", "changelog", partitions=1)
    incidents[b"a"] = b'{"incident_id":"a","state":"escalated","parties":[]}'
    incidents[b"b"] = b'{"incident_id":"b","state":"dispatched","parties":[]}'
    # A quote inside a text field is escaped, so a summary that says so is not counted.
    incidents[b"c"] = (
        b'{"incident_id":"c","state":"dispatched","summary":"\\"state\\":\\"escalated\\""}'
    )
    other = ChangelogTable("incident-deadlines", "changelog-2", partitions=1)
    other[b"a"] = b'{"state":"escalated"}'
    inputs: dict[str, Any] = {}
    spec = StageSpec("route", inputs, tables=(incidents, other))
    pipeline = cast(Pipeline, _Pipeline(_Worker(spec)))
    assert escalated_incidents(pipeline) == 1
