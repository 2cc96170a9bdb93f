"""Classify an alarm into category, priority, capabilities and units by the loaded rules.

This is the generic engine: how text is folded, how a keyword matches, and in which order the
rules apply. What the rules say lives in `data/rules.toml`; their schema in `rules.py`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch.events.alarms import Category, PlaceType, Priority, SensorKind, SourceKind

if TYPE_CHECKING:  # rules.py compiles its keywords with this module's KeywordMatcher
    from dispatch.classify.rules import Rules

# Scripts written without spaces between words (CJK ideographs, kana, hangul): their keywords
# match as plain substrings, because there is no word boundary to look for.
_UNSPACED = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]")
# Word characters for English boundaries. Deliberately not `\b`: Python counts a CJK ideograph as
# a word character, so `\b` would refuse "fire" in "有人fire".
_WORD = "0-9a-z\u00c0-\u024f"

_URGENCY = {priority: index for index, priority in enumerate(Priority)}  # P1 -> 0, P4 -> 3
_BY_URGENCY = tuple(Priority)


def fold_text(text: str) -> str:
    """Fold text the way keywords are folded: NFKC (full-width to ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def fold_keyword(raw: str) -> str:
    """Fold a keyword like text and check it, raising `ValueError` for a blank or bad `*`."""
    keyword = " ".join(fold_text(raw).split())
    if not keyword or keyword == "*":
        raise ValueError("keyword must not be blank")
    if "*" in keyword[:-1] or (keyword.endswith("*") and _UNSPACED.search(keyword)):
        raise ValueError("'*' is allowed only at the end of an English keyword")
    return keyword


def _keyword_pattern(keyword: str) -> str:
    if _UNSPACED.search(keyword):
        return re.escape(keyword)
    first, *others = keyword.removesuffix("*").split()
    # The boundary check sits after the first character, not before it, so every alternative
    # starts with a literal and `re` can skip positions that cannot start a keyword.
    body = re.escape(first[0]) + f"(?<![{_WORD}].)" + re.escape(first[1:])
    body += "".join(r"\s+" + re.escape(word) for word in others)
    return body + (f"[{_WORD}]*" if keyword.endswith("*") else f"(?![{_WORD}])")


@dataclass(frozen=True, slots=True)
class KeywordMatcher:
    """One compiled alternation over keywords, and the way back from a match to its keyword."""

    pattern: re.Pattern[str] | None
    exact: dict[str, str]
    stems: tuple[tuple[str, str], ...]

    @classmethod
    def build(cls, keywords: tuple[str, ...]) -> KeywordMatcher:
        """Compile the keywords, longest first so the most specific one is the one reported."""
        ordered = sorted(dict.fromkeys(keywords), key=len, reverse=True)
        # No capturing groups: a group in front of each alternative defeats the literal prefix
        # scan and made matching about 20x slower; the keyword is recovered from the text instead.
        pattern = re.compile("|".join(map(_keyword_pattern, ordered))) if ordered else None
        stems = tuple((k.removesuffix("*"), k) for k in ordered if k.endswith("*"))
        return cls(pattern, {k: k for k in ordered if not k.endswith("*")}, stems)

    def hits(self, folded: str) -> tuple[str, ...]:
        """Return the keywords found in already folded text, in order of first appearance."""
        if self.pattern is None:
            return ()
        found = {self._keyword_of(match.group()): None for match in self.pattern.finditer(folded)}
        return tuple(found)

    def _keyword_of(self, matched: str) -> str:
        matched = " ".join(matched.split())
        if matched in self.exact:
            return self.exact[matched]
        return next((k for stem, k in self.stems if matched.startswith(stem)), matched)


@dataclass(frozen=True, slots=True)
class Classification:
    """What an alarm is, how urgent, what it needs, and which keywords decided it."""

    category: Category
    priority: Priority
    required_capabilities: tuple[str, ...]
    matched: tuple[str, ...]
    units_needed: int


def _raised(priority: Priority, by: int) -> Priority:
    return _BY_URGENCY[min(max(_URGENCY[priority] - by, 0), len(_BY_URGENCY) - 1)]


def _at_least(priority: Priority, floor: Priority | None) -> Priority:
    if floor is None or _URGENCY[priority] <= _URGENCY[floor]:
        return priority
    return floor


def _category_of(
    rules: Rules, folded: str, source_kind: SourceKind, sensor_kind: SensorKind | None
) -> tuple[Category, Priority | None, tuple[str, ...]]:
    # Rank order plus an early exit: the first category with any hit is the most severe one.
    for category, matcher in rules.ranked_matchers:
        hits = matcher.hits(folded)
        if hits:
            return category, None, hits
    source = rules.source_rule(source_kind, sensor_kind)
    if source is None:
        return Category.OTHER, None, ()
    marker = f"source:{source.source_kind}"
    if source.sensor_kind is not None:
        marker += f"/{source.sensor_kind}"
    return source.category, source.priority, (marker,)


def classify(
    rules: Rules,
    *,
    text: str,
    source_kind: SourceKind,
    sensor_kind: SensorKind | None = None,
    place_type: PlaceType | None = None,
) -> Classification:
    """Classify one alarm; negations ("no fire") are not understood and match like the word."""
    folded = fold_text(text)
    category, source_priority, matched = _category_of(rules, folded, source_kind, sensor_kind)
    rule = rules.categories.get(category)
    priority = source_priority or rule.priority
    capabilities = list(rule.capabilities)
    units = rule.units_needed

    place = rules.place_rule(place_type, category) if place_type is not None else None
    if place is not None:
        priority = _at_least(_raised(priority, place.raise_by), place.priority)
        capabilities.extend(place.add_capabilities)
        units = max(units, place.min_units)

    # Modifiers come last so an escalation (a weapon, P1) is never undone by a place rule.
    for modifier, matcher in rules.modifiers_for(category):
        hits = matcher.hits(folded)
        if hits:
            priority = _at_least(priority, modifier.priority)
            capabilities.extend(modifier.add_capabilities)
            units = max(units, modifier.min_units)
            matched += hits

    return Classification(
        category=category,
        priority=priority,
        required_capabilities=tuple(dict.fromkeys(capabilities)),
        matched=tuple(dict.fromkeys(matched)),
        units_needed=units,
    )
