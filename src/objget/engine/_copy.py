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
    ) -> None:
        """Stream `body` into the claim until it ends, is stolen, or the worker is `retired()`
        (then its remainder goes back to the queue; never with a sink: see there). `slot`:
        the worker's slot in the live record. `limit()`, asked before each read, caps it (the
        stream's share of the buffer budget: `_buffers`)."""
        readinto = body.readinto  # type: ignore[attr-defined]
        fd, sched, limiter, gate = self._fd, self._sched, self._limiter, self._gate
        cap = len(view) if limiter is None else min(len(view), limiter.chunk)
        cancelled = self._cancel.is_set
        wb, sink = self._wb, self._sink
        flushed = claim.pos  # this worker started the write-back of the bytes below here
        try:
            while True:
                want = min(cap, claim.stop - claim.pos)
                if limit is not None:
                    want = min(want, limit())
                if want <= 0:
                    return
                if cancelled():
                    raise Cancelled
                if sink is None and retired():
                    return
                if limiter is not None:
                    limiter.take(want, cancelled)
                n = readinto(view[:want])
                if n == 0:
                    if self._eof_ends:
                        claim.stop = claim.pos
                        self.eof_size = claim.written
                        return
                    raise self._closed_early(claim.pos)
                pos = claim.pos
                take = sched.reserve(claim, n)
                if take:
                    chunk = view[:take]
                    if sink is not None:
                        if not sink.write(chunk, pos, cancelled):
                            raise Cancelled
                    else:
                        if not gate.enter():
                            raise Cancelled  # stopped: the data file may be closed by now
                        try:
                            pwrite_all(fd, chunk, pos)
                            end = pos + take
                            # a full window, or the claim's last byte (its stop may have
                            # moved down to here by a steal): start its write-back now
                            if wb is not None and (end - flushed >= wb.window or end >= claim.stop):
                                wb.start(flushed, end - flushed)
                                flushed = end
                        finally:
                            gate.leave()
                    self._mark(claim, pos, chunk, slot)
                if take < n:
                    return  # the rest of this body was stolen by another worker
        finally:  # retired, failed (a retry starts a new window) or stopped: what it wrote
            if wb is not None and claim.written > flushed and not cancelled():
                self._write_back(wb, flushed, claim.written)

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
