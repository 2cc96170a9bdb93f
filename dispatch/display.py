"""Text that people read on screens and that every store can keep.

A raw alarm may come from any producer on Kafka, not only from intake (which refuses control
characters): what the stages copy from it onto jobs and boards is made printable here, so a
NUL that PostgreSQL cannot store in text never travels further than `alarms.raw`.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
# C0 controls but tab, line feed and carriage return; DEL; the C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Return text with each control character replaced by U+FFFD (tab and newlines stay)."""
    # Replaced, not dropped: the length stays (a text of NULs does not become empty) and a
    # reader sees that something was there.
    return _CONTROL.sub(REPLACEMENT, text)
