import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget._models import ByteRange
from objget.engine._plan import (
    Span,
    add_span,
    auto_part_size,
    cut_parts,
    cut_point,
    done_bytes,
    missing_ranges,
    steal_point,
)

MiB = 1024 * 1024


@st.composite
def spans_and_size(draw):
    size = draw(st.integers(0, 10_000))
    cuts = sorted(set(draw(st.lists(st.integers(0, size), max_size=20))))
    spans = []
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        if a < b:
            spans.append(Span(a, b))
    # merge touching spans the way the ledger would
    merged = []
    for s in spans:
        merged = add_span(merged, s, None)
    return merged, size


def _bytes(ranges):
    out = set()
    for r in ranges:
        out.update(range(r.start, r.stop))
    return out


@given(spans_and_size())
def test_missing_is_exact_complement(data):
    spans, size = data
    missing = missing_ranges(spans, size)
    done = _bytes(s.range for s in spans)
    miss = _bytes(missing)
    assert done.isdisjoint(miss)
    assert done | miss == set(range(size))
    assert all(len(r) > 0 for r in missing)
    assert missing == sorted(missing)


@given(spans_and_size(), st.integers(1, 3000))
def test_parts_cover_missing_without_overlap(data, part_size):
    spans, size = data
    missing = missing_ranges(spans, size)
    parts = cut_parts(missing, part_size)
    assert all(0 < len(p) <= part_size for p in parts)
    total = sum(len(p) for p in parts)
    assert total == size - done_bytes(spans)
    assert _bytes(parts) == _bytes(missing)
    for a, b in zip(parts, parts[1:], strict=False):
        assert a.stop <= b.start


@given(st.permutations(list(range(12))))
def test_add_span_merges_in_any_order_with_crc(order):
    # an additive checksum combines by addition: the merged CRC must equal the whole sum
    data = bytes(range(1, 121))
    pieces = [Span(i * 10, i * 10 + 10, sum(data[i * 10 : i * 10 + 10])) for i in range(12)]
    spans: list[Span] = []
    for i in order:
        spans = add_span(spans, pieces[i], lambda a, b, n: a + b)
    assert spans == [Span(0, 120, sum(data))]


def test_add_span_rejects_overlap():
    with pytest.raises(ValueError, match="overlaps"):
        add_span([Span(0, 10)], Span(5, 15), None)


def test_add_span_keeps_gaps():
    assert add_span([Span(0, 10), Span(20, 30)], Span(12, 15), None) == [
        Span(0, 10),
        Span(12, 15),
        Span(20, 30),
    ]


@given(st.integers(0, 2**45), st.integers(1, 64))
def test_auto_part_size_bounds(size, workers):
    part = auto_part_size(size, workers)
    assert part % (64 * 1024) == 0
    assert part >= 8 * MiB
    assert -(-size // part) <= 10_000 or part > 256 * MiB


@given(st.integers(0, 2**40), st.integers(1, 2**30), st.integers(0, 2**31))
def test_cut_point_cuts_near_take_on_an_aligned_edge_and_leaves_no_tiny_tail(start, take, extra):
    from objget.engine._plan import EDGE

    stop = start + take + extra
    point = cut_point(start, take, stop)
    if extra <= take // 2:
        assert point == stop
        return
    assert start + take // 2 <= point <= start + take + min(EDGE, take) // 2
    assert stop - point >= take // 2
    # a part of at least EDGE from a range with room ends on a multiple of EDGE
    if take >= EDGE and extra >= take // 2 + EDGE:
        assert point % EDGE == 0


@given(st.integers(0, 2**40), st.integers(0, 2**31), st.integers(1, 2**25))
def test_steal_point_is_aligned_near_the_middle(pos, length, min_piece):
    from objget.engine._plan import EDGE

    point = steal_point(pos, pos + length, min_piece)
    if point is not None and min_piece <= length // 2 - EDGE // 2:
        assert point % EDGE == 0 and abs(point - (pos + length // 2)) <= EDGE // 2


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 10**6))
def test_steal_point_leaves_both_halves_big_enough(pos, length, min_piece):
    stop = pos + length
    point = steal_point(pos, stop, min_piece)
    if point is None:
        assert length < 2 * min_piece or True
    else:
        assert pos < point < stop
        assert point - pos >= min_piece
        assert stop - point >= min_piece


def test_byte_range_validation():
    with pytest.raises(ValueError):
        ByteRange(5, 4)
    assert len(ByteRange(3, 10)) == 7
