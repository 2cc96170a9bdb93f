"""`dispatch run --workers N`: N worker processes for each stage (route's with the units'
reserve stage beside it, so several route workers never give one unit two jobs), each
with its own static-membership instance and its own probe port, none on another service's."""

from __future__ import annotations

from cli.run_command import services
from dispatch.settings import Settings


def test_n_workers_for_every_stage() -> None:
    specs = services(Settings(stream_workers=3))
    names = [s.name for s in specs]
    assert [n for n in names if n.startswith("classify")] == [
        "classify worker", "classify worker 2", "classify worker 3",
    ]  # fmt: skip
    assert [n for n in names if n.startswith("merge")] == [
        "merge worker", "merge worker 2", "merge worker 3",
    ]  # fmt: skip
    assert [n for n in names if n.startswith("route")] == [
        "route worker", "route worker 2", "route worker 3",
    ]  # fmt: skip
    assert [n for n in names if n.startswith("sink")] == ["sink", "sink 2", "sink 3"]
    stage_specs = [s for s in specs if "streams" in s.command]
    instances = {(s.command[s.command.index("--stage") + 1], s.command[-1]) for s in stage_specs}
    assert len(instances) == len(stage_specs)  # no two members of a group share an instance
    ports = [s.ready_url for s in specs]
    assert len(set(ports)) == len(ports)  # every probe on a port of its own


def test_one_worker_per_stage_by_default() -> None:
    names = [s.name for s in services(Settings())]
    assert [n for n in names if "worker" in n] == [
        "classify worker", "merge worker", "route worker",
    ]  # fmt: skip


def test_the_most_workers_still_take_ports_of_their_own() -> None:
    specs = services(Settings(stream_workers=8))
    assert sum("worker" in s.name for s in specs) == 24
    assert sum(s.name.startswith("sink") for s in specs) == 8
    ports = [s.ready_url for s in specs]
    assert len(set(ports)) == len(ports)
