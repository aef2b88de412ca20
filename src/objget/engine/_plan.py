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
    "cut_point",
    "done_bytes",
    "guided_size",
    "merge_spans",
    "missing_ranges",
    "steal_point",
]

KiB = 1024
MiB = 1024 * KiB
ALIGN = 64 * KiB
# Range edges fall on multiples of EDGE where parts are big enough: stores keep a big object
# in fixed pieces (SeaweedFS 4 MiB chunks, Ceph RGW 4 MiB stripes, the 8 MiB parts of the
# AWS CLI's and boto3's multipart uploads), and a range that starts or ends inside one makes
# the server fetch that whole piece for part of it (SeaweedFS: ~0.9 ms of its CPU per
# edge inside a 4 MiB chunk, +10 % CPU per GiB in 16 MiB ranges; see docs/s3.md). The
# scheduler aligns so for fast streams only, where the server's work is what counts: on a
# capped path an edge up to 4 MiB off the middle would end one stream later than the rest.
EDGE = 8 * MiB
MIN_PART = 8 * MiB
# the least guided part for fast streams (each over the controller's `fast_stream`): a
# request costs the store its lookup (SeaweedFS: 1-3 ms of its CPU, 0.3 s per GiB more in
# 8 MiB ranges than in 256 MiB ones), and such a part is a fraction of a second's work
FAST_PART = 32 * MiB
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


def cut_point(start: int, take: int, stop: int, *, edge: int = EDGE) -> int:
    """Where a part of about `take` bytes taken from `[start, stop)` ends: on the multiple of
    the largest power of two up to `take` and `edge` (at least ALIGN) nearest to
    `start + take` that leaves both the part and the rest at least half `take` (see EDGE),
    else at `start + take`; `stop` when less than half `take` would be left (no tiny tail)."""
    if stop - start <= take + take // 2:
        return stop
    point = _aligned(start + take, start, stop, take // 2, min(edge, take))
    return start + take if point is None else point


def steal_point(pos: int, stop: int, min_piece: int, *, edge: int = EDGE) -> int | None:
    """Where to split an in-flight remainder `[pos, stop)` so an idle worker takes the upper
    half: the multiple of the largest power of two up to `edge` nearest to the middle that
    leaves both halves at least `min_piece` (see EDGE), else the middle; None when either
    half would be smaller than `min_piece`. (`edge=ALIGN`: within 32 KiB of the middle.)"""
    remaining = stop - pos
    if remaining < 2 * min_piece:
        return None
    mid = pos + remaining // 2
    point = _aligned(mid, pos, stop, min_piece, edge)
    return mid if point is None else point


def _aligned(near: int, start: int, stop: int, least: int, most: int) -> int | None:
    """The multiple of the largest power of two up to `most` (down to ALIGN) nearest to
    `near` that is at least `least` from both `start` and `stop`; None if there is none."""
    unit = 1 << (max(1, most).bit_length() - 1)
    while unit >= ALIGN:
        point = (near + unit // 2) // unit * unit
        if point - start >= least and stop - point >= least:
            return point
        unit //= 2
    return None
