"""What an incident needs: capabilities with counts, and the parts a plan must fill."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The part only the school's own officer can fill (一校一园一警); never a capability name.
SCHOOL_OFFICER_PART = "school_officer"


class InvalidNeed(ValueError):
    """Raised when a need has no capability or a count below one."""


@dataclass(frozen=True, slots=True)
class Need:
    """A capability and how many units offering it the incident needs (two engines: fire, 2)."""

    capability: str
    count: int = 1

    def __post_init__(self) -> None:
        if not self.capability:
            raise InvalidNeed("a need names a capability")
        if self.count < 1:
            raise InvalidNeed(f"need {self.capability}: count must be at least 1")

    def __str__(self) -> str:
        return f"{self.capability} x{self.count}"


def merged_needs(*groups: Iterable[Need]) -> tuple[Need, ...]:
    """Merge needs, keeping first-seen order and the largest count of each capability."""
    counts: dict[str, int] = {}
    for group in groups:
        for need in group:
            counts[need.capability] = max(counts.get(need.capability, 0), need.count)
    return tuple(Need(capability, count) for capability, count in counts.items())


def needs_from_mapping(counts: Mapping[str, int]) -> tuple[Need, ...]:
    """Return needs from a `{capability: count}` mapping, in its order."""
    return tuple(Need(capability, count) for capability, count in counts.items())


def needs_as_mapping(needs: Iterable[Need]) -> dict[str, int]:
    """Return needs as a `{capability: count}` mapping, in their order."""
    return {need.capability: need.count for need in needs}


def legacy_needs(capabilities: Iterable[str], units_needed: int) -> tuple[Need, ...]:
    """Read the old (capabilities, units) pair: the extra units are of the first capability."""
    ordered = list(dict.fromkeys(capabilities)) or ["patrol"]
    first = max(1, units_needed - (len(ordered) - 1))
    return (Need(ordered[0], first), *(Need(c) for c in ordered[1:]))


def parts_of(needs: Iterable[Need]) -> list[str]:
    """Expand needs into one part per unit to send: fire x2 is two `fire` parts."""
    return [need.capability for need in needs for _ in range(need.count)]


def count_parts(parts: Iterable[str]) -> tuple[Need, ...]:
    """Fold parts back into needs, in first-seen order."""
    counts: dict[str, int] = {}
    for part in parts:
        counts[part] = counts.get(part, 0) + 1
    return needs_from_mapping(counts)
