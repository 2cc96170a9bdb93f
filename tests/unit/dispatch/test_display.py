"""Text made printable for screens and stores."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatch.display import REPLACEMENT, place_label, printable

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


def test_a_place_is_labelled_with_the_zones_name_and_the_callers_own() -> None:
    assert place_label("恒通电子", "2号门") == "恒通电子 · 2号门"
    assert place_label("恒通电子", None) == "恒通电子"
    assert place_label(None, "2号门") == "2号门"
    assert place_label(None, "  ") is None
    # One containing the other says it once.
    assert place_label("恒通电子", "恒通电子 2号门") == "恒通电子 2号门"
    assert place_label("Chengdong Pharma, gate 2", "gate 2") == "Chengdong Pharma, gate 2"
    assert place_label("x" * 150, "y" * 150) == ("x" * 150 + " · " + "y" * 150)[:200]
