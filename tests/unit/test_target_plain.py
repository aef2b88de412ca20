"""The request target's fast path (`_target._plain`, `_target._dot_segment`) decides without a
regex when there is no '%' or no "/." (issue 16, start-up: three patterns compiled at import
were ~2 M instructions of an 8 MiB download); it agrees with the patterns on every target."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends._target import _PLAIN, _dot_segment, _plain

from ..fresh import fresh

DOT = r"(?:^|/)\.\.?(?:/|$)"  # what _target matched before
PIECES = st.sampled_from(["/", ".", "..", "?", "%", "%2F", "%2f", "%G1", "a", "Z", "~", " ", "é",
                          "#", "[", ":", "@", "=", "&"])  # fmt: skip
TARGETS = st.lists(st.one_of(PIECES, st.characters()), max_size=12).map("".join)


@settings(max_examples=3000, deadline=None)
@given(TARGETS)
def test_plain_agrees_with_the_pattern(text):
    for whole in (text, "/" + text):
        assert _plain(whole) == (re.fullmatch(_PLAIN, whole) is not None), whole


@settings(max_examples=3000, deadline=None)
@given(TARGETS)
def test_dot_segment_agrees_with_the_pattern(text):
    path = "/" + text.split("?")[0]
    assert _dot_segment(path) == (re.search(DOT, path) is not None), path


def test_a_plain_target_compiles_no_pattern():
    code = (
        "import re\nfrom objget.backends._target import target\n"
        "assert target('http://h/a/b.bin?x=1', as_written=False) == '/a/b.bin?x=1'\n"
        "found = [k for k in re._cache if '%' in str(k[1]) or '\\\\.\\\\.?' in str(k[1])]\n"
        "assert not found, found\n"
    )
    fresh(code)
