"""Text made printable for screens and stores."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatch.display import REPLACEMENT, printable

KEPT = {"\t", "\n", "\r"}


def is_control(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 and char not in KEPT) or 0x7F <= code <= 0x9F


@given(st.text())
def test_every_control_character_is_replaced_and_nothing_else_changes(text: str) -> None:
    shown = printable(text)
    assert len(shown) == len(text)
    for before, after in zip(text, shown, strict=True):
        assert after == (REPLACEMENT if is_control(before) else before)


def test_a_nul_becomes_a_visible_mark_and_chinese_stays() -> None:
    assert printable("救命\x00 help\tnow\n") == "救命\ufffd help\tnow\n"
