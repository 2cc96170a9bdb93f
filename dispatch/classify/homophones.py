"""Sound-alike typos of Chinese keywords: what a pinyin input method offers in their place.

A caller typing pinyin in a hurry picks the wrong character of the right sound: 着伙 for 着火,
就命 for 救命. For a keyword written `~着火` in the rules, every spelling with one character
replaced by a common character of the same toneless pinyin also matches. At least one
character stays, so 手上 never becomes 受伤. The readings come from pypinyin's dictionary,
which ships inside the package; nothing is fetched.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from pypinyin.pinyin_dict import pinyin_dict


def _toneless(reading: str) -> str:
    # "zháo" -> "zhao", "lǜ" -> "lu": an input method is typed without tones.
    decomposed = unicodedata.normalize("NFD", reading)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _is_common(char: str) -> bool:
    # GB2312 level 1 (3,755 characters, 0xB0A1-0xD7F9): what an input method offers first.
    try:
        code = char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return len(code) == 2 and 0xB0 <= code[0] <= 0xD7


@cache
def _by_sound() -> dict[str, frozenset[str]]:
    sounds: dict[str, set[str]] = {}
    for point, readings in pinyin_dict.items():
        char = chr(point)
        if _is_common(char):
            # A character is offered for its first (most common) reading only: 家 is jia,
            # though the dictionary lists a rare jie, so 打家 is not a spelling of 打劫.
            first = readings.split(",")[0]
            sounds.setdefault(_toneless(first), set()).add(char)
    return {sound: frozenset(chars) for sound, chars in sounds.items()}


def readings(char: str) -> frozenset[str]:
    """Return the toneless pinyin readings of one character (empty if it has none)."""
    found = pinyin_dict.get(ord(char), "")
    return frozenset(_toneless(r) for r in found.split(",") if r)


@cache
def sound_alikes(keyword: str) -> frozenset[str]:
    """Return the spellings of a keyword with one character replaced by a homophone."""
    by_sound = _by_sound()
    variants: set[str] = set()
    for n, char in enumerate(keyword):
        for sound in readings(char):
            for other in by_sound.get(sound, ()):
                if other != char:
                    variants.add(keyword[:n] + other + keyword[n + 1 :])
    return frozenset(variants)
