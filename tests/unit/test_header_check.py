"""The request head's header check (`_transport._valid`) takes a regex-free path for plain
names and values (issue 16, start-up: two patterns compiled at import were ~1.5 M
instructions of an 8 MiB download): it agrees with the patterns on every name and value."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends._transport import _BAD_NAME, _BAD_VALUE, _valid

from ..fresh import fresh

TRICKY = st.sampled_from(["-", ":", " ", "\t", "\n", "\r", "\x0b", "\x85", "\u2028", "é", "A"])
TEXT = st.lists(st.one_of(TRICKY, st.characters()), max_size=12).map("".join)


def by_patterns(name: str, value: str) -> bool:
    return bool(name) and not re.search(_BAD_NAME, name) and not re.search(_BAD_VALUE, value)


@settings(max_examples=3000, deadline=None)
@given(TEXT, TEXT)
def test_the_check_agrees_with_the_patterns(name, value):
    assert _valid(name, value) == by_patterns(name, value)


def test_examples():
    assert _valid("Range", "bytes=0-99") and _valid("x-amz-date", "20240101T000000Z")
    assert _valid("X-Folded", "a\r\n b")  # obs-fold
    assert not _valid("", "v") and not _valid("Bad Name", "v") and not _valid("a:b", "v")
    assert not _valid("X", "a\r\nInjected: 1") and not _valid("X", "a\nb")


def test_a_plain_head_compiles_no_pattern():
    """Neither at import nor for a head of plain headers (on main at 9177d15 both patterns
    were compiled at import)."""

    code = (
        "import re\nfrom objget.backends._transport import _request_head\n"
        "head = _request_head('GET', '/k', 'h', {'Range': 'bytes=0-9'}, 'objget', None)\n"
        "assert head.startswith(b'GET /k HTTP/1.1'), head\n"
        "found = [k for k in re._cache if k[1] in (r'[:\\s]', r'\\n(?![ \\t])|\\r(?![ \\t\\n])')]\n"
        "assert not found, found\n"
    )
    fresh(code)
