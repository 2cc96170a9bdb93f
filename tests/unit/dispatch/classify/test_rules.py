"""Tests for the rules file: its schema, its loader's errors and the shipped file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.classify import (
    CategoryRules,
    KeywordMatcher,
    Rules,
    RulesFileError,
    default_rules_path,
    fold_keyword,
    load_rules,
)
from dispatch.events.alarms import Category, PlaceType, SensorKind, SourceKind

CATEGORY_TABLES = "".join(
    f'[categories.{c}]\nrank = {i}\npriority = "P3"\ncapabilities = ["patrol"]\n'
    f'keywords = ["kw{i}"]\n\n'
    for i, c in enumerate((c for c in Category if c is not Category.OTHER), start=1)
)
MINIMAL = (
    f'schema_version = 1\n\n{CATEGORY_TABLES}[categories.other]\npriority = "P3"\n'
    'capabilities = ["patrol"]\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> RulesFileError:
    with pytest.raises(RulesFileError) as caught:
        load_rules(write(tmp_path, text))
    return caught.value


def test_shipped_rules_load() -> None:
    rules = load_rules(default_rules_path())
    assert rules.schema_version == 1
    assert rules.source_rule(SourceKind.SENSOR, SensorKind.ANTI_CLIMB) is not None


def test_category_rules_have_one_field_per_category() -> None:
    assert set(CategoryRules.model_fields) == {c.value for c in Category}


def test_minimal_file_loads_from_str_path(tmp_path: Path) -> None:
    rules = load_rules(str(write(tmp_path, MINIMAL)))
    assert next(c for c, _ in rules.ranked_matchers) is Category.FIRE
    assert rules.place_rule(PlaceType.SCHOOL, Category.FIGHT) is None


def test_keywords_are_folded_to_lower_case_nfkc(tmp_path: Path) -> None:
    rules = load_rules(
        write(tmp_path, MINIMAL.replace('"kw1"', '"  \uff26\uff29\uff32\uff25 ", "Gas  LEAK"'))
    )
    assert rules.categories.fire.keywords == ("fire", "gas leak")


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Break-In", "break-in"),
        ("抢劫", "抢劫"),
        ("Injur*", "injur*"),
        ("\uff26\uff49\uff52\uff45", "fire"),
    ],
)
def test_fold_keyword(raw: str, folded: str) -> None:
    assert fold_keyword(raw) == folded


@pytest.mark.parametrize("raw", ["", "   ", "*", "in*jur", "起火*", "*fire"])
def test_fold_keyword_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match=r"blank|only at the end"):
        fold_keyword(raw)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL.replace('keywords = ["kw2"]', 'keywords = ["kw2"'))
    bad_line = MINIMAL.splitlines().index('keywords = ["kw2"]') + 1
    assert error.line is not None
    assert bad_line <= error.line <= bad_line + 2  # tomllib reports where it gave up
    assert f"line {error.line}" in str(error)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"schema_version = 1\n# \xff\n")
    with pytest.raises(RulesFileError, match="line 2: not UTF-8"):
        load_rules(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read"):
        load_rules(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("schema_version = 1", "schema_version = 2", "schema_version", "Input should be 1"),
        ("[categories.theft]", "[categories.thefts]", "categories.theft", "Field required"),
        ('priority = "P3"', 'priority = "P5"', "categories.fire.priority", "'P1', 'P2'"),
        ('["patrol"]', '["Patrol"]', "categories.fire.capabilities[0]", "pattern"),
        ('["kw2"]', "[]", "categories.medical.keywords", "at least 1"),
        ('["kw2"]', '["kw2", " "]', "categories.medical.keywords[1]", "blank"),
        ('["kw2"]', '["起*火"]', "categories.medical.keywords[0]", "only at the end"),
        ("rank = 4", "rank = 3", "categories", "share rank 3"),
        ("rank = 4", "rank = 0", "categories.theft.rank", "greater than or equal to 1"),
        ("rank = 4", 'rank = 4\ncolour = "red"', "categories.theft.colour", "Extra inputs"),
        (
            '[categories.other]\npriority = "P3"',
            "[categories.other]",
            "categories.other.priority",
            "",
        ),
    ],
)
def test_schema_error_names_the_dotted_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    assert old in MINIMAL
    error = load_error(tmp_path, MINIMAL.replace(old, new, 1))
    assert error.field == field
    assert f"{field}: " in str(error)
    assert message in str(error)


SOURCE = '[[source_rules]]\nsource_kind = "sensor"\nsensor_kind = "lock"\ncategory = "intrusion"\n'
PLACE = '[[place_rules]]\nplace_type = "school"\ncategories = ["fight", "theft"]\nraise_by = 1\n'
MODIFIER = '[[modifiers]]\nname = "weapon"\nkeywords = ["knife"]\npriority = "P1"\n'


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        (SOURCE + SOURCE, "source_rules", "entry [1] repeats an earlier rule for sensor/lock"),
        (
            SOURCE.replace('"sensor"', '"desk"'),
            "source_rules[0]",
            "sensor_kind applies only when source_kind is 'sensor'",
        ),
        (PLACE + PLACE.replace('"fight", ', ""), "place_rules", "[1] repeats an earlier rule"),
        (PLACE.replace("raise_by = 1", "raise_by = 4"), "place_rules[0].raise_by", "less than"),
        (PLACE.replace('"theft"', '"arson"'), "place_rules[0].categories[1]", "'fire'"),
        (PLACE.replace('"school"', '"mall"'), "place_rules[0].place_type", "'road'"),
        (MODIFIER + MODIFIER, "modifiers", "entry [1] repeats an earlier rule for weapon"),
        (MODIFIER.replace('["knife"]', "[]"), "modifiers[0].keywords", "at least 1"),
        (MODIFIER.replace("weapon", "Weapon"), "modifiers[0].name", "pattern"),
    ],
)
def test_rule_list_errors_name_the_field(
    tmp_path: Path, extra: str, field: str, message: str
) -> None:
    error = load_error(tmp_path, MINIMAL + "\n" + extra)
    assert error.field == field
    assert message in str(error)


def test_too_many_capabilities_for_an_alarm(tmp_path: Path) -> None:
    many = ", ".join(f'"cap{i}"' for i in range(8))
    extra = MODIFIER.replace('priority = "P1"', f"add_capabilities = [{many}]")
    error = load_error(tmp_path, MINIMAL + "\n" + extra)
    assert "can need 9 capabilities" in str(error)


def test_rules_are_frozen() -> None:
    rules = load_rules(default_rules_path())
    with pytest.raises(ValueError, match="frozen"):
        rules.categories.fire.rank = 5  # type: ignore[misc]  # the point: it must refuse


@pytest.mark.parametrize(
    ("keywords", "text", "found"),
    [
        (("起火",), "仓库起火了", ("起火",)),
        (("fire",), "a fire, fires and a fireplace", ("fire",)),
        (("fire",), "有人fire了", ("fire",)),
        (("fire",), "firefire 3fire fire3", ()),
        (("injur*",), "two injured, one injury", ("injur*",)),
        (("gas leak",), "a gas\n  leak here", ("gas leak",)),
        (("break-in",), "a break-in at no. 5", ("break-in",)),
        (("rob", "robber*"), "robbed? no, a robbery by a robot", ("robber*",)),
        (("lost", "lost child"), "lost child, lost keys", ("lost child", "lost")),
        ((), "anything", ()),
    ],
)
def test_keyword_matcher(keywords: tuple[str, ...], text: str, found: tuple[str, ...]) -> None:
    assert KeywordMatcher.build(keywords).hits(text) == found


def test_rules_model_validates_without_a_file() -> None:
    rules = load_rules(default_rules_path())
    again = Rules.model_validate(rules.model_dump())
    assert again.ranked_matchers == rules.ranked_matchers
