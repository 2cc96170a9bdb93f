"""An independent maximum matching of parts to units, for the routing properties."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dispatch.routing import UnitRecord


def most_coverable(
    parts: Sequence[str], units: Sequence[UnitRecord], usable: Callable[[UnitRecord, str], bool]
) -> int:
    """Return how many parts some assignment of distinct units covers (Kuhn's augmenting paths)."""
    holder: dict[str, int] = {}

    def augment(part: int, seen: set[str]) -> bool:
        for unit in units:
            if unit.unit_id in seen or not usable(unit, parts[part]):
                continue
            seen.add(unit.unit_id)
            if unit.unit_id not in holder or augment(holder[unit.unit_id], seen):
                holder[unit.unit_id] = part
                return True
        return False

    return sum(augment(p, set()) for p in range(len(parts)))
