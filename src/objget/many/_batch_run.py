"""Runs a batch on one machine: one budget of `max_workers` connections shared by all objects.

The driver (the caller's thread) owns the journal and the budget; objects arrive as a list
and/or from the listing's `Feed`, which wakes the driver when objects wait. Large objects
(>= 16 MiB) go first and take several connections each for the engine's ranged parts; small
ones take one each, in chunks (`_batch_chunks`) through the engine's single-request mode
(`SmallGroup`), as many chunks at once as the stream controller finds worth it by the objects
finished per second (`small_controller`). A download starts only when its connections are free.
An interrupt stops every engine through its progress hook (the engine then saves its
checkpoint) within about 0.1 s. A small object is journaled done only after the `SmallGroup`
synced its file, renamed it and fsynced its directory, so the journal never holds a `done` a
power cut could still undo (an object whose sync, rename or directory fsync failed is failed
instead). One `RateLimiter` serves every object.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from queue import SimpleQueue

from .._config import small_buffer
from .._exceptions import DownloadError
from .._log import log
from .._models import DownloadResult, ObjectMeta
from ..engine._downloader import Downloader, download_shared, head_with_retry
from ..engine._engine_face import SMALL, HeldLock, NotSmall, ParentMaker, RateLimiter, SmallGroup
from ._batch_chunks import CHUNK, CHUNK_MAX, Work, completed_chunks, small_controller, take_chunk
from ._batch_feed import Feed
from ._batch_journal import Journal, Row
from ._batch_models import BatchProgress, ObjectResult, Stopped, Tracker, failed
from ._batch_skip import skip_after_head
from ._batch_sources import Planned

__all__ = ["LARGE", "Runner", "Stopped"]

MiB = 1024 * 1024
LARGE = 16 * MiB
PART = 8 * MiB


class Runner:
    """Downloads planned objects into `root` with `dl`, journaling each one."""

    def __init__(
        self,
        dl: Downloader,
        root: str,
        journal: Journal | None,
        *,
        paths: ParentMaker | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
        on_result: Callable[[ObjectResult], None] | None = None,
    ) -> None:
        rate = dl.config.limit_rate
        self._limiter = RateLimiter(rate) if rate else None  # one for every object of the batch
        self._dl = dl
        self._journal = journal
        self._paths = paths if paths is not None else ParentMaker(root)
        self._budget = dl.config.max_workers
        self._on_progress = on_progress
        self.tracker = Tracker(on_result)
        if journal is None:  # the caller journals (Ray's driver): each result kept by path
            self.tracker.by_rel = {}
        self._local = threading.local()
        self._locks: list[HeldLock] = []  # held, not in use by a chunk: lent to the next one
        self._finished = 0  # objects the workers finished: what the controller measures
        self._over = 0  # chunks to stop early (the controller lowered the count)
        self._last = False  # the listing ended and every object started: locks not lent again
        self._count_lock = threading.Lock()

    def _want(self, size: int | None) -> int:
        if size is None or size < LARGE or self._budget == 1:
            return 1
        return max(1, min(self._budget, -(-size // PART)))

    def run(
        self, todo: list[Planned], rows: dict[str, Row], *, more: Feed | None = None
    ) -> list[ObjectResult]:
        """Download `todo`, then what `more` hands over as it comes (the listing streamed
        in); returns each object's result in the order they finished."""
        queue: deque[Work] = deque()
        self._enqueue(queue, todo, rows)
        try:
            self._loop(queue, rows, more)
        finally:
            self._release_locks()  # the workers are done (the pool joined them)
        return self.tracker.results

    def _loop(self, queue: deque[Work], rows: dict[str, Row], more: Feed | None) -> None:
        """The driver's loop (see `run`); its pool of workers is joined when it returns."""
        tracker = self.tracker
        ended = more is None
        free = self._budget
        cfg = self._dl.config
        ctl = small_controller(self._budget, cfg.min_workers, now=time.monotonic())
        ones = 0  # chunks running on one connection each: at most `ctl.target`
        running: dict[Future[list[ObjectResult | Work]], tuple[list[Work], int]] = {}
        # finished chunks arrive here: O(1) per completion (wait() walks every running future);
        # None: `more` has objects waiting
        completed: SimpleQueue[Future[list[ObjectResult | Work]] | None] = SimpleQueue()
        with ThreadPoolExecutor(self._budget, thread_name_prefix="objget-batch") as pool:
            try:
                if more is not None:
                    more.start(lambda: completed.put(None))
                while queue or running or not ended:
                    if more is not None and not ended:
                        new, skips, ended = more.take()
                        tracker.add(0, 0, skipped=skips)
                        self._enqueue(queue, new, rows)
                    starting: list[tuple[list[Work], int]] = []
                    while queue and free > 0:
                        w = queue[0]
                        size = w.meta.size if w.meta is not None else w.planned.size
                        want = self._want(size)
                        busy = running or starting
                        if want > 1 and busy and free < min(want, max(2, self._budget // 2)):
                            break
                        cost = min(want, free)
                        if cost == 1 and ones >= ctl.target:
                            break
                        most = min(CHUNK_MAX, max(CHUNK, len(queue) // (2 * ctl.target)))
                        starting.append((take_chunk(queue, most), cost))
                        free -= cost
                        ones += cost == 1
                    if starting and self._journal is not None:  # one commit, before any starts
                        self._journal.put([self._start(w) for c, _ in starting for w in c])
                    self._last = ended and not queue
                    for chunk, cost in starting:
                        fut = pool.submit(self._work_chunk, chunk, cost)
                        running[fut] = (chunk, cost)
                        fut.add_done_callback(completed.put)
                    finished = completed_chunks(completed) if running or not ended else []
                    journaled: list[Row] = []
                    for fut in finished:
                        chunk, cost = running.pop(fut)
                        free += cost
                        ones -= cost == 1
                        for w, out in zip(chunk, fut.result(), strict=True):
                            if isinstance(out, Work):
                                queue.appendleft(out)  # needs more connections, or
                                continue  # its chunk stopped early
                            self._record(w, out, journaled)
                    self._put(journaled)
                    target = ctl.target
                    if target != ctl.observe(time.monotonic(), self._finished):
                        log.debug("small objects at once %d -> %d: %s", target, ctl.target,
                                  ctl.reason)  # fmt: skip
                        with self._count_lock:  # fewer: running chunks stop early
                            self._over = max(0, ones - ctl.target)
                    if self._on_progress is not None:
                        self._on_progress(tracker.snapshot())
            except BaseException:
                tracker.stop.set()
                self._drain(running)
                raise
            finally:
                if more is not None:
                    more.close()

    def _release_locks(self) -> None:
        """The spare locks released (each names an object in place; running groups took
        theirs when they started): at the end, and by workers once nothing more starts."""
        while self._locks:
            try:
                self._locks.pop().release()
            except IndexError:  # another worker took the last one
                break
            except OSError as exc:  # the objects are in place: a lock name left is harmless
                log.warning("could not remove a lock file of the batch: %s", exc)

    def _enqueue(self, queue: deque[Work], todo: list[Planned], rows: dict[str, Row]) -> None:
        """Large objects (largest first) ahead of everything waiting, small ones behind."""
        self.tracker.add(len(todo), sum(p.size or 0 for p in todo))
        large = sorted((p for p in todo if self._want(p.size) > 1), key=lambda p: p.size or 0)
        queue.extendleft(Work(p, rows.get(p.rel)) for p in large)  # ends up largest first
        queue.extend(Work(p, rows.get(p.rel)) for p in todo if self._want(p.size) == 1)

    def _drain(
        self,
        running: dict[Future[list[ObjectResult | Work]], tuple[list[Work], int]],
    ) -> None:
        """After an interrupt: wait for the stopping downloads and journal those that
        finished anyway, so the next run does not look at them again."""
        for fut in running:
            fut.cancel()
        finished, _ = wait(running, timeout=self._dl.config.timeouts.read + 10)
        journaled: list[Row] = []
        for fut in finished:
            if fut.cancelled() or fut.exception() is not None:
                continue
            for w, out in zip(running[fut][0], fut.result(), strict=False):
                if isinstance(out, ObjectResult):
                    self._record(w, out, journaled)
        self._put(journaled)

    def _start(self, w: Work) -> Row:
        rel = w.planned.rel
        return Row.running(w.planned, os.path.join(self._paths.root, rel), absent=self._absent(rel))

    def _record(self, w: Work, out: ObjectResult, journaled: list[Row]) -> None:
        """`out` reported, its row added to `journaled` (the caller writes those)."""
        row = Row.outcome(w.planned, out)
        if row is not None:
            journaled.append(row)
        self.tracker.finish(w.planned.rel, out)

    def _put(self, rows: list[Row]) -> None:
        if rows and self._journal is not None:  # None: the caller journals (Ray's driver)
            self._journal.put(rows)

    def _buf(self) -> memoryview:
        """This worker's read buffer, kept from chunk to chunk. The chunks' DEST locks are
        kept too, in `_locks`, lent to each `SmallGroup` while it runs: a few lock files per
        chunk running at once, not per chunk (a file made and removed costs more than the
        rename that hands it on); released once no chunk starts any more (after a crash the
        next run removes them: `_batch_skip.classify`)."""
        buf: memoryview | None = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = memoryview(bytearray(small_buffer(self._dl.config)))
        return buf

    def _work_chunk(self, chunk: list[Work], streams: int) -> list[ObjectResult | Work]:
        """In a worker thread: the objects of one chunk, one after the other; the small ones
        through one `SmallGroup` (each directory fsynced once, at its end)."""
        tracker = self.tracker
        limiter = self._limiter.bound(tracker.stop.wait) if self._limiter else None
        out: list[ObjectResult | Work] = []
        cfg = self._dl.config
        buf, held = self._buf(), self._locks
        with SmallGroup(self._paths, buf=buf, config=cfg, limiter=limiter, held=held) as group:
            for i, w in enumerate(chunk):
                if tracker.stop.is_set():
                    raise Stopped
                if self._over and self._stop_early():
                    out.extend(chunk[i:])  # back to the queue, as they were
                    break
                out.append(self._work(w, streams, group))
                with self._count_lock:
                    self._finished += 1
        if self._last:  # its locks freed now, beside the last downloads, not after them
            self._release_locks()
        return [
            _unsynced(o, group.unsynced(w.planned.rel)) for w, o in zip(chunk, out, strict=True)
        ]

    def _stop_early(self) -> bool:
        """This chunk is one of those the controller's lower count stops (the rest of it
        goes back to the queue)."""
        with self._count_lock:
            if self._over <= 0:
                return False
            self._over -= 1
            return True

    def _absent(self, rel: str, dest: str | None = None) -> bool:
        """Nothing at `rel` as its directory's first visit saw it; not visited: an lstat of
        `dest`, or False without one."""
        listed = self._paths.listed(rel)
        if listed is not None:
            return rel.rpartition("/")[2] not in listed
        return dest is not None and not os.path.lexists(dest)

    def _small(
        self, w: Work, group: SmallGroup, meta: ObjectMeta | None, dest: str
    ) -> DownloadResult | None:
        """A small object in one GET to `dest`; size and ETag from `meta`, else the listing,
        else (both None) the answer — None, with nothing written, when it is no small object."""
        p = w.planned
        known = meta if meta is not None else ObjectMeta(size=p.size, etag=p.etag)
        try:
            return group.fetch(
                p.backend, p.key, p.rel, sha256=p.sha256, display=p.source, dest=dest,
                meta=ObjectMeta(
                    size=known.size, etag=known.etag, version_id=known.version_id or p.version_id,
                    accept_ranges=True, last_modified=known.last_modified or p.last_modified,
                ),
            )  # fmt: skip
        except NotSmall:
            return None

    def _work(self, w: Work, streams: int, group: SmallGroup) -> ObjectResult | Work:
        """In a worker thread: when the size is unknown, one GET if nothing is at the
        destination (a small answer is the download), else HEAD; then download: a small
        object through `group`, a larger one through the ranged engine."""
        p = w.planned
        tracker = self.tracker
        dest: str | None = None
        try:
            dest = self._paths.path(p.rel)
            meta = w.meta
            cfg, result = self._dl.config, None
            if meta is None and p.size is None:
                # nothing to skip: one GET tells size and ETag (a HEAD first would be 2N)
                result = self._small(w, group, None, dest) if self._absent(p.rel, dest) else None
                if result is None:
                    meta = head_with_retry(p.backend, p.key, p.version_id, cfg.retry)
                    if skip_after_head(w.row, p, meta, dest):
                        return ObjectResult(
                            source=p.source, path=dest, status="skipped", size=meta.size,
                            etag=meta.etag,
                        )  # fmt: skip
                    if self._want(meta.size) > streams:
                        return dataclasses.replace(w, meta=meta)
            size, etag = (meta.size, meta.etag) if meta is not None else (p.size, p.etag)
            if result is None and size is not None and etag is not None and size < SMALL:
                result = self._small(w, group, meta, dest)
                assert result is not None
            if result is None:
                # the engine makes its files by path: its directory is walked again first (a
                # parent swapped for a symlink since the first visit is refused, not followed)
                os.close(self._paths.open_dir(p.rel.rpartition("/")[0]))
                per_object = dataclasses.replace(
                    cfg,
                    max_workers=streams,
                    # the runner gave this object `streams` of the budget: use at least two of
                    # them from the start (a lone download starts at one and measures)
                    min_workers=min(max(cfg.min_workers, 2), streams),
                    checksum=f"sha256:{p.sha256}" if p.sha256 else None,
                )
                result = download_shared(
                    self._dl, p.backend, p.key, dest, on_progress=tracker.listener(p.rel),
                    version_id=p.version_id, meta=meta, config=per_object, limiter=self._limiter,
                )  # fmt: skip
        except (DownloadError, OSError, ValueError) as exc:  # Stopped passes through
            return failed(p.source, dest, exc, size=p.size, etag=p.etag)
        return ObjectResult(
            source=p.source, path=dest, status="skipped" if result.skipped else "downloaded",
            size=result.size, etag=result.etag, result=result,
        )  # fmt: skip


def _unsynced(out: ObjectResult | Work, exc: Exception | None) -> ObjectResult | Work:
    """A small object whose sync or rename failed, or renamed into a directory whose fsync
    failed: not durably in place, so failed."""
    if exc is None or not isinstance(out, ObjectResult):
        return out
    if isinstance(exc, OSError):
        where = os.path.dirname(out.path or "")
        exc = OSError(exc.errno, f"could not fsync its file or the directory {where}: {exc}")
    return failed(out.source, out.path, exc, size=out.size, etag=out.etag)  # kind: local
