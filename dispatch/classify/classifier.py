"""Classify an alarm into category, priority and counted needs, with the evidence for each.

This is the generic engine: the order in which the rules apply and how a threat to life fails
safe. What the rules say lives in `data/rules.toml`; their schema in `rules.py`; how text is
read (negation, clauses, typos) in `text.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.classify.rules import (
    LIFE_THREAT,
    MAX_UNITS,
    SCHOOL,
    Compiled,
    Rules,
    SourceRule,
)
from dispatch.classify.rules import Signal as SignalRule
from dispatch.classify.text import Hit, Reading
from dispatch.events.alarms import Category, PlaceType, Priority, SourceKind
from dispatch.routing.needs import Need, merged_needs, needs_from_mapping

_URGENCY = {priority: index for index, priority in enumerate(Priority)}  # P1 -> 0, P4 -> 3
_BY_URGENCY = tuple(Priority)
MEDICAL = Need("medical")


@dataclass(frozen=True, slots=True)
class Evidence:
    """A keyword as the rules write it, the words of the text that matched, and where."""

    keyword: str
    text: str
    start: int
    hedged: bool = False
    # Set when the words were read and set aside: the cue ("不是") or explanation ("烧烤").
    discounted_by: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A fact found in the alarm (category, life_threat, injured, fire, hazmat, school)."""

    name: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class Classification:
    """What an alarm is, how urgent, what it needs, and the evidence that decided it."""

    category: Category
    priority: Priority
    needs: tuple[Need, ...]
    signals: tuple[Signal, ...] = ()
    # Words found but set aside: negated ("没人受伤") or explained away ("烧烤的烟").
    discounted: tuple[Evidence, ...] = ()
    source_rule: str | None = None

    @property
    def required_capabilities(self) -> tuple[str, ...]:
        """Return the capabilities the plan needs, in order of need."""
        return tuple(n.capability for n in self.needs)

    @property
    def units_needed(self) -> int:
        """Return how many units the needs add up to (at most ten)."""
        return min(MAX_UNITS, sum(n.count for n in self.needs))

    @property
    def matched(self) -> tuple[str, ...]:
        """Return the deciding keywords (and the source rule), for the incident record."""
        words = [e.keyword for s in self.signals for e in s.evidence]
        if self.source_rule is not None:
            words.append(self.source_rule)
        return tuple(dict.fromkeys(words))

    def signal(self, name: str) -> Signal | None:
        """Return one signal by name, if present."""
        return next((s for s in self.signals if s.name == name), None)


def _raised(priority: Priority, by: int) -> Priority:
    return _BY_URGENCY[min(max(_URGENCY[priority] - by, 0), len(_BY_URGENCY) - 1)]


def _at_least(priority: Priority, floor: Priority | None) -> Priority:
    if floor is None or _URGENCY[priority] <= _URGENCY[floor]:
        return priority
    return floor


def _bounded(text: str, limit: int) -> str:
    # A transcript past the bound keeps its start (who, where) and its end (what happened
    # last); the cut is a clause break so no keyword is glued across it.
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n{text[-half:]}"


class _Evidence:
    """Sort the hits of a keyword list into evidence that stands and evidence set aside."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.discounted: list[Evidence] = []

    def of(self, compiled: Compiled) -> list[Evidence]:
        found: list[Evidence] = []
        hits = compiled.matcher.hits(self.reading.text)
        # Read only when there is something to explain away: most lists have no hit.
        anywhere = (
            next(iter(compiled.benign_anywhere.hits(self.reading.text)), None) if hits else None
        )
        for hit in hits:
            cue = self.reading.negation_of(hit)
            benign = None
            if cue is None:
                benign = self.reading.in_clause(hit, compiled.benign) or anywhere
            if cue is not None or benign is not None:
                why = (cue or benign or hit).keyword
                if all(d.start != hit.start for d in self.discounted):
                    self.discounted.append(self._evidence(hit, discounted_by=why))
            else:
                found.append(self._evidence(hit))
        return found

    def _evidence(self, hit: Hit, discounted_by: str | None = None) -> Evidence:
        text = self.reading.text[hit.start : hit.end]
        return Evidence(hit.keyword, text, hit.start, self.reading.hedged(hit), discounted_by)


Present = list[tuple[str, SignalRule, list[Evidence]]]


def classify(
    rules: Rules,
    *,
    text: str,
    source_kind: SourceKind,
    sensor_kind: str | None = None,
    place_type: PlaceType | None = None,
) -> Classification:
    """Classify one alarm; a threat to life makes it P1 with medical, whatever its category."""
    reading = Reading(rules.read(_bounded(text, rules.max_text_chars)), rules.scope)
    evidence = _Evidence(reading)
    category, found = Category.UNCLASSIFIED, []
    for candidate, compiled in rules.ranked:
        found = evidence.of(compiled)
        if found:
            category = candidate
            break
    present = [(n, s, hits) for n, s, c in rules.compiled_signals if (hits := evidence.of(c))]
    if category is Category.UNCLASSIFIED:
        category = next((s.implies for _, s, _ in present if s.implies), category)
    category, priority, source = _base(rules, category, source_kind, sensor_kind)
    rule = rules.categories[category]
    needs = merged_needs(
        needs_from_mapping(rule.needs), needs_from_mapping(source.needs if source else {})
    )
    if place_type is None or place_type is PlaceType.OTHER:
        # A hotline call that names a school is at a school, wherever its caller stands.
        place_type = PlaceType.SCHOOL if any(n == SCHOOL for n, _, _ in present) else place_type
    place = rules.place_rule(place_type, category) if place_type is not None else None
    if place is not None:
        priority = _at_least(_raised(priority, place.raise_by), place.priority)
        needs = merged_needs(needs, needs_from_mapping(place.needs))
    priority, needs = _with_signals(category, present, priority, needs)
    needs = merged_needs(needs, needs_from_mapping(rule.needs_at.get(priority, {})))
    signals = [Signal("category", tuple(found))] if found else []
    signals += [Signal(name, tuple(hits)) for name, _, hits in present]
    return Classification(
        category=category,
        priority=priority,
        needs=needs,
        signals=tuple(signals),
        discounted=tuple(evidence.discounted),
        source_rule=_marker(source) if source is not None else None,
    )


def _base(
    rules: Rules, category: Category, source_kind: SourceKind, sensor_kind: str | None
) -> tuple[Category, Priority, SourceRule | None]:
    """Return the category, its base priority, and the source rule that still applies."""
    source = rules.source_rule(source_kind, sensor_kind)
    if category is Category.UNCLASSIFIED and source is not None:
        # No words at all: the device says what it is (and may lower, as camera_b does).
        category = source.category
        return category, source.priority or rules.categories[category].priority, source
    rule = rules.categories[category]
    if source is not None and source.sensor_kind is not None and source.category is category:
        # The words agree with the device: its floor holds (a gas detector's P1).
        return category, _at_least(rule.priority, source.priority), source
    return category, rule.priority, None


def _with_signals(
    category: Category, present: Present, priority: Priority, needs: tuple[Need, ...]
) -> tuple[Priority, tuple[Need, ...]]:
    """Apply each present signal's floor and needs, then the fail-safe for a threat to life."""
    for _, signal, _ in present:
        if signal.applies_to(category):
            priority = _at_least(priority, signal.priority_in.get(category, signal.priority))
            needs = merged_needs(needs, needs_from_mapping(signal.needs))
    threat = any(
        (s.life_threat and s.applies_to(category)) or n == LIFE_THREAT for n, s, _ in present
    )
    if threat:
        # Fail safe: P1 and an ambulance, whatever the category and whatever the file says.
        return Priority.P1, merged_needs(needs, [MEDICAL])
    return priority, needs


def _marker(source: SourceRule) -> str:
    sensor = f"/{source.sensor_kind}" if source.sensor_kind else ""
    return f"source:{source.source_kind}{sensor}"
