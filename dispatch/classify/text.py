"""Reading alarm text: folding, clauses, keyword matching and the scope of a negation.

Chinese has no spaces, so Chinese keywords (and emoji) match as substrings; English keywords
match whole words. A hit is negated when a negation cue ("不是", "没", "no", "not") stands a
few characters before it in the same clause, with no scope break ("但是", "but") in between.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Scripts written without spaces (CJK ideographs, kana, hangul) and pictographs (emoji):
# their keywords match as plain substrings, there being no word boundary to look for.
_UNSPACED_CHARS = (
    "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
    "\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
)
_UNSPACED = re.compile(f"[{_UNSPACED_CHARS}]")
# Word characters for English boundaries. Deliberately not `\b`: Python counts a CJK ideograph
# as a word character, so `\b` would refuse "fire" in "有人fire".
_WORD = "0-9a-z\u00c0-\u024f"
# Where one clause ends: punctuation, a line break, or spaces next to Chinese (Chinese callers
# type a space where they would pause: "不是打架 就是两个人在吵").
_PUNCTUATION = (
    ",.;:!?\uff0c\u3002\uff1b\uff1a\uff01\uff1f\u3001\u2026\n\r\t()\uff08\uff09\u3010\u3011\\[\\]"
)
_CLAUSE_BREAK = re.compile(
    rf"[{_PUNCTUATION}]+|(?<=[{_UNSPACED_CHARS}])\s+|\s+(?=[{_UNSPACED_CHARS}])"
)
# A gap in a Chinese keyword: "被人…走" is 被人 and 走 with at most GAP_CHARS characters of one
# clause between them (被人拿走, 被人偷偷抽走, 被人半夜搬走). "…" folds (NFKC) to "...".
GAP = "..."
GAP_CHARS = 6
_GAP_FILL = rf"[^{_PUNCTUATION}\s]{{0,{GAP_CHARS}}}?"
# Joiners and variation selectors inside emoji sequences carry no meaning for matching.
_INVISIBLE = dict.fromkeys(map(ord, "\ufe0e\ufe0f\u200d\u200b\u200c\u2060"), None)


def fold_text(text: str) -> str:
    """Fold text the way keywords are folded: NFKC (full-width to ASCII), lower case, no joiners."""
    return unicodedata.normalize("NFKC", text).lower().translate(_INVISIBLE)


def fold_keyword(raw: str) -> str:
    """Fold a keyword like text and check it, raising `ValueError` for a blank or bad `*`."""
    keyword = " ".join(fold_text(raw).split())
    body = keyword.removeprefix("~")
    if not body or body == "*":
        raise ValueError("keyword must not be blank")
    if "*" in body[:-1] or (body.endswith("*") and _UNSPACED.search(body)):
        raise ValueError("'*' is allowed only at the end of an English keyword")
    if keyword.startswith("~") and not is_unspaced(body):
        raise ValueError("'~' (also match sound-alike typos) is only for Chinese keywords")
    if GAP in body:
        parts = body.split(GAP)
        if keyword.startswith("~") or not all(p and _UNSPACED.search(p) for p in parts):
            raise ValueError(
                "'…' (a gap) must stand between two Chinese parts of a keyword without '~'"
            )
    return keyword


def is_unspaced(keyword: str) -> bool:
    """Tell whether a keyword matches as a substring (it has Chinese characters or emoji)."""
    return _UNSPACED.search(keyword) is not None


def _pattern(keyword: str) -> str:
    if GAP in keyword:
        return _GAP_FILL.join(map(re.escape, keyword.split(GAP)))
    if is_unspaced(keyword):
        return re.escape(keyword)
    first, *others = keyword.removesuffix("*").split()
    # The boundary check sits after the first character, not before it, so every alternative
    # starts with a literal and `re` can skip positions that cannot start a keyword.
    body = re.escape(first[0]) + f"(?<![{_WORD}].)" + re.escape(first[1:])
    body += "".join(r"\s+" + re.escape(word) for word in others)
    return body + (f"[{_WORD}]*" if keyword.endswith("*") else f"(?![{_WORD}])")


@dataclass(frozen=True, slots=True)
class Hit:
    """One keyword found in folded text: which keyword, and where."""

    keyword: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class KeywordMatcher:
    """One compiled alternation over keywords, and the way back from a match to its keyword."""

    pattern: re.Pattern[str] | None
    exact: dict[str, str]
    stems: tuple[tuple[str, str], ...]
    gaps: tuple[tuple[re.Pattern[str], str], ...] = ()

    @classmethod
    def build(
        cls, keywords: Iterable[str], variants: dict[str, str] | None = None
    ) -> KeywordMatcher:
        """Compile keywords and sound-alike variants (mapped to their keyword), longest first."""
        spelled = {k: k for k in keywords} | (variants or {})
        ordered = sorted(spelled, key=len, reverse=True)
        # No capturing groups: a group in front of each alternative defeats the literal prefix
        # scan and made matching about 20x slower; the keyword is recovered from the text instead.
        pattern = re.compile("|".join(map(_pattern, ordered))) if ordered else None
        stems = tuple((k.removesuffix("*"), k) for k in ordered if k.endswith("*"))
        exact = {form: keyword for form, keyword in spelled.items() if not form.endswith("*")}
        gaps = tuple((re.compile(_pattern(k)), k) for k in ordered if GAP in k)
        return cls(pattern, exact, stems, gaps)

    def hits(self, folded: str) -> list[Hit]:
        """Return every keyword occurrence in already folded text, in order."""
        if self.pattern is None:
            return []
        return [
            Hit(self._keyword_of(match.group()), match.start(), match.end())
            for match in self.pattern.finditer(folded)
        ]

    def _keyword_of(self, matched: str) -> str:
        matched = " ".join(matched.split())
        if matched in self.exact:
            return self.exact[matched]
        gapped = next((k for p, k in self.gaps if p.fullmatch(matched)), None)
        if gapped is not None:
            return gapped
        return next((k for stem, k in self.stems if matched.startswith(stem)), matched)


@dataclass(frozen=True, slots=True)
class Dialect:
    """Local words read as their Mandarin equals of the same length (冇得 as 没有, 伢 as 孩).

    Same length, so an offset in the read text is an offset in the alarm: every keyword, cue
    and sound-alike then serves the dialect too, without a dialect copy of each list.
    """

    pattern: re.Pattern[str] | None
    mandarin: dict[str, str]

    @classmethod
    def build(cls, words: dict[str, str]) -> Dialect:
        """Compile local words (already folded) to replace, longest first."""
        ordered = sorted(words, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        return cls(pattern, dict(words))

    def read(self, folded: str) -> str:
        """Return folded text with each local word replaced by its Mandarin equal."""
        if self.pattern is None:
            return folded
        return self.pattern.sub(lambda m: self.mandarin[m.group()], folded)


@dataclass(frozen=True, slots=True)
class Scope:
    """How far a negation reaches: cues, phrases that only look like cues, and what ends it."""

    cues: KeywordMatcher
    not_cues: KeywordMatcher
    breaks: KeywordMatcher
    hedges: KeywordMatcher
    cjk_window: int
    english_window: int


class Reading:
    """One folded alarm text with its clauses, negation cues and hedges found once."""

    def __init__(self, folded: str, scope: Scope) -> None:
        self.text = folded
        self.scope = scope
        spans = [(m.start(), m.end()) for m in _CLAUSE_BREAK.finditer(folded)]
        self._clause_starts = [0] + [end for _, end in spans]
        self._clause_ends = [start for start, _ in spans] + [len(folded)]
        masked = [(h.start, h.end) for h in scope.not_cues.hits(folded)]
        self._cues = [
            cue
            for cue in scope.cues.hits(folded)
            if not any(s <= cue.start < e or s < cue.end <= e for s, e in masked)
        ]
        self._breaks = [h.start for h in scope.breaks.hits(folded)]
        self._hedges = scope.hedges.hits(folded)

    def clause_of(self, position: int) -> tuple[int, int]:
        """Return the (start, end) of the clause holding a position."""
        n = bisect.bisect_right(self._clause_starts, position) - 1
        return self._clause_starts[n], self._clause_ends[n]

    def negation_of(self, hit: Hit) -> Hit | None:
        """Return the cue that negates a hit, or None when the hit stands."""
        clause_start, _ = self.clause_of(hit.start)
        window = self.scope.cjk_window if is_unspaced(hit.keyword) else self.scope.english_window
        for cue in reversed(self._cues):
            if cue.end > hit.start:
                continue
            if cue.start < clause_start or hit.start - cue.end > window:
                return None
            # "没过多久就着火了": a break between the cue and the keyword ends the negation.
            if any(cue.end <= b < hit.start for b in self._breaks):
                return None
            return cue
        return None

    def hedged(self, hit: Hit) -> bool:
        """Tell whether the hit's clause hedges ("好像", "maybe"); a hedge never removes a hit."""
        start, end = self.clause_of(hit.start)
        return any(start <= h.start < end for h in self._hedges)

    def in_clause(self, hit: Hit, matcher: KeywordMatcher) -> Hit | None:
        """Return a hit of `matcher` in the same clause as `hit`, if any."""
        start, end = self.clause_of(hit.start)
        return next((h for h in matcher.hits(self.text[start:end])), None)
