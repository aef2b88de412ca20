"""The shared state of one running download: unclaimed parts, claims in flight, the ledger of
bytes written, and counters. One lock guards it all; every method is short.

A claim is a range a worker is streaming. Its `pos` only grows (the owner reserves bytes after
each read), its `stop` only shrinks (an idle worker steals the upper half, or the owner retires
and gives its remainder back). Reservation and stealing happen under the lock, so two workers
never write the same byte and the ledger never overlaps.

With `live` tracking, the scheduler also keeps the segments committed since the last durable
checkpoint's snapshot, each with its own CRC (never merged), for the live record (`_live`).

A claim whose stream got bytes and then none for `stale` seconds (a capped server pacing it
in lumps, or a stall) goes back to the queue, from its `pos`, when an idle worker finds the
queue empty: its read is broken (its body's `abort`, when it has one) so its worker moves on,
keeping no byte past `pos`, and the remainder is claimed again in parts sized for the streams
running. A request still waiting for its first byte is never taken (a long round trip is no
stall; the read timeout covers a dead one). Off (`stale` infinite) unless the engine sets it.
With `slow_streams` (the controller's verdict), guided parts may shrink to `min_steal`; with
`fast_streams` they stay at least `FAST_PART` (fewer requests where a request's cost on the
server is not small against its time), idle streams steal the rest at the end, and every
edge cut falls on a multiple of `EDGE` where the pieces allow (`_plan.cut_point`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from .._models import ByteRange
from ..backends._base import is_abortable
from ._plan import (
    ALIGN,
    EDGE,
    FAST_PART,
    MIN_PART,
    Combine,
    Span,
    add_span,
    cut_point,
    guided_size,
    merge_spans,
    steal_point,
)

__all__ = ["Claim", "Scheduler"]


class Claim:
    """A range one worker streams. `mark` is `(segment start, written end, segment CRC)`:
    bytes `[mark[0], mark[1])` are written (pwrite returned) but not yet in the ledger. The
    owner replaces the whole tuple after each write, so a snapshot never sees a torn mark.

    Mutable state with one owner, compared by identity: a plain class, not a dataclass (whose
    generated methods are compiled when the module is imported, on every download)."""

    __slots__ = ("body", "crc0", "mark", "moved", "pos", "stop")

    def __init__(self, pos: int, stop: int, *, crc0: int = 0) -> None:
        self.pos = pos
        self.stop = stop
        self.crc0 = crc0
        self.mark = (pos, pos, crc0)
        self.body: object | None = None
        self.moved = float("inf")  # when the owner last reserved a byte (none yet: never silent)

    def __repr__(self) -> str:
        return f"Claim(pos={self.pos}, stop={self.stop}, mark={self.mark})"

    @property
    def written(self) -> int:
        return self.mark[1]


class Scheduler:
    """Queue of missing parts + in-flight claims + done spans (the ledger)."""

    def __init__(
        self,
        parts: Iterable[ByteRange],
        *,
        done: Iterable[Span] = (),
        combine: Combine | None = None,
        min_steal: int = 4 * 1024 * 1024,
        initial_crc: int = 0,
        guided: bool = False,
        live: Iterable[Span] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.Lock()
        self._clock = clock
        self.stale = float("inf")  # seconds of silence after which a claim may be taken over
        self.slow_streams = False  # set by the engine from the stream controller
        self.fast_streams = False  # (both: each stream under / over a rate, see `_next_part`)
        self._queue: deque[ByteRange] = deque(parts)
        self._active: list[Claim] = []
        self._spans: list[Span] = list(done)
        self._combine = combine
        self._min_steal = min_steal
        self._crc0 = initial_crc
        self._guided = guided  # parts are cut at claim time (see `guided_size`)
        self.fetched = 0
        self.retries = 0
        self._commits = 0  # sequence number of the last commit
        # (commit number, segment) for the live record; None: not tracked
        self._live = None if live is None else [(0, s) for s in live]

    # --- claiming -------------------------------------------------------------------
    def claim(self, streams: int = 1) -> Claim | None:
        """Next unclaimed part (a silent claim's remainder goes back to the queue when it is
        empty), or the upper half of the largest in-flight remainder. With `guided`, the part
        is cut from the queue's first range now, sized for `streams`. On slow streams the
        largest remainder is split first when it is over twice that part (one stream would
        carry it alone to the end), and pieces may be a quarter of `min_steal`."""
        with self.lock:
            if not self._queue:
                self._take_silent()
            best = max(self._active, key=lambda c: c.stop - c.pos, default=None)
            slow = self.slow_streams
            rng = self._next_part(streams) if self._queue else None
            if best is not None and (rng is None or (slow and best.stop - best.pos > 2 * len(rng))):
                piece = self._min_steal // (4 if slow else 1)
                point = steal_point(best.pos, best.stop, piece, edge=self._edge())
                if point is not None:
                    stolen = self._add(point, best.stop)
                    best.stop = point
                    return stolen
            if rng is None:
                return None
            head = self._queue.popleft()
            if rng.stop < head.stop:
                self._queue.appendleft(ByteRange(rng.stop, head.stop))
            return self._add(rng.start, rng.stop)

    def _next_part(self, streams: int) -> ByteRange:
        """The part a claim from the queue takes now (see `claim`)."""
        rng = self._queue[0]
        if self._guided:
            unclaimed = sum(r.stop - r.start for r in self._queue)
            floor = FAST_PART if self.fast_streams else MIN_PART
            floor = min(self._min_steal, MIN_PART) if self.slow_streams else floor
            take = guided_size(unclaimed, streams, floor)
            # on an aligned edge (the store's pieces), no tail smaller than half
            rng = ByteRange(rng.start, cut_point(rng.start, take, rng.stop, edge=self._edge()))
        return rng

    def _edge(self) -> int:
        """What edges cut now align to: the store's pieces (EDGE) for fast streams, where the
        server's work is what counts; else ALIGN, so that parts stay even on a capped path."""
        return EDGE if self.fast_streams and not self.slow_streams else ALIGN

    def _take_silent(self) -> None:
        """The remainder of the claim silent longest back to the queue; break its read."""
        silent = self._silent()
        if silent is not None:
            self._queue.append(ByteRange(silent.pos, silent.stop))
            silent.stop = silent.pos
            if is_abortable(silent.body):  # isinstance(body, Abortable), without typing
                with contextlib.suppress(Exception):  # else it ends at its next read
                    silent.body.abort()

    def _add(self, start: int, stop: int) -> Claim:
        c = Claim(start, stop, crc0=self._crc0)
        self._active.append(c)
        return c

    def _silent(self) -> Claim | None:
        """The claim silent longest among those silent for `stale` seconds."""
        if self.stale == float("inf"):
            return None
        old = self._clock() - self.stale
        silent = [c for c in self._active if c.stop > c.pos and c.moved <= old]
        return min(silent, key=lambda c: c.moved) if silent else None

    def has_work(self) -> bool:
        with self.lock:
            if self._queue or self._silent() is not None:
                return True
            return any(c.stop - c.pos >= 2 * self._min_steal for c in self._active)

    def reserve(self, claim: Claim, n: int) -> int:
        """The owner read `n` bytes at `claim.pos`: how many of them are still its to write."""
        with self.lock:
            take = max(0, min(n, claim.stop - claim.pos))
            claim.pos += take
            if take:
                claim.moved = self._clock()
            self.fetched += take
            return take

    def rewind(self, claim: Claim) -> None:
        """Start `claim` again from its segment start (servers without ranges)."""
        with self.lock:
            start = claim.mark[0]
            self.fetched -= claim.pos - start
            claim.pos = start
            claim.mark = (start, start, self._crc0)

    def release(self, claim: Claim) -> None:
        """The owner stops streaming `claim` (finished, retiring or failed for good): the
        unwritten remainder goes back to the front of the queue."""
        with self.lock:
            if claim.written < claim.stop:
                self._queue.appendleft(ByteRange(claim.written, claim.stop))
                claim.stop = claim.pos = claim.written
            if claim in self._active:
                self._active.remove(claim)

    def active_bodies(self) -> list[object]:
        with self.lock:
            return [c.body for c in self._active if c.body is not None]

    # --- the ledger -----------------------------------------------------------------
    def commit(self, claim: Claim) -> None:
        """Move the claim's written segment into the ledger (and, with live tracking, into the
        live segments, whole, with its own CRC)."""
        with self.lock:
            start, end, crc = claim.mark
            if end > start:
                span = Span(start, end, crc if self._combine else None)
                self._spans = add_span(self._spans, span, self._combine)
                self._commits += 1
                if self._live is not None:
                    self._live.append((self._commits, Span(start, end, crc)))
            claim.mark = (end, end, self._crc0)

    def _snapshot(self) -> tuple[tuple[Span, ...], tuple[Span, ...]]:
        """The ledger, and the segments in-flight claims have written so far (each may touch
        a ledger span; none overlaps one). Cheap: no CRC is combined under the lock."""
        pending = [
            Span(s, e, crc if self._combine else None)
            for s, e, crc in (c.mark for c in self._active)
            if e > s
        ]
        return tuple(self._spans), tuple(sorted(pending, key=lambda sp: sp.start))

    def spans(self) -> tuple[Span, ...]:
        """The ledger plus every byte in-flight claims have written so far, merged."""
        return self.durable_view()[0]

    def durable_view(self) -> tuple[tuple[Span, ...], int]:
        """`spans()` and the number of the last commit they include (for `saved`)."""
        with self.lock:
            ledger, pending = self._snapshot()
            seq = self._commits
        return merge_spans(ledger, pending, self._combine), seq

    def saved(self, seq: int) -> None:
        """A durable checkpoint of `durable_view()` numbered `seq` is on disk: the live record
        no longer needs the segments committed up to it."""
        with self.lock:
            if self._live is not None:
                self._live = [item for item in self._live if item[0] > seq]

    def live_segments(self) -> tuple[Span, ...]:
        """What the live record holds: the segments committed since the last durable save and
        those in-flight claims have written so far, sorted, each with its own CRC."""
        with self.lock:
            segments = [s for _, s in self._live or ()]
            segments.extend(
                Span(s, e, crc) for s, e, crc in (c.mark for c in self._active) if e > s
            )
        return tuple(sorted(segments, key=lambda sp: sp.start))  # they never overlap

    def left(self) -> int:
        """Bytes not yet fetched: unclaimed, and the rest of every claim in flight."""
        with self.lock:
            queued = sum(r.stop - r.start for r in self._queue)
            return queued + sum(c.stop - c.pos for c in self._active)

    def add_retry(self) -> None:
        with self.lock:
            self.retries += 1

    def finished(self) -> bool:
        with self.lock:
            return not self._queue and not self._active
