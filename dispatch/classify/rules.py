"""The classification rules file: its schema, its loader and the matchers built from it."""

from __future__ import annotations

import os
import re
import tomllib
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

from dispatch.classify.homophones import sound_alikes
from dispatch.classify.text import Dialect, KeywordMatcher, Scope, fold_keyword, fold_text
from dispatch.events.alarms import Category, PlaceType, Priority, SourceKind
from dispatch.events.base import Capability
from dispatch.routing.needs import Need, merged_needs, needs_from_mapping

MAX_CAPABILITIES = 8  # ClassifiedAlarm.required_capabilities holds at most this many
MAX_UNITS = 10  # ClassifiedAlarm.units_needed
LIFE_THREAT = "life_threat"
SCHOOL = "school"
KEYWORD_CATEGORIES: tuple[Category, ...] = tuple(
    c for c in Category if c not in (Category.OTHER, Category.UNCLASSIFIED)
)


class RulesFileError(ValueError):
    """A rules file that cannot be read, is not TOML, or breaks the rules schema."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.line = line
        self.field = field


Keyword = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(fold_keyword)]
Keywords = tuple[Keyword, ...]
DialectWord = Annotated[str, Field(min_length=1, max_length=8), AfterValidator(fold_text)]
Needs = dict[Capability, Annotated[int, Field(ge=1, le=MAX_UNITS)]]
DeviceKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class RulesModel(BaseModel):
    """Base of every table in the rules file: immutable, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Language(RulesModel):
    """How negation and hedges are read: cues, look-alikes, scope breaks and the window."""

    negations: Keywords = Field(min_length=1)
    not_negations: Keywords = ()
    scope_breaks: Keywords = ()
    hedges: Keywords = ()
    cjk_window: int = Field(default=4, ge=0, le=20, description="characters before a keyword")
    english_window: int = Field(default=16, ge=0, le=60, description="characters, any script")
    # Local words read as Mandarin of the same length before anything else: {"冇得" = "没有"}.
    dialect: dict[DialectWord, DialectWord] = {}

    @field_validator("dialect")
    @classmethod
    def _same_length(cls, words: dict[str, str]) -> dict[str, str]:
        for local, mandarin in words.items():
            if len(local) != len(mandarin):
                raise ValueError(
                    f"{local!r} and {mandarin!r} must be as long as each other "
                    "(offsets in the text stay the alarm's own)"
                )
        return words


class CategoryRule(RulesModel):
    """Keywords that put an alarm in a category, and what the category needs."""

    rank: int | None = Field(default=None, ge=1, le=99)
    priority: Priority
    needs: Needs = Field(min_length=1)
    # More units at a priority: robbery at P1 needs two patrols ({P1 = {patrol = 2}}).
    needs_at: dict[Priority, Needs] = {}
    keywords: Keywords = ()
    # Words that explain a keyword away when they share its clause ("烧烤" for 烟).
    benign: Keywords = ()
    # Words that explain every keyword away wherever they stand ("演练": a drill's smoke).
    benign_anywhere: Keywords = ()


class Signal(RulesModel):
    """A fact found in the text, with what it does to any category it applies to."""

    keywords: Keywords = Field(min_length=1)
    benign: Keywords = ()
    benign_anywhere: Keywords = ()
    categories: tuple[Category, ...] = Field(default=(), description="Empty means every one.")
    priority: Priority | None = Field(default=None, description="At least this urgent.")
    # A more urgent floor in some categories: an injury in a crash or a fight is P1.
    priority_in: dict[Category, Priority] = {}
    needs: Needs = {}
    # A threat to life: P1 and medical, whatever the category (not settable per file).
    life_threat: bool = False
    # The category of an alarm no category keyword placed, when this signal is present.
    implies: Category | None = None

    def applies_to(self, category: Category) -> bool:
        """Tell whether this signal's effects apply to alarms of the category."""
        return not self.categories or category in self.categories


class SourceRule(RulesModel):
    """The category of an alarm that no keyword placed, from who or what raised it."""

    source_kind: SourceKind
    sensor_kind: DeviceKind | None = None
    category: Category
    priority: Priority | None = None
    needs: Needs = {}

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
    needs: Needs = {}


@dataclass(frozen=True, slots=True)
class Compiled:
    """A keyword list compiled once, with the words that explain it away."""

    matcher: KeywordMatcher
    benign: KeywordMatcher
    benign_anywhere: KeywordMatcher


class Rules(RulesModel):
    """A whole rules file: language, categories, signals, source rules and place rules."""

    schema_version: Literal[2]
    # Longer texts are read as their first and last halves of this many characters.
    max_text_chars: int = Field(default=20_000, ge=200, le=200_000)
    language: Language
    categories: dict[Category, CategoryRule]
    signals: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], Signal]
    source_rules: tuple[SourceRule, ...] = ()
    place_rules: tuple[PlaceRule, ...] = ()
    _ranked: tuple[tuple[Category, Compiled], ...]
    _signals: tuple[tuple[str, Signal, Compiled], ...]
    _sources: dict[tuple[SourceKind, str | None], SourceRule]
    _places: dict[tuple[PlaceType, Category], PlaceRule]
    _scope: Scope
    _dialect: Dialect

    @field_validator("categories")
    @classmethod
    def _every_category(cls, rules: dict[Category, CategoryRule]) -> dict[Category, CategoryRule]:
        missing = [c.value for c in Category if c not in rules]
        if missing:
            raise ValueError(f"every category needs a rule; missing: {', '.join(missing)}")
        ranks: dict[int, Category] = {}
        for category in KEYWORD_CATEGORIES:
            rule = rules[category]
            if rule.rank is None or not rule.keywords:
                raise ValueError(f"{category} needs a rank and at least one keyword")
            if rule.rank in ranks:
                raise ValueError(f"{ranks[rule.rank]} and {category} share rank {rule.rank}")
            ranks[rule.rank] = category
        if rules[Category.UNCLASSIFIED].keywords:
            raise ValueError("unclassified is what matched nothing: it takes no keywords")
        return rules

    @field_validator("signals")
    @classmethod
    def _life_threat_present(cls, signals: dict[str, Signal]) -> dict[str, Signal]:
        if LIFE_THREAT not in signals or not signals[LIFE_THREAT].life_threat:
            raise ValueError(f"a '{LIFE_THREAT}' signal with life_threat = true is required")
        return signals

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

    @model_validator(mode="after")
    def _needs_fit(self) -> Rules:
        for category in Category:
            worst = self.worst_needs(category)
            if len(worst) > MAX_CAPABILITIES or sum(n.count for n in worst) > MAX_UNITS:
                raise ValueError(
                    f"category {category} can need {len(worst)} capabilities and "
                    f"{sum(n.count for n in worst)} units once place rules and signals apply; "
                    f"an alarm carries at most {MAX_CAPABILITIES} and {MAX_UNITS}"
                )
        return self

    def worst_needs(self, category: Category) -> tuple[Need, ...]:
        """Return the most a category can need when every rule that can apply does."""
        rule = self.categories[category]
        groups = [needs_from_mapping(rule.needs), *map(needs_from_mapping, rule.needs_at.values())]
        groups += [
            needs_from_mapping(s.needs) for s in self.signals.values() if s.applies_to(category)
        ]
        groups += [
            needs_from_mapping(p.needs) for p in self.place_rules if category in p.categories
        ]
        groups += [needs_from_mapping(s.needs) for s in self.source_rules if s.category is category]
        return merged_needs(*groups, [Need("medical")])

    def model_post_init(self, context: object, /) -> None:
        """Compile every keyword list once, so classifying an alarm only runs the matchers."""
        ranked = sorted(
            ((c, self.categories[c]) for c in KEYWORD_CATEGORIES),
            key=lambda pair: pair[1].rank or 0,
        )
        other = self.categories[Category.OTHER]
        if other.keywords:  # keywords of `other` never outrank a real category
            ranked.append((Category.OTHER, other))
        self._ranked = tuple(
            (c, _compile(r.keywords, r.benign, r.benign_anywhere)) for c, r in ranked
        )
        self._signals = tuple(
            (name, s, _compile(s.keywords, s.benign, s.benign_anywhere))
            for name, s in self.signals.items()
        )
        self._sources = {(s.source_kind, s.sensor_kind): s for s in self.source_rules}
        self._places = {(p.place_type, c): p for p in self.place_rules for c in p.categories}
        lang = self.language
        self._scope = Scope(
            cues=KeywordMatcher.build(lang.negations),
            not_cues=KeywordMatcher.build(lang.not_negations),
            breaks=KeywordMatcher.build(lang.scope_breaks),
            hedges=KeywordMatcher.build(lang.hedges),
            cjk_window=lang.cjk_window,
            english_window=lang.english_window,
        )
        self._dialect = Dialect.build(lang.dialect)

    @property
    def ranked(self) -> tuple[tuple[Category, Compiled], ...]:
        """Return each keyword category's compiled keywords, most severe first, `other` last."""
        return self._ranked

    @property
    def compiled_signals(self) -> tuple[tuple[str, Signal, Compiled], ...]:
        """Return each signal with its compiled keywords, in file order."""
        return self._signals

    @property
    def scope(self) -> Scope:
        """Return the compiled negation cues, look-alikes, breaks and hedges."""
        return self._scope

    def read(self, text: str) -> str:
        """Return alarm text as the keywords are matched against it: folded, dialect read."""
        return self._dialect.read(fold_text(text))

    def source_rule(self, source: SourceKind, sensor: str | None) -> SourceRule | None:
        """Return the rule for this source, preferring one that names the sensor kind."""
        exact = self._sources.get((source, sensor))
        return exact if exact is not None else self._sources.get((source, None))

    def place_rule(self, place: PlaceType, category: Category) -> PlaceRule | None:
        """Return the adjustment for a category at a place type, if the file has one."""
        return self._places.get((place, category))


def _compile(
    keywords: tuple[str, ...], benign: tuple[str, ...], anywhere: tuple[str, ...]
) -> Compiled:
    plain = [k.removeprefix("~") for k in keywords]
    variants = {
        variant: keyword.removeprefix("~")
        for keyword in keywords
        if keyword.startswith("~")
        for variant in sound_alikes(keyword.removeprefix("~"))
        if variant not in plain
    }
    return Compiled(
        KeywordMatcher.build(plain, variants),
        KeywordMatcher.build(benign),
        KeywordMatcher.build(anywhere),
    )


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
