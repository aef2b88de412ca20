"""An IMF-fixdate Last-Modified (what servers send) is read without `datetime` (issue 16,
start-up: ~4 M instructions of an 8 MiB download): the arithmetic agrees with `datetime` on
every date it reads, valid or not."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from objget.engine._sync import remote_seconds

from ..fresh import fresh

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def by_datetime(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> int | None:
    try:
        return int(datetime(year, month, day, hh, mm, ss, tzinfo=timezone.utc).timestamp())
    except (ValueError, OverflowError):
        return None


@settings(max_examples=2000, deadline=None)
@given(
    st.integers(0, 9999), st.integers(1, 12), st.integers(0, 99), st.integers(0, 99),
    st.integers(0, 99), st.integers(0, 99),
)  # fmt: skip
def test_a_fixdate_reads_as_datetime_reads_it(year, month, day, hh, mm, ss):
    text = f"Sun, {day:02d} {MONTHS[month - 1]} {year:04d} {hh:02d}:{mm:02d}:{ss:02d} GMT"
    assert remote_seconds(text) == by_datetime(year, month, day, hh, mm, ss), text


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_every_valid_date_reads_exactly(when):
    when = when.replace(microsecond=0, tzinfo=timezone.utc)
    text = when.strftime("%a, %d ") + MONTHS[when.month - 1] + f" {when.year:04d}"
    text += when.strftime(" %H:%M:%S GMT")
    assert remote_seconds(text) == int(when.timestamp()), text


def test_edges():
    assert remote_seconds("Thu, 01 Jan 1970 00:00:00 GMT") == 0
    assert remote_seconds("Tue, 29 Feb 2000 12:00:00 GMT") == 951825600
    assert remote_seconds("Thu, 29 Feb 1900 12:00:00 GMT") is None  # 1900 was no leap year
    assert remote_seconds("Mon, 01 Foo 2000 00:00:00 GMT") is None
    assert remote_seconds("Fri, 31 Dec 9999 23:59:59 GMT") == 253402300799


def test_reading_a_fixdate_loads_no_datetime():
    code = (
        "import sys\nfrom objget.engine._sync import remote_seconds\n"
        "assert remote_seconds('Sun, 06 Nov 1994 08:49:37 GMT') == 784111777\n"
        "assert 'datetime' not in sys.modules, 'datetime'\n"
    )
    fresh(code)
