"""Waiting before trying again: doubling backoff and the server's own Retry-After."""

from __future__ import annotations

from collections.abc import Mapping


class Backoff:
    """Delays that double from first_s up to most_s; reset once something works."""

    def __init__(self, first_s: float = 0.2, most_s: float = 5.0) -> None:
        self.first_s = first_s
        self.most_s = most_s
        self._next = first_s

    def next(self) -> float:
        """Return the next delay."""
        delay, self._next = self._next, min(self.most_s, self._next * 2)
        return delay

    def reset(self) -> None:
        """Start again from the first delay."""
        self._next = self.first_s


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Return the whole seconds of a Retry-After header, or None when there is none."""
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None
