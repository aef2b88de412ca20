"""Where a download resumes: the durable checkpoint, or the live record when it is
believable, its extra bytes confirmed in the data file.

The live record (see `_checkpoint`) is exact after a kill of the process, but it is believed
on the same boot and device number only, and a file system can be unmounted and another copy
of it mounted on the same device in between (a restored image, a re-plugged disk that lost its
cache). So the bytes it claims beyond the durable checkpoint are read back before they count:

- The data file is preallocated, so bytes that never reached the disk read back as zeros
  (unwritten extents on ext4/XFS, holes elsewhere). Each claimed piece is cut at its first
  4 KiB page that is all zeros; the rest of it is fetched again. An object with real zero pages
  costs a little refetch there, never a wrong byte.
- With a store CRC, each kept piece's CRC is computed from the file, so the whole-object check
  at the end covers these bytes as it covers fetched ones.

Reading back is cheap: only what the live record adds (at most about a second of transfer).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from . import _checkpoint as ck
from ._plan import Combine, Span, merge_spans, missing_ranges
from .backends._base import Checksummer

__all__ = ["confirm_live", "resume_spans"]

log = logging.getLogger("objget")

PAGE = 4096
_ZERO = bytes(PAGE)
_CHUNK = 1024 * 1024

Update = Callable[[int, memoryview], int]


def resume_spans(
    paths: ck.Paths, durable: ck.Checkpoint, checksummer: Checksummer | None
) -> tuple[Span, ...]:
    """The spans a run resumes from, given the durable checkpoint of the same object."""
    try:
        live = ck.load(paths.live)
    except (ck.CheckpointInvalid, OSError) as exc:
        log.debug("ignoring the live checkpoint %s: %s", paths.live, exc)
        live = None
    combine = checksummer.combine if checksummer else None
    spans = ck.newest_spans(durable, live, ck.boot_key(paths.part), combine)
    if spans == durable.spans:
        return spans
    try:
        fd = os.open(paths.part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return durable.spans
    try:
        update = checksummer.update if checksummer else None
        return confirm_live(fd, durable.spans, spans, update=update, combine=combine)
    finally:
        os.close(fd)


def confirm_live(
    fd: int,
    durable: Sequence[Span],
    live: Sequence[Span],
    *,
    update: Update | None,
    combine: Combine | None,
    crc0: int = 0,
) -> tuple[Span, ...]:
    """`durable` plus the pieces `live` adds that read back as written (see module doc)."""
    if not live:
        return tuple(durable)
    size = live[-1].stop
    gaps = missing_ranges(list(durable), size)
    pieces: list[Span] = []
    for gap in gaps:
        for span in live:
            start, stop = max(gap.start, span.start), min(gap.stop, span.stop)
            if start < stop:
                piece = _written_prefix(fd, start, stop, update, crc0)
                if piece is not None:
                    pieces.append(piece)
    return merge_spans(tuple(durable), pieces, combine)


def _written_prefix(
    fd: int, start: int, stop: int, update: Update | None, crc0: int
) -> Span | None:
    """`[start, end)` up to the first all-zero page (file-aligned) of `[start, stop)`, with its
    CRC when `update` is given; None when not even the first page holds data."""
    crc = crc0
    pos = start
    while pos < stop:
        data = os.pread(fd, min(_CHUNK, stop - pos), pos)
        if not data:
            break
        cut = _first_zero_page(data, pos)
        if cut is not None:
            data = data[:cut]
        if update is not None and data:
            crc = update(crc, memoryview(data))
        pos += len(data)
        if cut is not None:
            break
    if pos <= start:
        return None
    return Span(start, pos, crc if update is not None else None)


def _first_zero_page(data: bytes, offset: int) -> int | None:
    """Index in `data` (which starts at file offset `offset`) where the first page that is all
    zeros begins; a partial page at either end counts when its bytes are all zeros."""
    head = -offset % PAGE  # bytes before the first page boundary
    if head:
        first = data[:head]
        if first.count(0) == len(first):
            return 0
    if _ZERO not in data and len(data) - head >= PAGE:
        tail = (len(data) - head) % PAGE
        if not tail or data[-tail:].count(0) != tail:
            return None
        return len(data) - tail
    i = head
    while i < len(data):
        page = data[i : i + PAGE]
        if page.count(0) == len(page):
            return i
        i += PAGE
    return None
