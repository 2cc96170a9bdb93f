"""Finding places by the names alarm texts use: exact lookups and names inside free text."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

import ahocorasick


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
        # One pass over a text finds every name in it, however many names the zone has.
        self._automaton = ahocorasick.Automaton()
        for name in self._by_name:
            if name:
                self._automaton.add_word(name, name)
        if self._by_name:
            self._automaton.make_automaton()

    def __eq__(self, other: object) -> bool:
        # Zones compare their private indexes too; two indexes of the same names are equal.
        return isinstance(other, NameIndex) and self._by_name == other._by_name

    def exact(self, text: str) -> N | None:
        """Return the item one of whose names equals the text, ignoring case and spaces."""
        return self._by_name.get(normalize_name(text))

    def within(self, text: str) -> N | None:
        """Return the item whose name occurs in the text, preferring the longest name."""
        # Longest first, so "随州站广场停车点" is the parking point and not the square; among
        # names of one length the one that occurs first in the text wins.
        if not self._by_name:
            return None
        folded = normalize_name(text)
        best: tuple[int, int] | None = None  # (-length, start) of the best name so far
        best_name = ""
        for end, name in self._automaton.iter(folded):
            rank = (-len(name), end - len(name) + 1)
            if best is None or rank < best:
                best, best_name = rank, name
        return self._by_name[best_name] if best is not None else None
