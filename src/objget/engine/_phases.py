"""The single-object engine in phases, its face to the batch and Ray: prepare → fetch → finish.

- `prepare` takes DEST's lock, finds the resume point (`_recover`: the durable checkpoint and
  the live record's segments that read back), opens the temp file, checks the free space and
  plans the missing ranges. It returns a `Job`, which holds all that until it is closed (use
  it as a `with` block).
- `fetch` runs the engine's workers over the plan (`_engine`), saving durable checkpoints
  (`_saver`: snapshot → fdatasync → checkpoint); on a failure it saves once more, quietly.
- `finish` verifies (`_verify`: size, the store's CRC combined over the spans, file checks),
  stamps the mtime, fsyncs, renames the temp file onto DEST (only the file written here) and
  removes the records.

`Downloader.download_object` is prepare → fetch → finish. A download split over processes
(Ray) uses the same phases on windows of the object (`_windows`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from collections.abc import Callable

from .._config import DownloadConfig, small_buffer
from .._exceptions import CheckpointError, ObjectChanged
from .._log import log
from .._models import ByteRange, DownloadResult, ObjectMeta
from ..integrity import Verified
from . import _checkpoint as ck
from ._fileio import (
    check_free_space,
    commit_part,
    disk_full,
    file_id,
    open_part,
    preallocate,
    remove_quietly,
    remove_stale_temps,
)
from ._live import LiveRecord, new_run, segment_crc, tag_for
from ._plan import Span, cut_parts, done_bytes, missing_ranges
from ._recover import Resume, discard, resume_point
from ._saver import DurableSaver, save_quietly
from ._scheduler import Scheduler
from ._sync import stamp
from ._verify import checksummer_of, file_checks_of, verify

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)
if TYPE_CHECKING:
    from .._progress import Progress
    from ..backends._base import Backend, Checksummer
    from ..integrity import FileCheck
    from ._checkpoint_record import Checkpoint
    from ._throttle import RateLimiter

__all__ = ["Job", "Paths", "Span", "fetch", "finish", "prepare"]

Paths = ck.Paths  # where a destination's files go (prepare's argument); Span: what windows report
ProgressListener = Callable[["Progress"], None]  # Progress: imported when one is made
_UNKNOWN_SIZE = 2**63 - 1


class Job:
    """One prepared download: its lock held, its temp file open, its plan made; `window`
    is the part of the object it fetches (None: all of it). One owner; `close()` (or the
    `with` block) lets go of the file and the lock."""

    def __init__(
        self,
        *,
        backend: Backend,
        key: str,
        meta: ObjectMeta,
        paths: ck.Paths,
        display: str,
        config: DownloadConfig,
        lock: ck.DestLock,
        fd: int,
        sched: Scheduler,
        saver: DurableSaver,
        crc: Checksummer | None,
        ranged: bool,
        resume: Resume,
        live: LiveRecord,
        live_crc: Callable[[int, memoryview], int] | None = None,
        window: ByteRange | None = None,
    ) -> None:
        self.backend, self.key, self.meta, self.paths = backend, key, meta, paths
        self.display, self.config, self.window = display, config, window
        self.fd, self.sched, self.saver, self.crc = fd, sched, saver, crc
        self.ranged, self.resume, self.live, self.live_crc = ranged, resume, live, live_crc
        self._lock = lock
        self.peak = 1
        self.size = meta.size
        self._progress: Callable[[float], Progress] | None = None

    @property
    def spans(self) -> tuple[Span, ...]:
        """The spans on disk now (resumed and fetched), each with its CRC."""
        return self.sched.spans()

    @property
    def resumed(self) -> tuple[Span, ...]:
        """The spans this run resumed (read back where the record asked for it)."""
        return self.resume.spans

    @property
    def fetched(self) -> int:
        return self.sched.fetched

    def save(self) -> None:
        if self.ranged:
            self.saver()

    def close_file(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                self.live.close(remove=False)
            finally:
                os.close(fd)

    def close(self) -> None:
        try:
            self.close_file()
        finally:
            self._lock.release(remove=True)

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def locked(paths: ck.Paths, display: str, make: Callable[[ck.DestLock], Job]) -> Job:
    """`make(lock)` under `paths.lock`, taken here; released again if `make` fails."""
    lock = ck.DestLock(paths.lock, dest=paths.dest, source=display)
    lock.acquire()
    try:
        return make(lock)
    except BaseException:
        lock.release(remove=True)
        raise


def prepare(
    backend: Backend,
    key: str,
    meta: ObjectMeta,
    paths: ck.Paths,
    *,
    display: str,
    config: DownloadConfig,
) -> Job:
    """Lock DEST, find the resume point, open the temp file and plan the missing ranges."""
    return locked(paths, display, lambda lock: _prepare(backend, key, meta, paths, display,
                                                       config, lock))  # fmt: skip


def _prepare(
    backend: Backend,
    key: str,
    meta: ObjectMeta,
    paths: ck.Paths,
    display: str,
    cfg: DownloadConfig,
    lock: ck.DestLock,
) -> Job:
    checksummer = checksummer_of(backend, meta)
    ranged = meta.accept_ranges and meta.size is not None
    remove_stale_temps(paths.checkpoint)
    crc_name, crc_update = segment_crc(checksummer)
    resume = resume_point(
        paths,
        meta=meta,
        display=display,
        checksummer=checksummer,
        ranged=ranged,
        restart=cfg.restart,
        crc=(crc_name, crc_update),
    )
    if resume.restarted:
        log.warning("%s: starting over: %s", display, resume.restarted)
    spans = resume.spans
    size = meta.size
    fresh = not spans
    run = resume.run if resume.run is not None and not fresh else new_run()
    if fresh:  # a new data file, a new run: no earlier live record may describe it
        remove_quietly(paths.live)
    fd = open_part(paths.part, fresh=fresh)
    tag = tag_for(fd, run=run, crc=crc_name) if ranged else None
    live = LiveRecord(paths.live, tag)
    if run == resume.run:
        live.arm()  # the durable checkpoint on disk names this run already
    try:
        if size is not None:
            # what the part file has not got on disk yet: its blocks (reserved when it was
            # made, or written before a crash) take no new space when written again
            held = min(size, os.fstat(fd).st_blocks * 512)
            where = os.path.dirname(os.path.abspath(paths.part))
            check_free_space(where, size - held)
            if fresh:
                preallocate(fd, size)
        todo = missing_ranges(spans, size) if size is not None else []
        if size is None:
            parts = [ByteRange(0, _UNKNOWN_SIZE)]
        elif ranged and cfg.part_size:
            parts = cut_parts(todo, cfg.part_size)
        else:
            parts = todo  # ranged: cut at claim time, sized for the streams running then
        sched = Scheduler(
            parts,
            guided=ranged and size is not None and not cfg.part_size,
            done=spans,
            combine=checksummer.combine if checksummer else None,
            min_steal=max(small_buffer(cfg) * 2, 1024 * 1024),
            live=resume.live if tag is not None else None,
        )
        identity = meta.identity()

        def record(spans: tuple[Span, ...]) -> Checkpoint:
            from ._checkpoint_record import Checkpoint  # at the first save: not at start

            checksum = checksummer.name if checksummer else None
            return Checkpoint(
                source=display, identity=identity, checksum=checksum, spans=spans, run=run
            )

        # snapshot → fdatasync → checkpoint; after a failed sync nothing is saved again,
        # and the live record (which trusts the same pages) goes
        def saved(seq: int) -> None:
            sched.saved(seq)  # the live record keeps only what came after the snapshot
            live.arm()

        saver = DurableSaver(
            fd,
            paths.checkpoint,
            view=sched.durable_view,
            record=record,
            on_saved=saved,
            on_sync_failed=lambda: live.close(remove=True),
        )
    except BaseException:
        live.close(remove=False)
        os.close(fd)
        raise
    return Job(
        backend=backend, key=key, meta=meta, paths=paths, display=display, config=cfg,
        lock=lock, fd=fd, sched=sched, saver=saver, crc=checksummer, ranged=ranged,
        resume=resume, live=live, live_crc=crc_update if tag is not None else None,
    )  # fmt: skip


def fetch(
    job: Job,
    *,
    on_progress: ProgressListener | None = None,
    limiter: RateLimiter | None = None,
) -> None:
    """Fetch what the job's plan misses (the whole object, or its window). A window ends
    with its last durable checkpoint: what a finish elsewhere commits from."""
    from ._engine import Engine, EngineHooks

    whole = job.window is None
    live = job.live

    engine = Engine(
        backend=job.backend,
        key=job.key,
        meta=job.meta,
        fd=job.fd,
        scheduler=job.sched,
        config=job.config,
        checksummer=job.crc,
        ranged=job.ranged,
        resumed=done_bytes(job.resume.spans),
        hooks=EngineHooks(
            save=job.save,
            # a checkpoint without a run id: name the run at once (the live record is then
            # kept); a fresh download first saves at its first interval (`test_first_save`)
            save_at_start=whole and not live.armed and bool(job.resume.spans),
            live=live if whole else None,  # written by the workers once armed
            progress=on_progress,
        ),
        live_crc=job.live_crc,
        limiter=limiter,
    )
    try:
        job.peak = engine.run()
    except BaseException as exc:
        if whole and isinstance(exc, ObjectChanged):
            discard(job.paths)
            raise
        if save_quietly(job.save):  # the durable record is the newest: drop the live one
            live.close(remove=True)
        full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
        if whole and full and job.size is not None:
            where = os.path.dirname(os.path.abspath(job.paths.part))
            raise disk_full(where, job.size - done_bytes(job.sched.spans())) from exc
        raise
    if whole:
        if job.size is None:
            job.size = engine.eof_size or 0
        job._progress = engine.progress
    else:
        job.saver()  # the window's last checkpoint: the finish commits from it


def whole_checks(
    backend: Backend, key: str, meta: ObjectMeta, *, size: int, sha256: str | None
) -> list[FileCheck]:
    """The file checks of a finished object: the user's SHA-256, then the store's."""
    checks: list[FileCheck] = []
    if sha256:
        from ..integrity.digests import DigestCheck  # hashlib: only with a checksum to check

        checks.append(DigestCheck("sha256", sha256))
    checks.extend(file_checks_of(backend, key, meta, size=size))
    return checks


def finish(
    job: Job, *, started: float, on_progress: ProgressListener | None = None
) -> DownloadResult:
    """Verify the fetched file, make it durable and rename it onto DEST; the result."""
    cfg, meta, paths = job.config, job.meta, job.paths
    size = job.size or 0
    sha256 = cfg.checksum.partition(":")[2] if cfg.checksum else None
    checked = verify(
        job.fd,
        spans=job.sched.spans(),
        size=size,
        checksummer=job.crc,
        checks=whole_checks(job.backend, job.key, meta, size=size, sha256=sha256),
        display=job.display,
        discard=lambda: discard(paths),
    )
    if on_progress is not None and job._progress is not None:
        final = job._progress(time.monotonic() - started)
        on_progress(dataclasses.replace(final, workers=job.peak))

    def forget() -> None:
        remove_quietly(paths.checkpoint)
        remove_quietly(paths.live)

    commit(job.fd, paths, meta, display=job.display, close=job.close_file, forget=forget)
    return result(job, checked, started=started)


def result(job: Job, checked: Verified, *, started: float) -> DownloadResult:
    resumed = done_bytes(job.resume.spans)
    return DownloadResult(
        path=str(job.paths.dest),
        source=job.display,
        size=job.size or 0,
        etag=job.meta.etag,
        version_id=job.meta.version_id,
        verified=checked.names,
        checksums=checked.values,
        bytes_fetched=job.sched.fetched,
        bytes_resumed=resumed,
        elapsed=time.monotonic() - started,
        retries=job.sched.retries,
        resumable=job.ranged,
        restarted=job.resume.restarted,
        resumed_from=job.resume.moved_from if resumed else None,
        workers=job.peak,
    )


def commit(
    fd: int,
    paths: ck.Paths,
    meta: ObjectMeta,
    *,
    display: str,
    close: Callable[[], None],
    forget: Callable[[], None],
) -> None:
    """The verified temp file `fd` onto DEST: mtime stamped (before the fsync and the rename:
    never a fake mtime), fsync, `close()`, rename (only the file written here), directory
    fsync; then `forget()` the records (also when the temp file turned out to be another)."""
    try:
        stamp(fd, meta.last_modified)
        os.fsync(fd)
        made = file_id(fd)
    finally:
        close()
    try:
        commit_part(paths.part, paths.dest, made, display=display)
    except CheckpointError:  # the records describe the file that is gone: so do they
        forget()
        raise
    forget()
