"""Where a variant's CPU goes: the variant's own processes, the broker, the observer.

The machine has two cores, so a pipeline that keeps both busy is limited by the CPU every
process spends per alarm, the broker's included. A sampler reads the CPU time of each of the
run's processes a few times a second; `spent` gives each group's CPU seconds between two
instants (the observer's start and end of the timed run), interpolated between samples.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

import psutil

SAMPLE_EVERY_S = 0.2


@dataclass
class CpuSampler:
    """Samples the CPU seconds of process groups (name -> pids, asked anew every sample)."""

    groups: Callable[[], dict[str, set[int]]]
    times: list[float] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    _seen: dict[int, psutil.Process] = field(default_factory=dict)

    def sample(self) -> None:
        """Record every group's CPU seconds so far (a process that ended keeps its last)."""
        used: dict[str, float] = {}
        last = self.samples[-1] if self.samples else {}
        for name, pids in self.groups().items():
            total = 0.0
            for pid in pids:
                process = self._seen.get(pid) or self._seen.setdefault(pid, psutil.Process(pid))
                with suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
            used[name] = max(total, last.get(name, 0.0))
        self.times.append(time.time())
        self.samples.append(used)

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            with suppress(psutil.Error):
                self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def at(self, instant: float, name: str) -> float:
        """The group's CPU seconds at an instant, interpolated between the samples around it."""
        i = bisect.bisect_left(self.times, instant)
        if i == 0:
            return self.samples[0].get(name, 0.0)
        if i == len(self.times):
            return self.samples[-1].get(name, 0.0)
        t0, t1 = self.times[i - 1], self.times[i]
        c0, c1 = self.samples[i - 1].get(name, 0.0), self.samples[i].get(name, 0.0)
        return c0 + (c1 - c0) * (instant - t0) / (t1 - t0)

    def spent(self, start: float, end: float) -> dict[str, float]:
        """Each group's CPU seconds between two instants (epoch seconds)."""
        names = self.samples[-1] if self.samples else {}
        return {name: self.at(end, name) - self.at(start, name) for name in names}
