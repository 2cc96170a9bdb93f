"""Finding places by the names alarm texts use: exact lookups and names inside free text."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    """Anything known by a name and aliases, such as a `Place`."""

    @property
    def names(self) -> tuple[str, ...]: ...


N = TypeVar("N", bound=Named)


def normalize_name(text: str) -> str:
    """Fold a name or an alarm text to the form in which names are compared."""
    # NFKC turns the full-width letters, digits and brackets of Chinese input methods into
    # their ASCII forms; whitespace goes because callers write "316 国道" and "316国道" alike.
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(folded.split())


class NameIndex(Generic[N]):
    """Look things up by any of their names, exactly or inside a longer text."""

    def __init__(self, items: Iterable[N]) -> None:
        self._by_name: dict[str, N] = {}
        for item in items:
            for name in item.names:
                # First owner wins; the zone refuses clashing names before it builds an index.
                self._by_name.setdefault(normalize_name(name), item)
        self._longest_first = sorted(self._by_name.items(), key=lambda pair: -len(pair[0]))

    def __eq__(self, other: object) -> bool:
        # Zones compare their private indexes too; two indexes of the same names are equal.
        return isinstance(other, NameIndex) and self._by_name == other._by_name

    def exact(self, text: str) -> N | None:
        """Return the item one of whose names equals the text, ignoring case and spaces."""
        return self._by_name.get(normalize_name(text))

    def within(self, text: str) -> N | None:
        """Return the item whose name occurs in the text, preferring the longest name."""
        # Longest first, so "随州站广场停车点" is the parking point and not the square; among
        # names of one length the one that occurs first in the text wins. A linear scan over a
        # zone's few hundred names costs microseconds, well below an alarm's other work.
        folded = normalize_name(text)
        best: N | None = None
        best_length = best_at = 0
        for name, item in self._longest_first:
            if best is not None and len(name) < best_length:
                break
            at = folded.find(name)
            if at >= 0 and (best is None or at < best_at):
                best, best_length, best_at = item, len(name), at
        return best
