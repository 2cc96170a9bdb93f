"""Records a consumer must survive: arbitrary bytes, and each topic's documented example with
fields replaced by the worst values JSON can carry (every control character, every Unicode
plane, lone surrogates, extreme and non-finite numbers, dates at the ends of the calendar).

Shared by the property tests of every consumer (tests/unit/test_poison_records.py and the
database-backed ones in tests/integration/test_poison_records.py).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.unit.dispatch.test_events import example

CONTROL_CHARACTERS = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)])
# One character of each plane's edge and the separators JSON and terminals trip on.
EDGES = "\u2028\u2029\ufeff\ufffe\uffff\U0001f525\U0001f9d1\U000e0001\U000fffff\U0010ffff"

nasty_text = st.one_of(
    # Every Unicode category, surrogates ("Cs") and unassigned code points ("Cn") included.
    st.text(st.characters(categories=["L", "M", "N", "P", "S", "Z", "C"]), max_size=40),
    st.just(CONTROL_CHARACTERS),
    st.just(EDGES),
    st.just("\ud800 lone surrogate \udfff"),
    st.just("a" * 5000),
    st.just(""),
)
nasty_number = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324]),
)
nasty_date = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "2999-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "2026-11-26T03:04:05",  # no zone
            "2026-02-30T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "2026-11-26T03:04:05+14:00",
            "2026-11-26T03:04:05-12:00",
        ]
    ),
    nasty_text,
)
nasty_value: st.SearchStrategy[Any] = st.one_of(
    nasty_text,
    nasty_number,
    nasty_date,
    st.none(),
    st.booleans(),
    st.lists(nasty_text, max_size=3),
    st.dictionaries(nasty_text, nasty_text, max_size=3),
)


def _dumps(document: Any) -> bytes:
    # NaN and Infinity as JSON's forbidden tokens; lone surrogates escaped, as JSON allows.
    return json.dumps(document, allow_nan=True).encode()


@st.composite
def spoiled_example(draw: st.DrawFn, topic: str) -> bytes:
    """Return the topic's documented example with some fields given nasty values or removed,
    and maybe an unknown one added."""
    document = example(topic)
    for name in draw(st.lists(st.sampled_from(sorted(document)), min_size=1, max_size=4)):
        if draw(st.booleans()):
            document[name] = draw(nasty_value)
        else:
            document.pop(name, None)
    if draw(st.booleans()):
        document[draw(nasty_text)] = draw(nasty_value)
    return _dumps(document)


def nasty_record(topic: str) -> st.SearchStrategy[bytes]:
    """Return what may arrive on a topic from a careless or hostile producer."""
    return st.one_of(
        st.binary(max_size=300),
        spoiled_example(topic),
        st.builds(_dumps, nasty_value),
        st.just(b""),
        st.just(b"\x00dispatch-bundle/1\n\x00\x00\x00\x05ab"),  # a bundle cut short
    )
