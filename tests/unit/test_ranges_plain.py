"""A `Content-Range` as servers write it (`bytes a-b/total`) is read without the pattern
(issue 16, start-up: compiling it at import was ~1 M instructions of an 8 MiB download's run);
any other spelling goes to the pattern, and the two readings agree on every value."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from objget._ranges import _plain_parts, parse_content_range

from .test_import_cost import _child

PATTERN = r"^\s*bytes\s+(\d{1,19})-(\d{1,19})/(\d{1,19}|\*)\s*$"  # what _ranges compiled
PIECES = st.sampled_from(["bytes", "bytes ", " ", "-", "/", "*", "0", "9", "12", "1" * 19,
                          "1" * 20, "\t", "\n", "٣", "+", "Bytes", "x"])  # fmt: skip
MAX = 2**63 - 1


def _by_the_pattern(value: str) -> tuple[int, int, int | None] | None:
    """parse_content_range as it was: (start, stop, total) or None."""
    m = re.match(PATTERN, value, re.ASCII)
    if m is None:
        return None
    first, last = int(m.group(1)), int(m.group(2))
    total = None if m.group(3) == "*" else int(m.group(3))
    if last < first or last >= MAX or (total is not None and (total > MAX or last >= total)):
        return None
    return first, last + 1, total


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=9).map("".join))
def test_content_range_reads_as_the_pattern_did(text):
    for value in (text, "bytes " + text, "bytes 0-" + text, "bytes 5-9/" + text):
        plain = _plain_parts(value)
        if plain is not None:
            m = re.match(PATTERN, value, re.ASCII)
            assert m is not None and plain == m.groups(), value
        got = parse_content_range(value)
        shown = None if got is None else (got.range.start, got.range.stop, got.total)
        assert shown == _by_the_pattern(value), value


def test_reading_a_plain_content_range_compiles_no_pattern():
    code = (
        "from objget._ranges import parse_content_range\n"
        "import re\n"
        "found = parse_content_range('bytes 0-8388607/8388608')\n"
        "assert (found.range.start, found.range.stop, found.total) == (0, 8388608, 8388608)\n"
    )
    assert _child(code, "[str(k[1]) for k in re._cache if 'bytes' in str(k[1])]") == []
