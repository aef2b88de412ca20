"""PURE: what is done, what is missing, how to cut it into parts, where to split for stealing.

The plan is a set of *missing byte ranges*, derived from the done spans of the checkpoint, so
part size and worker count may change between runs without losing progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .._models import ByteRange

__all__ = [
    "Span",
    "add_span",
    "auto_part_size",
    "cut_parts",
    "done_bytes",
    "guided_size",
    "merge_spans",
    "missing_ranges",
    "steal_point",
]

KiB = 1024
MiB = 1024 * KiB
ALIGN = 64 * KiB
MIN_PART = 8 * MiB
MAX_PART = 256 * MiB
MAX_PARTS = 10_000

Combine = Callable[[int, int, int], int]


# no order=True: nothing sorts spans but by `start` (four generated methods fewer at import)
@dataclass(frozen=True, slots=True)
class Span:
    """A done range `[start, stop)` with the CRC of its bytes (None when no CRC is kept)."""

    start: int
    stop: int
    crc: int | None = None

    @property
    def range(self) -> ByteRange:
        return ByteRange(self.start, self.stop)


def add_span(spans: Sequence[Span], new: Span, combine: Combine | None) -> list[Span]:
    """Insert `new` into sorted disjoint `spans`, merging it with touching neighbours.

    CRCs are combined when `combine` is given (a merged span without a CRC on either side has
    None). Overlap is a bug in the caller and raises ValueError.
    """
    if new.stop <= new.start:
        return list(spans)
    out: list[Span] = []
    cur = new
    placed = False
    for s in spans:
        if placed:
            out.append(s)
            continue
        if s.stop < cur.start:
            out.append(s)
        elif s.stop == cur.start:
            cur = _join(s, cur, combine)
        elif s.start == cur.stop:
            cur = _join(cur, s, combine)
        elif s.start > cur.stop:
            out.append(cur)
            out.append(s)
            placed = True
        else:
            raise ValueError(f"span [{new.start}, {new.stop}) overlaps [{s.start}, {s.stop})")
    if not placed:
        out.append(cur)
    return out


def merge_spans(
    spans: Sequence[Span], extra: Iterable[Span], combine: Combine | None
) -> tuple[Span, ...]:
    """`spans` with every span of `extra` added (see `add_span`; overlap raises ValueError)."""
    out = list(spans)
    for span in extra:
        out = add_span(out, span, combine)
    return tuple(out)


def _join(a: Span, b: Span, combine: Combine | None) -> Span:
    crc = None
    if combine is not None and a.crc is not None and b.crc is not None:
        crc = combine(a.crc, b.crc, b.stop - b.start)
    return Span(a.start, b.stop, crc)


def done_bytes(spans: Iterable[Span]) -> int:
    return sum(s.stop - s.start for s in spans)


def missing_ranges(spans: Sequence[Span], size: int) -> list[ByteRange]:
    """The complement of sorted disjoint `spans` within `[0, size)`."""
    out: list[ByteRange] = []
    pos = 0
    for s in spans:
        start, stop = max(s.start, 0), min(s.stop, size)
        if start > pos:
            out.append(ByteRange(pos, min(start, size)))
        pos = max(pos, stop)
        if pos >= size:
            break
    if pos < size:
        out.append(ByteRange(pos, size))
    return out


def auto_part_size(size: int, max_workers: int) -> int:
    """Big enough for throughput, small enough for about 4 parts per worker, ≤ 10,000 parts."""
    per = size // max(1, 4 * max_workers)
    part = min(MAX_PART, max(MIN_PART, per))
    part = max(part, -(-size // MAX_PARTS))
    return -(-part // ALIGN) * ALIGN


def guided_size(unclaimed: int, streams: int, floor: int = MIN_PART) -> int:
    """How much one claim takes when no part size is set: half of an even share of what is
    still unclaimed, within [floor, MAX_PART]. One stream gets few, big requests (each
    request costs a round trip and the server's lookup: ~3-4 ms on SeaweedFS, 0.4 s per GiB
    in 8 MiB parts); many streams get smaller ones, and idle streams steal from the rest.
    Slow streams (a capped path) may take a smaller `floor`: a round trip is little against
    their requests' time, and the last parts then end together."""
    part = min(MAX_PART, max(floor, unclaimed // max(1, 2 * streams)))
    return -(-part // ALIGN) * ALIGN


def cut_parts(missing: Iterable[ByteRange], part_size: int) -> list[ByteRange]:
    """Cut missing ranges into parts of at most `part_size` bytes, in offset order."""
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    out: list[ByteRange] = []
    for rng in missing:
        pos = rng.start
        while pos < rng.stop:
            stop = min(rng.stop, pos + part_size)
            out.append(ByteRange(pos, stop))
            pos = stop
    return out


def steal_point(pos: int, stop: int, min_piece: int) -> int | None:
    """Where to split an in-flight remainder `[pos, stop)` so an idle worker takes the upper
    half; None when either half would be smaller than `min_piece`."""
    remaining = stop - pos
    if remaining < 2 * min_piece:
        return None
    mid = pos + remaining // 2
    aligned = mid - (mid % ALIGN)
    if aligned - pos >= min_piece and stop - aligned >= min_piece:
        return aligned
    return mid
