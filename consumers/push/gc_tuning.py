"""Keep the gateway's full garbage collections short: freeze what survived the young ones.

CPython's full (generation 2) collection walks every tracked container the process holds, and
the event loop stops meanwhile. A gateway's heap is mostly connection state that lives as long
as its connection: with 10,000 connections a full collection walked it for 600-800 ms, every
push in flight waited that long, and it found almost nothing to free (docs/benchmarks.md).

So after every collection of generation 1 or 2, everything that survived it is frozen
(`gc.freeze()`, which only splices lists: moved to the permanent generation, which no automatic
collection scans). Short-lived garbage, cycles included, is still collected by the young
generations, and reference counting still frees frozen objects that nothing refers to; full
collections find almost nothing left to walk. What freezing keeps alive is garbage in
reference *cycles* among objects that outlived two young collections: a closed connection's,
mostly (6 objects each in the benchmark). A sweep every `push_gc_sweep_interval_s` unfreezes
everything and runs one full collection, which frees those cycles and pays one long pause; the
survivors are frozen again. `push_gc_freeze = false` leaves CPython's collector as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from types import TracebackType
from typing import Self

from dispatch.settings import Settings

log = logging.getLogger("consumers.push.gc")


class GcTuning:
    """While entered, freeze the survivors of older-generation collections; sweep now and then."""

    def __init__(self, *, freeze: bool, sweep_interval_s: float) -> None:
        self.freeze = freeze
        self.sweep_interval_s = sweep_interval_s
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GcTuning:
        """Return the tuning the settings ask for."""
        return cls(
            freeze=settings.push_gc_freeze, sweep_interval_s=settings.push_gc_sweep_interval_s
        )

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        # Runs inside the collector, after a collection: the generations are consistent, and
        # what a collection of generation 1 or 2 left in them was reachable (after one of
        # generation 0 it would freeze objects that survived a single collection, too young).
        if phase == "stop" and info["generation"] >= 1:
            gc.freeze()

    def sweep(self) -> int:
        """Unfreeze everything and collect it all once (one long pause); return what was freed."""
        gc.unfreeze()
        freed = gc.collect()
        log.info("gc sweep freed %d objects; %d frozen", freed, gc.get_freeze_count())
        return freed

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            self.sweep()

    async def __aenter__(self) -> Self:
        if not self.freeze:
            return self
        gc.callbacks.append(self._on_collection)
        # Start-up state (modules, settings, pools) is never garbage: freeze it at once.
        gc.collect()
        if self.sweep_interval_s > 0:
            self._sweeper = asyncio.create_task(self._sweep_periodically(), name="gc sweeper")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.freeze:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        gc.callbacks.remove(self._on_collection)
        gc.unfreeze()
