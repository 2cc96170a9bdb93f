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


def place_label(zone_name: str | None, given: str | None, *, limit: int = 200) -> str | None:
    """Return the zone place's name with the caller's own name for the spot, e.g. "恒通 · 2号门".

    Either alone when the other is missing or already contains it; None when neither is known.
    """
    names = [printable(name).strip() for name in (zone_name, given) if name and name.strip()]
    if len(names) == 2:
        zone, spot = names
        if spot.casefold() in zone.casefold():
            names = [zone]
        elif zone.casefold() in spot.casefold():
            names = [spot]
    return " · ".join(names)[:limit] or None
