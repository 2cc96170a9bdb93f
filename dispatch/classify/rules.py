"""The classification rules file: its schema, its loader and the matchers built from it."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dispatch.classify.classifier import KeywordMatcher, fold_keyword
from dispatch.events.alarms import Category, PlaceType, Priority, SensorKind, SourceKind
from dispatch.events.base import Capability

MAX_CAPABILITIES = 8  # ClassifiedAlarm.required_capabilities holds at most this many


class RulesFileError(ValueError):
    """A rules file that cannot be read, is not TOML, or breaks the rules schema."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.line = line
        self.field = field


Keyword = Annotated[str, Field(max_length=64), AfterValidator(fold_keyword)]


class RulesModel(BaseModel):
    """Base of every table in the rules file: immutable, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FallbackRule(RulesModel):
    """What an alarm gets when no keyword and no source rule decided: the `other` category."""

    priority: Priority
    capabilities: tuple[Capability, ...] = Field(min_length=1, max_length=MAX_CAPABILITIES)
    units_needed: int = Field(default=1, ge=1, le=10)
    keywords: tuple[Keyword, ...] = ()


class CategoryRule(FallbackRule):
    """Keywords that put an alarm in a category, and what that category needs."""

    rank: int = Field(ge=1, le=99, description="Precedence: the lowest matching rank wins.")
    keywords: tuple[Keyword, ...] = Field(min_length=1)


class CategoryRules(RulesModel):
    """One rule per `Category`, so a missing or misspelt category is a named error."""

    fire: CategoryRule
    medical: CategoryRule
    robbery: CategoryRule
    theft: CategoryRule
    fight: CategoryRule
    traffic: CategoryRule
    dispute: CategoryRule
    intrusion: CategoryRule
    suspicious_person: CategoryRule
    hazard: CategoryRule
    help_request: CategoryRule
    other: FallbackRule

    @model_validator(mode="after")
    def _ranks_differ(self) -> CategoryRules:
        seen: dict[int, Category] = {}
        for category, rule in self.ranked():
            if rule.rank in seen:
                raise ValueError(
                    f"{seen[rule.rank]} and {category} share rank {rule.rank}; "
                    "ranks decide which category wins and must differ"
                )
            seen[rule.rank] = category
        return self

    def ranked(self) -> Iterator[tuple[Category, CategoryRule]]:
        """Yield the keyword categories, most severe (lowest rank) first."""
        keyword = [c for c in Category if c not in (Category.OTHER, Category.UNCLASSIFIED)]
        rules = [(c, getattr(self, c.value)) for c in keyword]
        yield from sorted(rules, key=lambda pair: pair[1].rank)

    def get(self, category: Category) -> FallbackRule:
        """Return the rule of one category."""
        if category is Category.UNCLASSIFIED:
            return self.other
        rule: FallbackRule = getattr(self, category.value)
        return rule


class SourceRule(RulesModel):
    """The category of an alarm that no keyword placed, from who or what raised it."""

    source_kind: SourceKind
    sensor_kind: SensorKind | None = None
    category: Category
    priority: Priority | None = None

    @model_validator(mode="after")
    def _sensor_kind_only_for_sensors(self) -> SourceRule:
        if self.sensor_kind is not None and self.source_kind is not SourceKind.SENSOR:
            raise ValueError("sensor_kind applies only when source_kind is 'sensor'")
        return self


class PlaceRule(RulesModel):
    """How the place type shifts the priority and needs of some categories."""

    place_type: PlaceType
    categories: tuple[Category, ...] = Field(min_length=1)
    raise_by: int = Field(default=0, ge=-3, le=3, description="Positive is more urgent.")
    priority: Priority | None = Field(default=None, description="At least this urgent.")
    add_capabilities: tuple[Capability, ...] = ()
    min_units: int = Field(default=1, ge=1, le=10)


class Modifier(RulesModel):
    """Keywords that, on top of the category, escalate priority or add needs (e.g. weapons)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    keywords: tuple[Keyword, ...] = Field(min_length=1)
    categories: tuple[Category, ...] = Field(default=(), description="Empty means every one.")
    priority: Priority | None = Field(default=None, description="At least this urgent.")
    add_capabilities: tuple[Capability, ...] = ()
    min_units: int = Field(default=1, ge=1, le=10)

    def applies_to(self, category: Category) -> bool:
        """Tell whether this modifier is checked for alarms of the category."""
        return not self.categories or category in self.categories


@dataclass(frozen=True, slots=True)
class _Index:
    """Everything `classify` looks up, built once per loaded file so a call does no setup."""

    ranked: tuple[tuple[Category, KeywordMatcher], ...]
    sources: dict[tuple[SourceKind, SensorKind | None], SourceRule]
    places: dict[tuple[PlaceType, Category], PlaceRule]
    modifiers: dict[Category, tuple[tuple[Modifier, KeywordMatcher], ...]]


class Rules(RulesModel):
    """A whole rules file: categories, source rules, place rules and modifiers."""

    schema_version: Literal[1]
    categories: CategoryRules
    source_rules: tuple[SourceRule, ...] = ()
    place_rules: tuple[PlaceRule, ...] = ()
    modifiers: tuple[Modifier, ...] = ()
    _index: _Index

    @field_validator("source_rules")
    @classmethod
    def _one_rule_per_source(cls, rules: tuple[SourceRule, ...]) -> tuple[SourceRule, ...]:
        _no_repeats([(i, f"{r.source_kind}/{r.sensor_kind or '*'}") for i, r in enumerate(rules)])
        return rules

    @field_validator("place_rules")
    @classmethod
    def _one_rule_per_place(cls, rules: tuple[PlaceRule, ...]) -> tuple[PlaceRule, ...]:
        _no_repeats([(i, f"{r.place_type}/{c}") for i, r in enumerate(rules) for c in r.categories])
        return rules

    @field_validator("modifiers")
    @classmethod
    def _unique_modifier_names(cls, modifiers: tuple[Modifier, ...]) -> tuple[Modifier, ...]:
        _no_repeats([(i, m.name) for i, m in enumerate(modifiers)])
        return modifiers

    @model_validator(mode="after")
    def _capabilities_fit(self) -> Rules:
        for category in Category:
            self._check_capability_budget(category)
        return self

    def _check_capability_budget(self, category: Category) -> None:
        needed = set(self.categories.get(category).capabilities)
        for modifier in self.modifiers:
            if modifier.applies_to(category):
                needed.update(modifier.add_capabilities)
        extra = [set(p.add_capabilities) for p in self.place_rules if category in p.categories]
        worst = max((len(needed | more) for more in extra), default=len(needed))
        if worst > MAX_CAPABILITIES:
            raise ValueError(
                f"category {category} can need {worst} capabilities once place rules and "
                f"modifiers apply; an alarm carries at most {MAX_CAPABILITIES}"
            )

    def model_post_init(self, context: object, /) -> None:
        """Compile every keyword list once, so classifying an alarm only runs the matchers."""
        ranked = [(c, KeywordMatcher.build(r.keywords)) for c, r in self.categories.ranked()]
        other = self.categories.other.keywords
        if other:  # keywords of `other` may record why, but never outrank a real category
            ranked.append((Category.OTHER, KeywordMatcher.build(other)))
        compiled = [(m, KeywordMatcher.build(m.keywords)) for m in self.modifiers]
        self._index = _Index(
            ranked=tuple(ranked),
            sources={(s.source_kind, s.sensor_kind): s for s in self.source_rules},
            places={(p.place_type, c): p for p in self.place_rules for c in p.categories},
            modifiers={c: tuple((m, k) for m, k in compiled if m.applies_to(c)) for c in Category},
        )

    @property
    def ranked_matchers(self) -> tuple[tuple[Category, KeywordMatcher], ...]:
        """Return the keyword matcher of each category, most severe first, `other` last."""
        return self._index.ranked

    def source_rule(self, source: SourceKind, sensor: SensorKind | None) -> SourceRule | None:
        """Return the rule for this source, preferring one that names the sensor kind."""
        exact = self._index.sources.get((source, sensor))
        return exact if exact is not None else self._index.sources.get((source, None))

    def place_rule(self, place: PlaceType, category: Category) -> PlaceRule | None:
        """Return the adjustment for a category at a place type, if the file has one."""
        return self._index.places.get((place, category))

    def modifiers_for(self, category: Category) -> tuple[tuple[Modifier, KeywordMatcher], ...]:
        """Return the modifiers checked for a category, in file order, with their matchers."""
        return self._index.modifiers[category]


def _no_repeats(cases: list[tuple[int, str]]) -> None:
    # Two rules for one case would make the outcome depend on their order in the file.
    seen: set[str] = set()
    for index, case in cases:
        if case in seen:
            raise ValueError(f"entry [{index}] repeats an earlier rule for {case}")
        seen.add(case)


def default_rules_path() -> Traversable:
    """Return the rules file shipped inside the package."""
    return files("dispatch.classify") / "data" / "rules.toml"


def load_rules(path: str | os.PathLike[str] | Traversable) -> Rules:
    """Read, parse and validate a rules file, or raise `RulesFileError` saying where it is wrong."""
    source = Path(path) if isinstance(path, str | os.PathLike) else path
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise RulesFileError(f"{source}: cannot read the rules file: {exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesFileError(f"{source}, line {line}: not UTF-8", line=line) from exc
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 keeps the position only in the message: "... (at line 3, column 9)".
        found = re.search(r"at line (\d+)", str(exc))
        at = int(found.group(1)) if found else None
        raise RulesFileError(f"{source}, line {at}: TOML syntax: {exc}", line=at) from exc
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # Keep the deepest: "capabilities: too short" only echoes "capabilities[0]: bad pattern".
        errors = [e for e in errors if not any(_below(o["loc"], e["loc"]) for o in errors)]
        problems = [(_dotted(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in errors]
        listed = "; ".join(f"{field or '(file)'}: {message}" for field, message in problems)
        raise RulesFileError(f"{source}: {listed}", field=problems[0][0] or None) from exc


def _dotted(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def _below(loc: tuple[int | str, ...], parent: tuple[int | str, ...]) -> bool:
    return len(loc) > len(parent) and loc[: len(parent)] == parent
