"""The one logging set-up of every service's entry point (docs/operations.md: Logs).

A service run by `dispatch run`, a container engine or systemd writes JSON lines to stderr, one
object per line, so that a log collector reads fields (`incident_id`, `alarm_id`, `level`)
rather than parsing prose; on a terminal it writes readable text instead. Fields a call passes
with `extra=` (the ids of the alarm or incident a line is about) land in both forms.

No line may carry a token: a filter on the root handler rewrites anything that looks like a
bearer token, a `token=` parameter or a JWT to `[redacted]`, in the message, its arguments and
its extra fields, whoever logged it (our code, uvicorn, aiokafka).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

# Which form the lines take: DISPATCH_LOG_FORMAT=json|text overrides the terminal test.
FORMAT_VARIABLE = "DISPATCH_LOG_FORMAT"
LEVEL_VARIABLE = "DISPATCH_LOG_LEVEL"
REDACTED = "[redacted]"

# `Bearer <anything>`, `token=<anything>` / `"token": "<anything>"`, and bare JWTs
# (three base64url parts, the first starting with `eyJ`, the encoding of `{"`).
_TOKEN_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"""(?i)(\b(?:access_|refresh_)?token["']?\s*[=:]\s*["']?)[A-Za-z0-9._~+/=-]+"""),
    re.compile(r"()\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
)
# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """Return text with everything that looks like a token replaced by `[redacted]`."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactTokens(logging.Filter):
    """Rewrite a record's message and string fields so that no token reaches a log line.

    The message is formatted once here (then its arguments dropped), because a token may come
    in through an argument as well as through the format string.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drop it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Arguments that do not fit the format: the handler reports that itself.
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class _TextWithExtras(logging.Formatter):
    """Readable text, with the `extra=` fields (incident_id=…) appended to the line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{name}={value}" for name, value in vars(record).items() if name not in _STANDARD
        ]
        return f"{line} [{' '.join(extras)}]" if extras else line


def wants_json(stream: TextIO) -> bool:
    """Return whether lines should be JSON: as the variable says, else unless on a terminal."""
    chosen = os.environ.get(FORMAT_VARIABLE, "").strip().lower()
    if chosen in {"json", "text"}:
        return chosen == "json"
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def formatter(*, json_lines: bool) -> logging.Formatter:
    """Return the formatter of either form."""
    if json_lines:
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    return _TextWithExtras(_TEXT_FORMAT)


def setup_logging(
    *, stream: TextIO | None = None, json_lines: bool | None = None, level: int | str | None = None
) -> logging.Handler:
    """Make the root logger write to stderr in the chosen form, with tokens redacted.

    Called once by each entry point; calling it again replaces the handler it installed
    rather than adding a second one. Returns the handler (tests read what it writes).
    """
    out = stream if stream is not None else sys.stderr
    use_json = wants_json(out) if json_lines is None else json_lines
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(json_lines=use_json))
    handler.addFilter(RedactTokens())
    handler.set_name("dispatch")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "dispatch":
            root.removeHandler(old)
    root.addHandler(handler)
    chosen: int | str = level if level is not None else os.environ.get(LEVEL_VARIABLE, "INFO")
    root.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    # uvicorn's loggers write through the root handler rather than their own, at the root's
    # level (a uvicorn.Config built earlier in the process may have set its own).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    return handler
