"""The worker threads of one download and the loop that watches them.

Workers claim ranges from the Scheduler, check each answer and stream its body with
`readinto` into one reusable buffer, `pwrite` at its offset, CRC on the same buffer (the copy
loop: `_copy`), and record finished segments in the ledger. The main loop adjusts the number
of streams (StreamController), saves checkpoints, reports progress, and on the first final
error cancels everything at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .._config import DownloadConfig, small_buffer, stream_share
from .._exceptions import RangeNotSupported, TransportError
from .._log import log
from .._models import ByteRange, ObjectMeta
from .._ranges import check_range_answer
from ..backends._base import is_abortable
from ._attempts import Attempts, run_with_retry
from ._buffers import StreamBuffer
from ._concurrency import ControllerSettings, StreamController
from ._copy import Cancelled, Copier, WriteGate
from ._live import SEGMENT
from ._saver import SaverThread
from ._scheduler import Claim, Scheduler
from ._writeback import WriteBehind

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from .._progress import Progress
    from ..backends._base import Backend, Checksummer
    from ._live import LiveRecord
    from ._stream_sink import OrderedSink
    from ._throttle import RateLimiter

__all__ = ["Engine", "EngineHooks"]


TICK = 0.02  # the main loop's period: live checkpoints, the stream controller, progress
STALE = 0.1  # a stream silent this long after its first bytes may be taken over at the tail


@dataclass(frozen=True, eq=False, kw_only=True, slots=True)  # eq=False: nothing compares them
class EngineHooks:
    """What the engine calls back into: checkpoint saving and progress reporting.

    `save` (durable: fdatasync + checkpoint) runs on a saver thread every checkpoint interval,
    so its disk wait never stalls the main loop. `live`: the live record, opened by the main
    loop once armed; then the workers write it themselves (`_copy`)."""

    save: Callable[[], None]
    save_at_start: bool = False  # a fresh download: record the object before any byte comes
    live: LiveRecord | None = None
    progress: Callable[[Progress], None] | None = None
    progress_interval: float = 0.1


class Engine:
    """Runs the workers of one download until every claimed byte is written or one fails."""

    STOP_GRACE = 10.0  # seconds past the read timeout a stop waits for each worker

    def __init__(
        self,
        *,
        backend: Backend,
        key: str,
        meta: ObjectMeta,
        fd: int,
        scheduler: Scheduler,
        config: DownloadConfig,
        checksummer: Checksummer | None,
        ranged: bool,
        resumed: int,
        hooks: EngineHooks,
        clock: Callable[[], float] = time.monotonic,
        live_crc: Callable[[int, memoryview], int] | None = None,
        limiter: RateLimiter | None = None,
        sink: OrderedSink | None = None,
    ) -> None:
        """`live_crc`: the live record is kept (`_live`): each written segment gets this CRC
        (the checksummer's own when there is one) and ends after `SEGMENT` bytes. `limiter`:
        a rate limit shared with other downloads (a batch's); else one of `limit_rate`'s own.
        `sink`: the bytes go to it, in order, instead of to `fd` (a stream to stdout)."""
        self._backend = backend
        self._key = key
        self._meta = meta
        self._fd = fd
        self._sched = scheduler
        self._config = config
        self._update = live_crc or (checksummer.update if checksummer is not None else None)
        self._cut = SEGMENT if live_crc is not None and ranged else 0
        self._ranged = ranged
        self._resumed = resumed
        self._hooks = hooks
        self._clock = clock
        self._cancel = threading.Event()
        self._wake = threading.Event()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        if limiter is None and config.limit_rate:
            from ._throttle import RateLimiter  # a 51st module on a plain download's path

            limiter = RateLimiter(config.limit_rate)
        self._limiter = limiter.bound(self._cancel.wait) if limiter is not None else None
        self._target = 1
        self._peak = 1
        self._threads: dict[int, threading.Thread] = {}
        self._ended: set[threading.Thread] = set()  # workers past their last step (may be alive)
        self._saver = SaverThread(hooks.save, cancel=self._cancel, on_error=self._fail)
        self._sink = sink  # bytes go to it in place of pwrite (a stream: no file, no fd)
        self._writeback = WriteBehind.open(fd, meta.size) if sink is None else None
        self._gate = WriteGate()
        self._copier = Copier(
            fd=fd, sched=scheduler, gate=self._gate, cancel=self._cancel, update=self._update,
            cut=self._cut, closed_early=self._closed_early, writeback=self._writeback,
            sink=sink, limiter=self._limiter, eof_ends=meta.size is None and not ranged,
            live=hooks.live if sink is None else None,
        )  # fmt: skip
        self._live = hooks.live if self._cut and sink is None else None

    # --- main loop ------------------------------------------------------------------
    def run(self) -> int:
        """Download until done; returns the peak number of streams used. Raises the first
        final error; on KeyboardInterrupt, stops the workers and re-raises."""
        cfg = self._config
        max_streams = cfg.max_workers if self._ranged else 1
        read_size = self._limiter.chunk if self._limiter else small_buffer(cfg)
        cores = getattr(os, "process_cpu_count", os.cpu_count)() or 1  # 3.13+: its affinity
        low = min(cfg.min_workers, max_streams)
        settings = ControllerSettings(
            min_streams=low, max_streams=max_streams, read_size=read_size, cores=cores
        )
        ctl = StreamController(settings, now=self._clock())
        self._target = ctl.target
        if self._ranged and self._sink is None and self._limiter is None:
            self._sched.stale = STALE  # (a limiter's waits are no stalls; a sink keeps claims)
        start = last_save = last_progress = self._clock()
        saved_at = 0
        live = self._live
        try:
            if self._hooks.save_at_start:
                self._saver.request()  # every durable save runs on the saver thread
            if live is not None and live.waiting:  # armed already: resuming this run
                live.open(self._sched.live_segments, slots=max_streams)
            self._spawn()
            while True:
                self._wake.wait(TICK)
                self._wake.clear()
                if self._error is not None:
                    raise self._error
                now = self._clock()
                fetched = self._sched.fetched
                target = ctl.observe(now, fetched, time.process_time())
                self._sched.slow_streams = ctl.slow_streams  # shorter parts on a capped path
                self._sched.fast_streams = ctl.fast_streams  # longer ones on a fast one
                if target != self._target:
                    log.debug("streams %d -> %d: %s", self._target, target, ctl.reason)
                    self._target = target
                self._spawn()
                ended = self._ended  # (a worker wakes the loop before its thread is dead)
                if not any(t.is_alive() and t not in ended for t in self._threads.values()):
                    if self._error is not None:
                        raise self._error
                    if self._sched.finished() or not self._ranged:
                        break
                    continue
                if live is not None and live.waiting:  # the first durable save is on disk
                    live.open(self._sched.live_segments, slots=max_streams)
                if (
                    not self._saver.busy
                    and (
                        now - last_save >= cfg.checkpoint_interval
                        or fetched - saved_at >= cfg.checkpoint_bytes
                    )
                    and not self._ending(fetched / max(now - start, TICK))
                ):
                    self._saver.request()
                    last_save, saved_at = now, fetched
                if self._hooks.progress and now - last_progress >= self._hooks.progress_interval:
                    self._hooks.progress(self.progress(now - start))
                    last_progress = now
        finally:
            self._stop_all()
        if self._error is not None:  # e.g. the saver's fdatasync failed as the last bytes came
            raise self._error
        return self._peak

    def _ending(self, rate: float) -> bool:
        """The rest is due so soon that a durable save now would only delay the end: at the
        mean rate so far, within a quarter of a checkpoint interval. A save in progress when
        the last byte lands is waited for before the commit (its fdatasync, checkpoint write
        and directory fsync: 20-110 ms measured at 256 MiB and 1 GiB on this machine kind),
        whose own fsync makes everything durable moments later. A process crash meanwhile
        loses nothing (the live record); a power loss at most that quarter interval more. (A
        quarter, not more: a save due with a third of the rest still to come is taken, as
        the disk fault trials expect of a 24 MiB download at 16 MiB/s.)"""
        if not self._ranged:
            return False
        return self._sched.left() < rate * self._config.checkpoint_interval / 4

    def progress(self, elapsed: float) -> Progress:
        from .._progress import Progress  # with a listener only: a quiet run builds no class

        fetched = self._sched.fetched
        total = self._meta.size if self._meta.size is not None else None
        return Progress(
            total=total,
            done=self._resumed + fetched,
            resumed=self._resumed,
            fetched=fetched,
            elapsed=elapsed,
            rate=fetched / elapsed if elapsed > 0 else 0.0,
            workers=sum(1 for t in self._threads.values() if t.is_alive()),
            retries=self._sched.retries,
        )

    def _spawn(self) -> None:
        for i in range(self._target):
            t = self._threads.get(i)
            if t is not None and t.is_alive():
                continue
            if not self._sched.has_work():
                break
            t = threading.Thread(target=self._worker, args=(i,), name=f"objget-worker-{i}")
            self._threads[i] = t
            t.start()
        self._peak = max(self._peak, sum(1 for t in self._threads.values() if t.is_alive()))

    def _stop_all(self) -> None:
        """Stop every thread of this download before the caller closes the data file.

        Raises no error of its own, so the error that ended the download is the one the caller
        sees: an abort that fails (e.g. a response that cannot be shut down) is logged and the
        stop goes on. Every worker is joined, up to the read timeout + STOP_GRACE (a read the
        abort could not break mostly ends by its timeout); then the write gate closes, so even a
        worker that outlives the wait writes no byte once this returns; then the saver is
        released and joined. A second Ctrl-C cuts the wait for the workers short, never the
        gate or the saver, and is raised at the end."""
        self._cancel.set()
        try:
            self._abort_bodies()
            self._join_workers()
        finally:
            try:
                if not self._gate.close(timeout=self._config.timeouts.read + self.STOP_GRACE):
                    log.warning("a write to the data file did not return in time")
            finally:
                self._saver.release()

    def _abort_bodies(self) -> None:
        """Break the reads in progress, one body at a time: one failing abort stops no other."""
        failed: list[Exception] = []
        for body in self._sched.active_bodies():
            if not is_abortable(body):  # isinstance(body, Abortable), without typing
                continue
            try:
                body.abort()
            except Exception as exc:
                failed.append(exc)
        if failed:
            log.warning(
                "could not abort %d response(s) (%s: %s); their workers stop at the read timeout",
                len(failed),
                type(failed[0]).__name__,
                failed[0],
            )

    def _join_workers(self) -> None:
        deadline = self._clock() + self._config.timeouts.read + self.STOP_GRACE
        for t in self._threads.values():
            t.join(timeout=max(0.1, deadline - self._clock()))
        left = sum(1 for t in self._threads.values() if t.is_alive())
        if left:
            log.warning("%d worker(s) still reading after the stop; they write nothing", left)

    def _fail(self, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = exc
        self._cancel.set()
        self._wake.set()

    # --- workers --------------------------------------------------------------------
    def _worker(self, index: int) -> None:
        cfg = self._config  # reads take an even share of the download's buffer budget
        buf = StreamBuffer(cfg.buffer_size, lambda: stream_share(cfg, self._target))
        try:
            while not self._cancel.is_set() and index < self._target:
                claim = self._sched.claim(self._target)
                if claim is None:
                    break
                try:
                    self._fetch(claim, buf, index)
                finally:
                    if self._ranged or claim.written >= claim.stop:
                        self._copier.commit(claim)
                    self._sched.release(claim)
        except Cancelled:
            pass
        except BaseException as exc:
            self._fail(exc)
        finally:
            buf.close()
            self._ended.add(threading.current_thread())
            self._wake.set()

    def _fetch(self, claim: Claim, buf: StreamBuffer, index: int) -> None:
        """`claim` to its end under the retry policy, each retry from the last byte written."""
        run_with_retry(
            lambda attempts: self._attempt(attempts, claim, buf, index),
            policy=self._config.retry,
            on_retry=lambda exc, delay: self._retrying(claim, exc, delay),
            wait=self._wait,
        )

    def _attempt(self, attempts: Attempts, claim: Claim, buf: StreamBuffer, index: int) -> None:
        if claim.pos >= claim.stop:
            return  # done, or its remainder was split off to another worker while waiting
        if self._cancel.is_set():
            raise Cancelled
        before = claim.pos
        try:
            self._stream(claim, buf, index)
        except TransportError:
            if claim.pos >= claim.stop:
                return  # taken over while silent (the read was broken): nothing left to do
            if claim.pos > before:
                attempts.progressed()
            if not self._ranged:  # no ranges: the only way to retry is from byte 0
                self._sched.rewind(claim)
            raise

    def _retrying(self, claim: Claim, exc: TransportError, delay: float) -> None:
        self._sched.add_retry()
        log.debug("retrying bytes %d-%d in %.2f s: %s", claim.pos, claim.stop, delay, exc)

    def _wait(self, delay: float) -> None:
        if self._cancel.wait(delay):
            raise Cancelled from None

    def _stream(self, claim: Claim, buf: StreamBuffer, index: int) -> None:
        rng = ByteRange(claim.pos, claim.stop) if self._ranged else None
        body = self._backend.get_range(self._key, rng, meta=self._meta)
        claim.body = body
        try:
            if rng is not None:
                assert self._meta.size is not None
                check = check_range_answer(
                    asked=rng,
                    size=self._meta.size,
                    status=body.status,
                    content_range=body.content_range,
                    content_length=body.content_length,
                )
                if not check.ok:
                    raise RangeNotSupported(
                        f"{self._backend.display(self._key)}: {check.reason}; no bytes were "
                        "written from this answer",
                        status=body.status,
                        source=self._backend.display(self._key),
                    )
            elif body.status != 200:
                raise RangeNotSupported(
                    f"{self._backend.display(self._key)}: status {body.status} to a plain GET",
                    status=body.status,
                    source=self._backend.display(self._key),
                )
            retired = lambda: self._ranged and index >= self._target  # noqa: E731
            self._copier.copy(claim, body, buf.view, retired, index, buf.limit)
        finally:
            claim.body = None
            body.close()

    def _closed_early(self, pos: int) -> TransportError:
        shown = self._backend.display(self._key)
        return TransportError(
            f"{shown}: connection closed after {pos} bytes, before the end of the requested range",
            source=shown,
        )

    @property
    def eof_size(self) -> int | None:
        """The size of an object without a known size, once its body ended (else None)."""
        return self._copier.eof_size
