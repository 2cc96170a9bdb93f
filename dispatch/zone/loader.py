"""Read a zone file (TOML), naming the file and the bad line or field on every error."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dispatch.zone.model import Zone, ZoneIntegrityError, ZoneProblem

DEMO_ZONE_FILE = "suizhou_hightech.toml"
_MAX_LISTED = 20
_TOML_POSITION = re.compile(r"^(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_ANY_ARRAY_HEADER = re.compile(r"^\s*\[\[")
_ANY_HEADER = re.compile(r"^\s*\[")


class ZoneFileError(ValueError):
    """Raised when a zone file cannot be read, is not TOML, or does not describe a valid zone."""

    def __init__(
        self,
        path: Path,
        problems: Sequence[str],
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.path = path
        self.problems = tuple(problems)
        self.line = line
        self.column = column
        super().__init__(_describe(path, self.problems))


def _describe(path: Path, problems: tuple[str, ...]) -> str:
    if len(problems) == 1:
        return f"{path}: {problems[0]}"
    listed = "\n  ".join(problems[:_MAX_LISTED])
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return f"{path}: {len(problems)} problems:\n  {listed}{more}"


def default_zone_path() -> Path:
    """Return the path of the shipped demo zone (Suizhou High-tech Zone)."""
    resource = files("dispatch.zone").joinpath("data", DEMO_ZONE_FILE)
    if not isinstance(resource, Path):
        # Only a zipped install gives something else; load_zone needs a real file.
        raise FileNotFoundError(f"{DEMO_ZONE_FILE} is not a plain file in this installation")
    return resource


def load_zone(path: str | os.PathLike[str]) -> Zone:
    """Read and validate a zone file; raise ZoneFileError naming the line or field at fault."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ZoneFileError(path, [f"cannot read the zone file: {exc.strerror or exc}"]) from exc
    try:
        # utf-8-sig: editors on Windows like to start the file with a byte-order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ZoneFileError(path, [f"line {line}: not UTF-8 text"], line=line) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, text, exc) from exc
    try:
        return Zone.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, data)
        # In file order, so an operator can fix them from the top down.
        located = sorted(
            ((_line_of(text, data, problem.loc), problem) for problem in problems),
            key=lambda pair: (pair[0] is None, pair[0] or 0),
        )
        described = [
            f"line {line}: {problem}" if line else str(problem) for line, problem in located
        ]
        first_line = next((line for line, _ in located if line), None)
        raise ZoneFileError(path, described, line=first_line) from exc


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> ZoneFileError:
    # tomllib (3.11) puts the position only in its message: "Invalid value (at line 3, column 7)".
    match = _TOML_POSITION.match(str(exc))
    if match is None:
        line = text.count("\n") + 1
        reason = str(exc).removesuffix(" (at end of document)")
        return ZoneFileError(path, [f"line {line}: invalid TOML: {reason}"], line=line)
    line, column = int(match["line"]), int(match["column"])
    problem = f"line {line}, column {column}: invalid TOML: {match['reason']}"
    return ZoneFileError(path, [problem], line=line, column=column)


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[ZoneProblem]:
    problems: list[ZoneProblem] = []
    for error in exc.errors(include_url=False, include_input=False):
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ZoneIntegrityError):
            problems.extend(cause.problems)
        else:
            problems.append(
                ZoneProblem(tuple(error["loc"]), error["msg"], _entity_id(data, error["loc"]))
            )
    return problems


def _entity_id(data: dict[str, Any], loc: tuple[str | int, ...]) -> str | None:
    # Naming the entity lets an operator find it by id as well as by position.
    if len(loc) < 2 or not isinstance(loc[0], str) or not isinstance(loc[1], int):
        return None
    entries = data.get(loc[0])
    if (
        not isinstance(entries, list)
        or loc[1] >= len(entries)
        or not isinstance(entries[loc[1]], dict)
    ):
        return None
    entity_id = entries[loc[1]].get("id")
    return entity_id if isinstance(entity_id, str) and loc[2:] != ("id",) else None


def _line_of(text: str, data: dict[str, Any], loc: tuple[str | int, ...]) -> int | None:
    """Return the line of the key a problem is about, when the file's layout makes it clear."""
    lines = text.splitlines()
    if not loc or not isinstance(loc[0], str):
        return None
    name = loc[0]
    if len(loc) == 1 or not isinstance(loc[1], int):
        # A top-level key sits before the first table, or is itself a `[[name]]` table.
        first_table = next(
            (i for i, line in enumerate(lines) if _ANY_HEADER.match(line)), len(lines)
        )
        headers = _header_lines(lines, name)
        return _key_line(lines, 0, first_table, name) or (headers[0] if headers else None)
    headers = _header_lines(lines, name)
    entries = data.get(name)
    # Only `[[units]]`-style files map entry n to the n-th header; inline arrays give no line.
    if not isinstance(entries, list) or len(headers) != len(entries) or loc[1] >= len(headers):
        return None
    start = headers[loc[1]] - 1
    end = next(
        (i for i in range(start + 1, len(lines)) if _ANY_ARRAY_HEADER.match(lines[i])), len(lines)
    )
    key = next((part for part in loc[2:] if isinstance(part, str)), None)
    return (_key_line(lines, start + 1, end, key) if key else None) or headers[loc[1]]


def _header_lines(lines: list[str], name: str) -> list[int]:
    header = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]\s*(#.*)?$")
    return [i + 1 for i, line in enumerate(lines) if header.match(line)]


def _key_line(lines: list[str], start: int, end: int, key: str) -> int | None:
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    return next((i + 1 for i in range(start, end) if pattern.match(lines[i])), None)
