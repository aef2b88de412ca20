"""The ordered sink: parallel workers hand in ranges in any order, one stream (stdout) gets
the bytes in offset order, through a bounded reorder window.

`write(data, offset, cancelled)` is called by the engine's workers in place of `pwrite`:

- at the head (the first byte not yet sent), with no drain running: the caller sends its own
  buffer straight to the stream (no copy; with one stream every write goes this way), then
  drains whatever the others buffered right behind it;
- ahead of the head but inside the window `[head, head + window)`: the bytes are copied into a
  ring of `window` bytes at `offset % window` and the caller goes back to the network. Every
  buffered byte lies inside the window, so two never share a ring slot and the ring never
  needs more than `window` bytes (an anonymous mapping: pages are touched only when used);
- beyond the window: the caller waits until the head moves. This is the backpressure: a slow
  reader holds the head writer in its blocking `write`, the window fills, the other workers
  stop reading their sockets, and TCP slows the servers down.

Waiting cannot deadlock as long as the bytes at the head belong to a running worker: the engine
claims parts in offset order and, with a sink, no worker gives its remainder back in the middle
of a claim (see `_copy.Copier.copy`). Bytes below the head are dropped: only a single stream that
restarted from byte 0 (a server without ranges) sends them again.

The checks (`update(view)` in stream order) see exactly the bytes that were sent.
"""

from __future__ import annotations

import mmap
import os
import select
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["WINDOW", "OrderedSink", "StreamCheck"]

MiB = 1024 * 1024
WINDOW = 64 * MiB  # the reorder window: at most this many bytes wait for the head
_PIECE = 4 * MiB  # a drain moves the head (and wakes waiting writers) at least this often
_POLL = 0.05  # seconds a waiting writer sleeps between looks at `cancelled`


class StreamCheck(Protocol):
    """A whole-object check fed with the bytes in order, as they are sent."""

    name: str
    expected: str

    def update(self, data: memoryview, /) -> None: ...

    def result(self) -> str: ...


class OrderedSink:
    """Bytes from many writers to one file descriptor, in order (see the module docstring).

    `size` (None when unknown) only bounds the ring: an object smaller than the window needs
    no more than its own size."""

    def __init__(
        self,
        fd: int,
        *,
        size: int | None,
        window: int = WINDOW,
        checks: Sequence[StreamCheck] = (),
    ) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self._fd = fd
        self._cap = window if size is None else max(1, min(window, size))
        self._checks = tuple(checks)
        self._cond = threading.Condition()
        self._head = 0  # every byte below it was sent
        self._ready: dict[int, int] = {}  # buffered runs, start -> stop, inside the window
        self._draining = False  # one writer at a time sends to the stream
        self._broken = False  # a send failed: nothing more will be sent
        self._ring: mmap.mmap | None = None
        self._view: memoryview | None = None
        self.peak = 0  # most bytes ever buffered at once (tests, logs)
        self._buffered = 0

    @property
    def sent(self) -> int:
        """Bytes sent to the stream so far (all of them in offset order from 0)."""
        with self._cond:
            return self._head

    # --- the writers' side ------------------------------------------------------------
    def write(self, data: memoryview, offset: int, cancelled: Callable[[], bool]) -> bool:
        """Hand in `data` for `[offset, offset + len(data))`; True once it is sent or
        buffered, False when `cancelled()` became true while it waited, or an earlier send
        failed (nothing of `data` is kept then)."""
        n = len(data)
        ring: memoryview | None = None
        with self._cond:
            while True:
                if self._broken:
                    return False
                head = self._head
                if offset < head:  # already sent: a single stream that started over
                    skip = min(n, head - offset)
                    data, offset, n = data[skip:], offset + skip, n - skip
                    if n == 0:
                        return True
                if offset == head and not self._draining:
                    self._draining = True  # this writer sends, then drains
                    break
                if offset + n <= head + self._cap:
                    ring = self._ring_view()
                    self._buffered += n
                    self.peak = max(self.peak, self._buffered)
                    break
                if cancelled():
                    return False
                self._cond.wait(_POLL)
        if ring is not None:  # its ring slots are its own: copy outside the lock
            _copy_in(ring, self._cap, data, offset)
            with self._cond:
                self._ready[offset] = offset + n
                if self._draining or self._head not in self._ready:
                    return True
                self._draining = True  # the drainer left before these bytes were in
        try:
            if ring is None:
                self._send(data)
                with self._cond:
                    self._head = offset + n
                    self._cond.notify_all()
            self._drain()
        except BaseException:
            with self._cond:
                self._broken = True
                self._draining = False
                self._cond.notify_all()
            raise
        return True

    # --- the drainer's side -----------------------------------------------------------
    def _drain(self) -> None:
        """Send the buffered runs that continue the head, then give up the drain role."""
        while True:
            with self._cond:
                start = end = self._head
                while end in self._ready and end - start < _PIECE:
                    end = self._ready.pop(end)
                if end == start:
                    self._draining = False
                    self._cond.notify_all()
                    return
                ring = self._ring_view()
            first = min(end - start, self._cap - start % self._cap)
            self._send(ring[start % self._cap : start % self._cap + first])
            if first < end - start:
                self._send(ring[: end - start - first])
            with self._cond:
                self._head = end
                self._buffered -= end - start
                self._cond.notify_all()

    def _send(self, data: memoryview) -> None:
        for check in self._checks:
            check.update(data)
        fd = self._fd
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:  # a non-blocking descriptor (inherited): wait, as write would
                select.select([], [fd], [], _POLL * 20)
                continue
            data = data[n:]

    def _ring_view(self) -> memoryview:
        if self._view is None:
            self._ring = mmap.mmap(-1, self._cap, flags=mmap.MAP_PRIVATE)  # not shared memory
            self._view = memoryview(self._ring)
        return self._view

    # --- the end ----------------------------------------------------------------------
    def close(self) -> None:
        """Free the ring (after the workers stopped)."""
        with self._cond:
            view, ring = self._view, self._ring
            self._view = self._ring = None
            self._ready.clear()
        try:
            if view is not None:
                view.release()
            if ring is not None:
                ring.close()
        except BufferError:  # a writer that never came back still holds a slice: GC frees it
            pass

    def results(self) -> list[tuple[StreamCheck, str]]:
        """Each check with the value it computed over the bytes sent."""
        return [(check, check.result()) for check in self._checks]


def _copy_in(ring: memoryview, cap: int, data: memoryview, offset: int) -> None:
    pos = offset % cap
    first = min(len(data), cap - pos)
    ring[pos : pos + first] = data[:first]
    if first < len(data):
        ring[: len(data) - first] = data[first:]
