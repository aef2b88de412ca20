"""How a worker moves one response body into the data file: the hot loop of a download,
and the gate every write to the data file passes.

Each `readinto` is reserved (`Scheduler.reserve`: a steal may have shortened the claim, and
what is no longer the claim's is dropped for the stealer to fetch) and written at once: with
`pwrite` at its offset, through the write gate, or handed to an ordered sink (a stream to
stdout). The claim's mark and its CRC then move over the bytes written, and the worker
publishes the mark in its slot of the live record (`_live`) at once: one 32-byte pwrite per
write, so a kill at any instant finds every written byte in the record (a record rewritten by
the engine's loop every 20 ms left up to 12 MiB of a 600 MB/s download out). A segment the
worker ends (at `cut` bytes, or at the end of its claim) goes to the record's log before its
slot is reused.

Write-back (`_writeback`) is started for every window a worker fills, and for the rest of
its claim as soon as the claim's last byte is written (or the copy ends otherwise: retired,
or a failed read whose retry starts new windows), so the checkpoint's fdatasync and the
final fsync find only the last reads still to write.

The write gate (`WriteGate`) makes a stopped download write no byte after its engine has
returned. Stopping a download joins its workers, but only for a bounded time: a worker
stuck in a read that nothing could break may outlive the stop. Its caller then closes the
data file's descriptor, and the number may be reused at once for another file. The gate
makes that safe: once `close` returns, no write starts again (`enter` says no), and every
write that started before has returned. Cost: two uncontended lock round trips per write
(one per buffer, 256 KiB by default), about 0.4 us together, against about 37 us for the
pwrite of 256 KiB itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .._exceptions import TransportError
from ._fileio import pwrite_all
from ._scheduler import Claim, Scheduler
from ._writeback import WriteBehind

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._live import LiveRecord
    from ._stream_sink import OrderedSink
    from ._throttle import BoundLimiter

__all__ = ["Cancelled", "Copier", "WriteGate"]


class WriteGate:
    """`enter()` before each write (False: closed, do not write), `leave()` after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # taken directly on the hot path: ~0.4 us per write
        self._closed = threading.Condition(self._lock)
        self._open = True
        self._writing = 0

    def enter(self) -> bool:
        with self._lock:
            if not self._open:
                return False
            self._writing += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._writing -= 1
            if not self._open and self._writing == 0:
                self._closed.notify_all()

    def close(self, *, timeout: float) -> bool:
        """Let no write start again, and wait (up to `timeout` seconds) for those in progress.
        True when none is left."""
        with self._lock:
            self._open = False
            return self._closed.wait_for(lambda: self._writing == 0, timeout)


class Cancelled(Exception):
    """The download was stopped: the worker leaves without writing more."""


class Copier:
    """The copy loop of one download's workers (shared by them; all state is per call)."""

    def __init__(
        self,
        *,
        fd: int,
        sched: Scheduler,
        gate: WriteGate,
        cancel: threading.Event,
        update: Callable[[int, memoryview], int] | None,
        cut: int,
        closed_early: Callable[[int], TransportError],
        writeback: WriteBehind | None = None,
        sink: OrderedSink | None = None,
        limiter: BoundLimiter | None = None,
        eof_ends: bool = False,
        live: LiveRecord | None = None,
    ) -> None:
        """`cut`: a claim's segment is committed once it reaches this many bytes (0: never).
        `eof_ends`: the object has no known size and no ranges: its body's end is its end.
        `live`: the live record the workers publish their marks in (with `cut`)."""
        self._fd, self._sched, self._gate, self._cancel = fd, sched, gate, cancel
        self._update, self._cut, self._closed_early = update, cut, closed_early
        self._wb, self._sink, self._limiter = writeback, sink, limiter
        self._eof_ends = eof_ends
        self._live = live if cut else None
        self.eof_size: int | None = None

    def copy(
        self,
        claim: Claim,
        body: object,
        view: memoryview,
        retired: Callable[[], bool],
        slot: int = 0,
        limit: Callable[[], int] | None = None,
        peek: Callable[[], int] | None = None,
    ) -> None:
        """Stream `body` into the claim until it ends, is stolen, or the worker is `retired()`
        (then its remainder goes back to the queue; never with a sink: see there). `slot`:
        the worker's slot in the live record. `limit()` caps each read (the stream's share of
        the buffer budget: `_buffers`); it may give pages back, so it is called only when no
        write uses the buffer: when `peek()` (the same number, no side effects) changed."""
        readinto = body.readinto  # type: ignore[attr-defined]
        sched, limiter, sink = self._sched, self._limiter, self._sink
        cap = len(view) if limiter is None else min(len(view), limiter.chunk)
        cancelled = self._cancel.is_set
        w = _Writer(self, claim, slot)
        share, half, off = len(view), 0, 0  # half: the read size of a split buffer (0: whole)
        try:
            while True:
                if limit is not None and (peek is None or peek() != share):
                    w.wait()  # the buffer's layout changes: no write may use it
                    share, off = limit(), 0
                half = share // 2 if sink is None and share >= _MIN_SPLIT else 0
                want = min(cap, half or share, claim.stop - claim.pos)
                if want <= 0:
                    return
                if cancelled():
                    raise Cancelled
                if sink is None and retired():
                    return
                if limiter is not None:
                    limiter.take(want, cancelled)
                if not half:
                    w.wait()  # the read reuses the bytes a write may be using
                    off = 0
                n = readinto(view[off : off + want])
                if n == 0:
                    if self._eof_ends:
                        w.wait()
                        claim.stop = claim.pos
                        self.eof_size = claim.written
                        return
                    raise self._closed_early(claim.pos)
                pos = claim.pos
                take = sched.reserve(claim, n)
                if take:
                    chunk = view[off : off + take]
                    if sink is not None:
                        if not sink.write(chunk, pos, cancelled):
                            raise Cancelled
                        self._mark(claim, pos, chunk, slot)
                    elif half and (w.started or claim.pos < claim.stop):
                        w.hand(chunk, pos)  # written while the next read fills the other half
                        off = half - off
                    else:
                        w.wait()
                        w.write(chunk, pos)
                if take < n:
                    return  # the rest of this body was stolen by another worker
        finally:  # retired, failed (a retry starts a new window) or stopped: what it wrote
            error = w.close()
            if self._wb is not None and claim.written > w.flushed and not cancelled():
                self._write_back(self._wb, w.flushed, claim.written)
            if error is not None:  # (before any other: the claim's reads ran ahead of it)
                raise error

    def _put(self, claim: Claim, chunk: memoryview, pos: int, slot: int, flushed: int) -> int:
        """Write `chunk` at `pos` through the gate, start the write-back of a full window (or
        of the claim's end), move the claim's mark over it. Returns the new `flushed`."""
        gate, wb = self._gate, self._wb
        if not gate.enter():
            raise Cancelled  # stopped: the data file may be closed by now
        try:
            pwrite_all(self._fd, chunk, pos)
            end = pos + len(chunk)
            # a full window, or the claim's last byte (its stop may have moved down to here
            # by a steal): start its write-back now
            if wb is not None and (end - flushed >= wb.window or end >= claim.stop):
                wb.start(flushed, end - flushed)
                flushed = end
        finally:
            gate.leave()
        self._mark(claim, pos, chunk, slot)
        return flushed

    def _write_back(self, wb: WriteBehind, start: int, stop: int) -> None:
        """Start the write-back of `[start, stop)`, through the gate (the file may be closed)."""
        if stop > start and self._gate.enter():
            try:
                wb.start(start, stop - start)
            finally:
                self._gate.leave()

    def _mark(self, claim: Claim, pos: int, chunk: memoryview, slot: int) -> None:
        """`chunk` is written at `pos`: the claim's mark (and its CRC) moves over it, and
        into the worker's slot of the live record."""
        seg, _, crc = claim.mark
        end = pos + len(chunk)
        mark = (seg, end, self._update(crc, chunk) if self._update is not None else 0)
        claim.mark = mark
        live = self._live
        if live is not None:
            live.publish(slot, mark)
        if self._cut and end - seg >= self._cut:
            self._sched.commit(claim)  # a new segment for the live record
            if live is not None:
                live.append(mark)  # in the log before the slot shows the next segment

    def commit(self, claim: Claim) -> None:
        """The claim's segment goes into the ledger (and the live record's log)."""
        mark = claim.mark
        self._sched.commit(claim)
        if self._live is not None:
            self._live.append(mark)


_MIN_SPLIT = 128 * 1024  # a smaller share is read whole, and written before the next read


class _Writer:
    """The write half of one stream's copy. The worker reads into one half of its buffer
    while this thread `pwrite`s (and marks) the other half's bytes: both release the GIL, so
    one stream's decryption and its writes into the page cache use two cores. At most one
    write is in flight, in the claim's order, so the mark (and the live record) still moves
    only over bytes written. The thread starts at the first `hand`; a failed write is kept
    and raised in the worker by its next `hand`, `wait` or `close`."""

    __slots__ = ("_claim", "_copier", "_go", "_idle", "_job", "_slot", "_thread", "error", "flushed")

    def __init__(self, copier: Copier, claim: Claim, slot: int) -> None:
        self._copier, self._claim, self._slot = copier, claim, slot
        self.flushed = claim.pos  # the write-back of the bytes below here is started
        self.error: BaseException | None = None
        self._job: tuple[memoryview, int] | None = None
        self._go = threading.Lock()  # released by the worker: a job (or None: end) is set
        self._go.acquire()
        self._idle = threading.Lock()  # held while a job is in flight
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def write(self, chunk: memoryview, pos: int) -> None:
        """Write in the calling thread (no write may be in flight: `wait` first)."""
        self.flushed = self._copier._put(self._claim, chunk, pos, self._slot, self.flushed)

    def hand(self, chunk: memoryview, pos: int) -> None:
        """Have the thread write `chunk` at `pos`, once the previous write returned."""
        self._idle.acquire()
        if self.error is not None:
            self._idle.release()
            raise self.error
        self._job = (chunk, pos)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"objget-writer-{self._slot}", daemon=True
            )
            self._thread.start()
        self._go.release()

    def wait(self) -> None:
        """Return once no write is in flight; raise a failed write's error."""
        if self._thread is not None:
            self._idle.acquire()
            self._idle.release()
        if self.error is not None:
            raise self.error

    def close(self) -> BaseException | None:
        """Wait for the write in flight, end the thread; the error of a failed write."""
        if self._thread is not None:
            self._idle.acquire()
            self._job = None
            self._go.release()
            self._thread.join()
            self._thread = None
            self._idle.release()
        return self.error

    def _run(self) -> None:
        while True:
            self._go.acquire()
            job = self._job
            if job is None:
                return
            try:
                self.write(*job)
            except BaseException as exc:  # raised in the worker
                self.error = exc
            finally:
                self._job = None
                self._idle.release()
