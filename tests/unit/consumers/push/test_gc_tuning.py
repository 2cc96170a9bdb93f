"""The push gateway's garbage collector tuning, on this process's own collector."""

from __future__ import annotations

import asyncio
import gc
import weakref

from consumers.push.gc_tuning import GcTuning
from dispatch.settings import Settings


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


def is_tracked_by_collector(obj: object) -> bool:
    """Tell whether obj is in a generation the collector scans (frozen objects are in none)."""
    return any(candidate is obj for candidate in gc.get_objects())


async def test_what_survives_an_older_collection_is_frozen_until_exit() -> None:
    async with GcTuning(freeze=True, sweep_interval_s=0):
        assert gc.get_freeze_count() > 0  # the start-up state, at once
        state = [Node() for _ in range(10)]
        assert is_tracked_by_collector(state)
        gc.collect(1)
        assert not is_tracked_by_collector(state)
    assert gc.get_freeze_count() == 0
    assert is_tracked_by_collector(state)


async def test_young_collections_leave_survivors_unfrozen() -> None:
    async with GcTuning(freeze=True, sweep_interval_s=0):
        state = [Node()]
        gc.collect(0)
        assert is_tracked_by_collector(state)


async def test_sweep_frees_frozen_cycles() -> None:
    async with GcTuning(freeze=True, sweep_interval_s=0) as tuning:
        first, second = Node(), Node()
        first.other, second.other = second, first
        gone = weakref.ref(first)
        gc.collect(1)  # frozen, with nothing else referring to the cycle yet
        del first, second
        gc.collect()
        assert gone() is not None  # a full collection does not reach frozen garbage
        assert tuning.sweep() >= 2
        assert gone() is None
        assert gc.get_freeze_count() > 0  # what survived the sweep is frozen again


async def test_off_leaves_the_collector_alone() -> None:
    callbacks = list(gc.callbacks)
    async with GcTuning(freeze=False, sweep_interval_s=60):
        gc.collect()
        assert gc.get_freeze_count() == 0
        assert gc.callbacks == callbacks
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "gc sweeper"]


async def test_the_sweeper_runs_only_while_entered() -> None:
    def sweepers() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "gc sweeper"]

    async with GcTuning(freeze=True, sweep_interval_s=3600):
        assert len(sweepers()) == 1
    assert sweepers() == []


def test_settings_turn_it_on_by_default() -> None:
    tuning = GcTuning.from_settings(Settings())
    assert tuning.freeze
    assert tuning.sweep_interval_s == 3600
