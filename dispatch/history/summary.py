"""What a generated history holds, in the figures the seed article and the norms speak of.

Counted from the generated events themselves (not from the record), so `dispatch seed-history`
can say what it wrote and the tests can check the history before anything is stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from dispatch.events import ClassifiedAlarm
from dispatch.history.generator import HistoryMonth
from dispatch.history.mix import ARTICLE_RATIOS, GROUPS, MIX
from dispatch.history.schedule import Span
from dispatch.zone import GridArea, Zone

# NFPA 1225: an alarm processed (received to dispatched) within 60 s; the Chinese arrival
# norms: on scene within 5 min in the city, 10 min in the suburbs.
PROCESS_S = 60.0
ARRIVE_S = {GridArea.URBAN: 300.0, GridArea.SUBURBAN: 600.0}
YEAR_2, YEAR_1 = "second", "first"


@dataclass
class Tally:
    """Running counts over a history's months."""

    span: Span
    zone: Zone
    alarms: Counter[tuple[str, str]] = field(default_factory=Counter)
    incidents: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: int = 0
    processed: list[int] = field(default_factory=lambda: [0, 0])
    arrived: dict[GridArea, list[int]] = field(
        default_factory=lambda: {area: [0, 0] for area in GridArea}
    )

    def add(self, month: HistoryMonth) -> None:
        """Count one month of history."""
        year = self.year_of(month.month)
        for history in month.incidents:
            self.events += len(history.records)
            incident = history.incident
            for _, event in history.records:
                if isinstance(event, ClassifiedAlarm) and year is not None:
                    self.alarms[(year, event.category)] += 1
            if year is not None:
                self.incidents[(year, incident.category)] += 1
            timing = incident.timing
            if timing.received_at and timing.dispatched_at:
                within = (timing.dispatched_at - timing.received_at).total_seconds() <= PROCESS_S
                self.processed[0] += within
                self.processed[1] += 1
            if timing.received_at and timing.on_scene_at and incident.grid_id:
                area = self.zone.grid(incident.grid_id).area
                seconds = (timing.on_scene_at - timing.received_at).total_seconds()
                self.arrived[area][0] += seconds <= ARRIVE_S[area]
                self.arrived[area][1] += 1

    def year_of(self, month: date) -> str | None:
        """Return which of the last two years a month belongs to, or None (earlier)."""
        before = self.span.months_before_end(month)
        return YEAR_2 if before < 12 else YEAR_1 if before < 24 else None

    def change(self, group: str, counts: Counter[tuple[str, str]] | None = None) -> float | None:
        """Return the year-on-year change of a group's count (-0.538 for a fall of 53.8 %)."""
        counts = self.alarms if counts is None else counts
        categories = GROUPS.get(group, frozenset(MIX))
        first = sum(counts[(YEAR_1, c)] for c in categories)
        second = sum(counts[(YEAR_2, c)] for c in categories)
        return None if first == 0 else second / first - 1

    def lines(self) -> list[str]:
        """Return the summary for the person at the terminal."""
        total = sum(self.alarms.values())
        out = [f"{total:,} alarms and {self.events:,} events in the last two years' months"]
        names = {
            "all": "all alarms",
            "criminal": "criminal cases",
            "public_order": "public-order cases",
            "robbery_theft": "robbery and theft",
        }
        for group, name in names.items():
            change = self.change(group)
            target = ARTICLE_RATIOS[group] - 1
            if change is not None:
                out.append(
                    f"  year on year, {name}: {change:+.1%} (the seed article: {target:+.1%})"
                )
        done, count = self.processed
        if count:
            out.append(f"  processed within 60 s (NFPA 1225): {done / count:.1%} of {count:,}")
        for area, (done, count) in self.arrived.items():
            if count:
                limit = int(ARRIVE_S[area] // 60)
                out.append(
                    f"  on scene within {limit} min ({area}): {done / count:.1%} of {count:,}"
                )
        return out
