"""Where a download resumes (`resume_point`): the durable checkpoint, when it describes this
object, plus the live record's segments that read back exactly as they were written;
whatever cannot be used is discarded, and the reason given.

A checkpoint made with another source (a mirror, another endpoint of the bucket, a presigned
URL signed again with other parameters) is resumed when the object is provably the same:
the same size, version and Last-Modified and the same strong ETag (`other_source`); a weak
or missing ETag, or no Last-Modified, proves nothing across servers, so that run starts over.

A live record (`_live`) is read only against the checkpoint and data file it was written for:
the same run id as the durable checkpoint, the same device and inode of the data file, the
same boot, the same segment CRC; any other record is ignored, whole. Then each segment that
adds bytes to the durable spans is read back from the data file and its CRC compared with the
one the worker computed on the bytes it wrote: a segment is kept only when the two agree, so a
page that reached the disk only partly, zeros where data should be, or other bytes cost a
refetch of that segment (at most `_live.SEGMENT` bytes and one read), never a wrong byte; this
holds for sources without a checksum too. The kept bytes get the store's CRC from the file (the same
read), so the whole-object check covers them as it covers fetched ones.

Reading back is cheap: only the segments the live record adds (about a second of transfer).
The data file is opened with O_NONBLOCK and must be a regular file: a FIFO planted there does
not hang the run (the live record is ignored and the caller starts over).
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .._log import log
from .._models import ObjectMeta
from ..backends._redact import redact_text
from . import _checkpoint as ck
from ._fileio import remove_quietly
from ._live import Live, Update, boot_id, load_live
from ._plan import Combine, Span, merge_spans, missing_ranges

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ..backends._base import Checksummer
    from ._checkpoint_record import Checkpoint

__all__ = [
    "Resume",
    "confirm_segments",
    "discard",
    "other_source",
    "resume_point",
    "resume_spans",
    "shown",
]


_CHUNK = 1024 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class Resume:
    """Where a run starts: the spans on disk, and why earlier progress was dropped."""

    spans: tuple[Span, ...]
    restarted: str | None = None
    run: str | None = None  # the durable checkpoint's run id (None: start a new run)
    live: tuple[Span, ...] = ()  # the live segments kept, with their live CRC
    moved_from: str | None = None  # the source the checkpoint was made with, when another


def resume_point(
    paths: ck.Paths,
    *,
    meta: ObjectMeta,
    display: str,
    checksummer: Checksummer | None,
    ranged: bool,
    restart: bool,
    crc: tuple[str, Update],
) -> Resume:
    """What a run on `paths` resumes from; whatever it cannot is discarded, with the reason."""
    had_part = os.path.lexists(paths.part)
    if restart:
        discard(paths)
        return Resume(spans=(), restarted="--restart was given" if had_part else None)
    try:
        saved = ck.load(paths.checkpoint)
    except (ck.CheckpointInvalid, OSError) as exc:
        discard(paths)
        return Resume(spans=(), restarted=f"the checkpoint was unusable ({exc})")
    if saved is None:
        if had_part:
            remove_quietly(paths.part)
        remove_quietly(paths.live)  # an earlier run's, killed before its first checkpoint
        return Resume(spans=())
    reason = None
    if not ranged:
        reason = "the server does not support byte ranges, so the download cannot resume"
    elif saved.source != display and (why := other_source(saved, meta)):
        reason = why
    elif saved.identity != meta.identity():
        reason = "the remote object changed since the last run (size/ETag/date differ)"
    elif saved.checksum != (checksummer.name if checksummer else None):
        reason = "the checkpoint was written with another checksum"
    else:
        found = resume_spans(paths, saved, checksummer, crc=crc)
        reason = _part_problem(paths.part, found.spans)
    if reason:
        discard(paths)
        return Resume(spans=(), restarted=reason)
    if saved.source != display:
        moved = shown(saved.source)
        log.info("%s: resuming a checkpoint made with %s (the same object)", display, moved)
        return replace(found, moved_from=moved)
    return found


def other_source(saved: Checkpoint, meta: ObjectMeta) -> str | None:
    """Why a checkpoint made with another source (a mirror, another endpoint, a URL signed
    again with other parameters) cannot be resumed from `meta`'s source; None when it can:
    the same size, version and Last-Modified, and the same strong ETag. A weak ETag (W/...)
    or none, or no Last-Modified, cannot show that two servers hold the same bytes."""
    where = f"the checkpoint belongs to another source ({shown(saved.source)})"
    if saved.identity != meta.identity():
        return f"{where}, and the object there differs (size/ETag/date)"
    if meta.strong_etag is None or meta.last_modified is None or meta.size is None:
        return (
            f"{where}, and without a strong ETag and a Last-Modified date it cannot be "
            "shown to be the same object"
        )
    return None


def shown(source: str, limit: int = 300) -> str:
    """A source name read from a checkpoint, as messages show it: redacted, printable, at most
    `limit` characters (objget writes it redacted; a file planted there is not trusted)."""
    text = "".join(c if c.isprintable() else "?" for c in source[:limit])
    return redact_text(text) + ("..." if len(source) > limit else "")


def discard(paths: ck.Paths) -> None:
    """Remove a destination's checkpoint, live record and data file."""
    remove_quietly(paths.checkpoint)
    remove_quietly(paths.live)
    remove_quietly(paths.part)


def _part_problem(part: str, spans: tuple[Span, ...]) -> str | None:
    """Why the data file cannot back `spans` (None: it can)."""
    try:
        st = os.stat(part, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        return "the temp data file is not a regular file"
    if spans and (st is None or st.st_size < spans[-1].stop):
        return "the temp data file is missing or shorter than the checkpoint claims"
    return None


def resume_spans(
    paths: ck.Paths,
    durable: Checkpoint,
    checksummer: Checksummer | None,
    *,
    crc: tuple[str, Update],
) -> Resume:
    """The spans a run resumes from, given the durable checkpoint of the same object and the
    live segments' CRC (`_live.segment_crc`) of this run."""
    plain = Resume(spans=durable.spans, run=durable.run)
    try:
        live = load_live(paths.live)
    except (ck.CheckpointInvalid, OSError) as exc:
        log.debug("ignoring the live checkpoint %s: %s", paths.live, exc)
        return plain
    if live is None or durable.run is None or live.tag.run != durable.run:
        return plain
    if live.tag.crc != crc[0] or live.tag.boot != boot_id():
        return plain
    try:  # O_NONBLOCK: a FIFO planted at the path must not hang the open
        fd = os.open(paths.part, os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return plain
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
            live.tag.device,
            live.tag.inode,
        ):
            log.debug("ignoring the live checkpoint %s: written for another data file", paths.live)
            return plain
        spans, kept = confirm_segments(
            fd,
            durable.spans,
            _in_bounds(live, durable),
            live_update=crc[1],
            update=checksummer.update if checksummer else None,
            combine=checksummer.combine if checksummer else None,
        )
        return Resume(spans=spans, run=durable.run, live=kept)
    finally:
        os.close(fd)


def _in_bounds(live: Live, durable: Checkpoint) -> tuple[Span, ...]:
    size = durable.identity.get("size")
    if not isinstance(size, int):
        return ()
    return tuple(s for s in live.segments if s.stop <= size)


def confirm_segments(
    fd: int,
    durable: Sequence[Span],
    segments: Sequence[Span],
    *,
    live_update: Update,
    update: Update | None,
    combine: Combine | None,
    crc0: int = 0,
) -> tuple[tuple[Span, ...], tuple[Span, ...]]:
    """`durable` plus the bytes of each segment that reads back with the segment's CRC, and
    the segments kept. Segments may overlap (a slot's segment and an earlier entry for its
    first bytes begin at the same byte): the longest of those beginning at one byte that
    reads back is kept, and none that overlaps a kept one is read."""
    size = max((s.stop for s in segments), default=0)
    gaps = missing_ranges(list(durable), size)
    gap_stops = [g.stop for g in gaps]
    pieces: list[Span] = []
    kept: list[Span] = []
    end = 0  # the stop of the last segment kept
    for seg in sorted(segments, key=lambda s: (s.start, -s.stop)):
        if seg.start < end:
            continue
        holes = []
        for g in gaps[bisect.bisect_right(gap_stops, seg.start) :]:
            if g.start >= seg.stop:
                break
            holes.append((max(g.start, seg.start), min(g.stop, seg.stop)))
        if not holes:
            continue  # already durable
        found = _read_back(fd, seg, holes, live_update, update, crc0)
        if found is None:
            log.debug("live segment %d-%d does not read back as written", seg.start, seg.stop)
            continue
        pieces.extend(found)
        kept.append(seg)
        end = seg.stop
    return merge_spans(tuple(durable), pieces, combine), tuple(kept)


def _read_back(
    fd: int,
    seg: Span,
    holes: list[tuple[int, int]],
    live_update: Update,
    update: Update | None,
    crc0: int,
) -> list[Span] | None:
    """The holes of `seg` as spans (with the store CRC when `update`), when all of `seg`
    reads back with its live CRC; None otherwise."""
    crc = crc0
    piece_crcs = [crc0] * len(holes)
    pos = seg.start
    while pos < seg.stop:
        data = os.pread(fd, min(_CHUNK, seg.stop - pos), pos)
        if not data:
            return None  # the file is shorter than the segment
        view = memoryview(data)
        crc = live_update(crc, view)
        if update is not None:
            end = pos + len(data)
            for i, (a, b) in enumerate(holes):
                lo, hi = max(a, pos), min(b, end)
                if lo < hi:
                    piece_crcs[i] = update(piece_crcs[i], view[lo - pos : hi - pos])
        pos += len(data)
    if crc != seg.crc:
        return None
    return [
        Span(a, b, piece_crcs[i] if update is not None else None) for i, (a, b) in enumerate(holes)
    ]
