"""The rules file: the shipped one loads, and a bad one names what is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from dispatch.classify import (
    KeywordMatcher,
    Rules,
    RulesFileError,
    default_rules_path,
    fold_keyword,
    load_rules,
)
from dispatch.classify.text import Reading, Scope
from dispatch.events import Category


def shipped_data() -> dict[str, Any]:
    return tomllib.loads(default_rules_path().read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    lines = []

    def emit(prefix: str, node: dict[str, Any]) -> None:
        plain = {k: v for k, v in node.items() if not isinstance(v, dict | list) or k in LISTS}
        tables = {k: v for k, v in node.items() if isinstance(v, dict) and k not in LISTS}
        arrays = {k: v for k, v in node.items() if isinstance(v, list) and k in ARRAYS}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in plain.items():
            if key not in ARRAYS:
                lines.append(f"{toml_key(key)} = {toml(value)}")
        for key, value in tables.items():
            emit(f"{prefix}.{key}" if prefix else key, value)
        for key, items in arrays.items():
            for item in items:
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {toml(v)}" for k, v in item.items())

    emit("", data)
    path = tmp_path / "rules.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


LISTS = {
    "keywords",
    "benign",
    "benign_anywhere",
    "negations",
    "not_negations",
    "scope_breaks",
    "hedges",
    "categories",
}
ARRAYS = {"source_rules", "place_rules"}


def toml_key(key: str) -> str:
    return key if key.isascii() and key.replace("_", "a").isalnum() else toml(key)


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def test_shipped_rules_load_with_every_category() -> None:
    rules = load_rules(default_rules_path())
    assert set(rules.categories) == set(Category)
    assert rules.max_text_chars == 20_000


def test_a_copy_written_back_loads_the_same(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, shipped_data())) == load_rules(default_rules_path())


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d["categories"].pop("theft"), "categories", "missing: theft"),
        (
            lambda d: d["categories"]["unclassified"].update(keywords=["x"]),
            "categories",
            "takes no keywords",
        ),
        (lambda d: d["categories"]["theft"].update(rank=1), "categories", "share rank 1"),
        (lambda d: d["signals"].pop("life_threat"), "signals", "life_threat"),
        (
            lambda d: d["categories"]["fire"].update(priority="P0"),
            "categories.fire.priority",
            "'P1', 'P2', 'P3' or 'P4'",
        ),
        (
            lambda d: d["categories"]["fire"].update(needs={"Fire": 1}),
            "categories.fire.needs.Fire",
            "pattern",
        ),
        (
            lambda d: d["categories"]["fire"].update(keywords=["~fire"]),
            "categories.fire.keywords[0]",
            "only for Chinese keywords",
        ),
        (lambda d: d["categories"]["fire"].update(colour="red"), "categories.fire.colour", "Extra"),
        (
            lambda d: d["categories"]["fire"].update(needs={"fire": 11}),
            "categories.fire.needs.fire",
            "less than or equal to 10",
        ),
        (
            lambda d: d["signals"]["weapon"].update(needs={"patrol": 9}),
            "(file)",
            "at most 8 and 10",
        ),
        (
            lambda d: d["language"]["dialect"].update({"冇得": "没"}),
            "language.dialect",
            "as long as each other",
        ),
        (
            lambda d: d["categories"]["theft"].update(keywords=["~被人…走"]),
            "categories.theft.keywords[0]",
            "a gap",
        ),
    ],
)
def test_a_bad_file_names_the_field(tmp_path: Path, change: Any, field: str, message: str) -> None:
    data = shipped_data()
    change(data)
    with pytest.raises(RulesFileError, match=message) as caught:
        load_rules(write(tmp_path, data))
    assert (caught.value.field or "(file)").startswith(field)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("schema_version = 2\n\n[categories\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match="line 3") as caught:
        load_rules(path)
    assert caught.value.line == 3


def test_not_utf8_and_missing_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"schema_version = 2\n# \xff\n")
    with pytest.raises(RulesFileError, match="line 2: not UTF-8"):
        load_rules(path)
    with pytest.raises(RulesFileError, match="cannot read"):
        load_rules(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("FIRE", "fire"),
        ("\uff26\uff29\uff32\uff25", "fire"),
        ("on   fire", "on fire"),
        ("~着火", "~着火"),
    ],
)
def test_fold_keyword(raw: str, folded: str) -> None:
    assert fold_keyword(raw) == folded


@pytest.mark.parametrize(
    "raw", ["", "   ", "*", "fi*re", "着*", "~fire", "~被人…走", "…走", "被人…", "fire…out"]
)
def test_fold_keyword_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match=r"keyword|'~'|gap"):
        fold_keyword(raw)


@pytest.mark.parametrize(
    ("keywords", "text", "found"),
    [
        (("fire",), "a fire!", ["fire"]),
        (("fire",), "fireplace", []),
        (("fire",), "有人fire了", ["fire"]),
        (("injur*",), "two injured", ["injur*"]),
        (("着火",), "仓库着火了", ["着火"]),
        (("🔥",), "🔥🔥", ["🔥", "🔥"]),
        # A gap: anything of one clause, at most six characters, between the parts.
        (("被人…走",), "车被人骑走了", ["被人...走"]),
        (("被人…走",), "油被人偷偷抽走了", ["被人...走"]),
        (("被人…走",), "被人走", ["被人...走"]),
        (("被人…走",), "被人看见了,走了", []),  # another clause
        (("被人…走",), "被人在半夜三更的时候走", []),  # more than six between
        (("电梯…掉", "电梯"), "电梯掉下去一截", ["电梯...掉"]),
    ],
)
def test_keyword_matcher(keywords: tuple[str, ...], text: str, found: list[str]) -> None:
    folded = [fold_keyword(k) for k in keywords]
    assert [h.keyword for h in KeywordMatcher.build(folded).hits(text)] == found


def _reading(text: str) -> Reading:
    def build(*words: str) -> KeywordMatcher:
        return KeywordMatcher.build(words)

    scope = Scope(build("不是", "没", "no"), build("是不是"), build("就"), build("好像"), 4, 16)
    return Reading(text, scope)


@pytest.mark.parametrize(
    ("text", "keyword", "negated"),
    [
        ("不是着火", "着火", True),
        ("没人受伤", "受伤", True),
        ("没人受伤,有人流血", "流血", False),  # another clause
        ("没过多久就着火了", "着火", False),  # a scope break
        ("没看到有什么人在那边着火", "着火", False),  # beyond the window
        ("是不是着火了", "着火", False),  # a question, not a negation
        ("no one is hurt", "hurt", True),
    ],
)
def test_negation_scope(text: str, keyword: str, negated: bool) -> None:
    reading = _reading(text)
    (hit,) = KeywordMatcher.build((keyword,)).hits(text)
    assert (reading.negation_of(hit) is not None) == negated


def test_dialect_is_read_as_mandarin_of_the_same_length() -> None:
    rules = load_rules(default_rules_path())
    text = "喊他冇得反应,小伢在哭,不晓得么样搞"
    read = rules.read(text)
    assert read == "喊他没有反应,小孩在哭,不知道怎样搞"
    assert len(read) == len(text)  # offsets of evidence are the alarm's own


def test_rules_are_frozen() -> None:
    rules = load_rules(default_rules_path())
    with pytest.raises(ValueError, match="frozen"):
        rules.max_text_chars = 5  # type: ignore[misc]
    assert isinstance(rules, Rules)
