"""One object fetched in windows by several processes (Ray range tasks), with the engine's
phases (`_phases`): the owner opens the shared temp file (`SharedPart.open`), each window is
prepared and fetched on its own (`prepare_window` → `_phases.fetch`), and the owner finishes
the object with the spans the windows report (`SharedPart.finish`).

A window keeps its own checkpoint and lock (`DEST.objget-r<start>.ckpt` / `.lock`), so a window
fetched again — after a worker died — resumes from the bytes the lost attempt saved, on any
node that sees the file. It saves as a single-object download does (`_saver`: snapshot, then
fdatasync, then the checkpoint; nothing after a failed sync). Every span in it carries a CRC:
the store's when it gives one, else a CRC-32 of our own (`span_checksummer`). A window that
resumes reads the spans it resumes back from the file and fetches again any whose bytes do not
match their CRC (a lost node's file system may not hold what its checkpoint says); the finish
reads the resumed spans back once more before it commits (`bad_spans`).
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Sequence
from typing import Protocol

from .._config import DownloadConfig, small_buffer
from .._exceptions import IntegrityError
from .._log import log
from .._models import ByteRange, DownloadResult, ObjectMeta
from ..backends._base import Backend, Checksummer
from ..integrity import checksummer_for
from ..integrity._gf2 import CrcCombiner
from . import _checkpoint as ck
from ._checkpoint_record import Checkpoint
from ._fileio import open_part, preallocate, remove_quietly
from ._live import LiveRecord
from ._phases import Job, commit, locked, whole_checks
from ._plan import Span, add_span, auto_part_size, cut_parts, missing_ranges
from ._recover import Resume
from ._saver import DurableSaver
from ._scheduler import Scheduler
from ._verify import checksummer_of, verify

__all__ = ["SharedPart", "WindowReport", "prepare_window", "range_paths"]

_CHUNK = 4 * 1024 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class WindowReport(Protocol):
    """What a fetched window reports to the finish."""

    @property
    def start(self) -> int: ...
    @property
    def spans(self) -> tuple[Span, ...]: ...
    @property
    def resumed(self) -> tuple[Span, ...]: ...
    @property
    def fetched(self) -> int: ...


class _LocalCrc:
    """CRC-32 (zlib) of the bytes a window wrote, for objects the store keeps no CRC for.
    It checks nothing against the store: it lets resumed spans be checked against the file."""

    __slots__ = ()
    name = "crc32-local"
    expected = 0
    _combiner = CrcCombiner(0xEDB88320, 32)

    def update(self, crc: int, data: memoryview, /) -> int:
        return zlib.crc32(data, crc)

    def combine(self, crc_a: int, crc_b: int, len_b: int, /) -> int:
        return self._combiner.combine(crc_a, crc_b, len_b)


def span_checksummer(backend: Backend, meta: ObjectMeta) -> Checksummer:
    """The CRC every span of a window checkpoint carries: the store's, else a local CRC-32."""
    return checksummer_for(backend.object_checks(meta)) or _LocalCrc()


def bad_spans(
    fd: int, spans: tuple[Span, ...], checksummer: Checksummer
) -> list[tuple[Span, int | None]]:
    """The spans whose bytes in `fd` do not give their recorded CRC, each with the CRC they
    gave (None: the span has no CRC, or lies beyond the end of the file)."""
    bad: list[tuple[Span, int | None]] = []
    for span in spans:
        crc, pos = 0, span.start
        while span.crc is not None and pos < span.stop:
            data = os.pread(fd, min(_CHUNK, span.stop - pos), pos)
            if not data:
                break
            crc = checksummer.update(crc, memoryview(data))
            pos += len(data)
        if pos < span.stop or span.crc is None:
            bad.append((span, None))
        elif crc != span.crc:
            bad.append((span, crc))
    return bad


def range_paths(dest: str, start: int) -> ck.Paths:
    """The files of the window of `dest` starting at `start` (its data file is DEST's)."""
    return ck.Paths(
        dest=dest,
        part=ck.Paths.beside(dest).part,
        checkpoint=f"{dest}.objget-r{start}.ckpt",
        lock=f"{dest}.objget-r{start}.lock",
    )


def range_files(dest: str) -> list[str]:
    """The window checkpoints and locks of `dest`, of whatever window size the runs that left
    them used (`DEST.objget-r<start>.ckpt` / `.lock`)."""
    parent, name = os.path.split(dest)
    pattern = re.compile(re.escape(name) + r"\.objget-r\d+\.(?:ckpt|lock)")
    try:
        names = os.listdir(parent or ".")
    except OSError:
        return []
    return [os.path.join(parent, n) for n in names if pattern.fullmatch(n)]


def prepare_window(
    backend: Backend,
    key: str,
    meta: ObjectMeta,
    dest: str,
    window: ByteRange,
    *,
    display: str,
    config: DownloadConfig,
) -> Job:
    """Lock the window, resume from its checkpoint (the spans inside it that read back right)
    and plan its missing bytes, in the shared temp file `SharedPart.open` made."""
    paths = range_paths(dest, window.start)
    return locked(paths, display, lambda lock: _prepare(backend, key, meta, paths, window,
                                                       display, config, lock))  # fmt: skip


def _prepare(
    backend: Backend,
    key: str,
    meta: ObjectMeta,
    paths: ck.Paths,
    window: ByteRange,
    display: str,
    cfg: DownloadConfig,
    lock: ck.DestLock,
) -> Job:
    assert meta.size is not None
    crc = span_checksummer(backend, meta)
    fd = open_part(paths.part, fresh=False)
    try:
        spans = _resume(paths, display, meta, crc, fd, window)
        todo = [
            ByteRange(max(r.start, window.start), min(r.stop, window.stop))
            for r in missing_ranges(spans, meta.size)
            if r.stop > window.start and r.start < window.stop
        ]
        part = cfg.part_size or auto_part_size(window.stop - window.start, cfg.max_workers)
        sched = Scheduler(
            cut_parts(todo, part),
            done=spans,
            combine=crc.combine,
            min_steal=max(small_buffer(cfg) * 2, 1024 * 1024),
        )
        saver = DurableSaver(
            fd,
            paths.checkpoint,
            view=sched.durable_view,
            record=lambda done: Checkpoint(
                source=display, identity=meta.identity(), checksum=crc.name, spans=done
            ),
        )
    except BaseException:
        os.close(fd)
        raise
    return Job(
        backend=backend, key=key, meta=meta, paths=paths, display=display, config=cfg,
        lock=lock, fd=fd, sched=sched, saver=saver, crc=crc, ranged=True,
        resume=Resume(spans=spans), live=LiveRecord(paths.live, None), window=window,
    )  # fmt: skip


def _resume(
    paths: ck.Paths,
    display: str,
    meta: ObjectMeta,
    crc: Checksummer,
    fd: int,
    window: ByteRange,
) -> tuple[Span, ...]:
    """The spans of this window's checkpoint that lie in the window (an earlier run may have
    used larger windows: the rest is another's) and whose bytes match their CRCs."""
    try:
        saved = ck.load(paths.checkpoint)
    except (ck.CheckpointInvalid, OSError):
        return ()
    if (
        saved is None
        or saved.source != display
        or saved.identity != meta.identity()
        or saved.checksum != crc.name
    ):
        return ()
    inside = tuple(s for s in saved.spans if window.start <= s.start and s.stop <= window.stop)
    bad = {span for span, _ in bad_spans(fd, inside, crc)}
    if bad:
        lost = sum(s.stop - s.start for s in bad)
        log.warning(
            "%s: %d bytes the checkpoint %s claims do not read back as written; fetching "
            "them again",
            display,
            lost,
            paths.checkpoint,
        )
    return tuple(s for s in inside if s not in bad)


class SharedPart:
    """The owner's side of an object fetched in windows: DEST's lock and the temp file at the
    object's full size (`open`), then `finish` with what every window reported, and
    `release`. `display` names the object in messages and the result."""

    def __init__(
        self, backend: Backend, key: str, meta: ObjectMeta, dest: str, *, display: str
    ) -> None:
        assert meta.size is not None
        self._backend, self._key, self._meta, self._display = backend, key, meta, display
        self._paths, self.dest, self._started = ck.Paths.beside(dest), dest, time.monotonic()
        self._lock = ck.DestLock(self._paths.lock, dest=dest, source=display)

    def open(self) -> None:
        """Take DEST's lock; make the temp file at full size unless it is there (then the
        windows resume from their checkpoints), dropping the checkpoints of a file gone."""
        size = self._meta.size
        assert size is not None
        self._lock.acquire()
        try:
            try:
                st = os.stat(self._paths.part, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is None or st.st_size != size:
                for path in range_files(self._paths.dest):
                    if path.endswith(".ckpt"):
                        remove_quietly(path)
                fd = open_part(self._paths.part, fresh=True)
                try:
                    preallocate(fd, size)
                    os.ftruncate(fd, size)
                finally:
                    os.close(fd)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self._lock.release(remove=True)

    def finish(self, windows: Sequence[WindowReport], *, sha256: str | None) -> DownloadResult:
        """Check the resumed spans read back, verify the whole file (size, the store's CRC
        combined over every window's spans, file checks) and commit it onto DEST."""
        backend, meta, paths = self._backend, self._meta, self._paths
        size = meta.size
        assert size is not None
        checksummer = checksummer_of(backend, meta)
        combine = checksummer.combine if checksummer else None
        spans: list[Span] = []
        for w in sorted(windows, key=lambda w: w.start):
            for s in w.spans:
                spans = add_span(spans, s, combine)
        checks = whole_checks(backend, self._key, meta, size=size, sha256=sha256)
        fd = os.open(paths.part, os.O_RDWR | _O_NOFOLLOW | _O_CLOEXEC)
        try:
            self._check_resumed(fd, windows, span_checksummer(backend, meta))
            checked = verify(
                fd, spans=tuple(spans), size=size, checksummer=checksummer, checks=checks,
                display=self._display, discard=self._discard,
            )  # fmt: skip
        except BaseException:
            os.close(fd)
            raise
        commit(fd, paths, meta, display=self._display, close=lambda: os.close(fd),
               forget=self._forget)  # fmt: skip
        fetched = sum(w.fetched for w in windows)
        return DownloadResult(
            path=paths.dest, source=self._display, size=size, etag=meta.etag,
            version_id=meta.version_id, verified=checked.names, checksums=checked.values,
            bytes_fetched=fetched, bytes_resumed=max(0, size - fetched),
            elapsed=time.monotonic() - self._started, retries=0, workers=len(windows),
        )  # fmt: skip

    def _check_resumed(self, fd: int, windows: Sequence[WindowReport], crc: Checksummer) -> None:
        """The spans windows resumed from checkpoints (not fetched by them) read back from
        the file as their CRCs say, or IntegrityError: their CRCs are what the combined check
        trusts, so a lost write there (a lost node) would otherwise be committed as verified.
        The windows at fault lose their checkpoints: a new run fetches them again."""
        bad = [(w, s, got) for w in windows for s, got in bad_spans(fd, w.resumed, crc)]
        if not bad:
            return
        for w, _, _ in bad:
            remove_quietly(range_paths(self._paths.dest, w.start).checkpoint)
        _, span, got = bad[0]
        source = self._display
        raise IntegrityError(
            f"{source}: bytes {span.start}-{span.stop} resumed from a range checkpoint do not "
            f"read back as written ({crc.name}); the object was not committed, and those "
            "ranges are fetched again on the next run",
            algorithm=crc.name, expected=str(span.crc), actual=str(got), source=source,
        )  # fmt: skip

    def _forget(self) -> None:
        for path in range_files(self._paths.dest):
            remove_quietly(path)

    def _discard(self) -> None:
        self._forget()
        remove_quietly(self._paths.part)
