"""The shared state of one running download: unclaimed parts, claims in flight, the ledger of
bytes written, and counters. One lock guards it all; every method is short.

A claim is a range a worker is streaming. Its `pos` only grows (the owner reserves bytes after
each read), its `stop` only shrinks (an idle worker steals the upper half, or the owner retires
and gives its remainder back). Reservation and stealing happen under the lock, so two workers
never write the same byte and the ledger never overlaps.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ._models import ByteRange
from ._plan import Combine, Span, add_span, steal_point

__all__ = ["Claim", "Scheduler"]


@dataclass(eq=False, slots=True)
class Claim:
    pos: int
    stop: int
    written: int = 0
    seg_start: int = 0
    seg_crc: int = 0
    body: object | None = field(default=None)

    def __post_init__(self) -> None:
        self.seg_start = self.written = self.pos


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
    ) -> None:
        self.lock = threading.Lock()
        self._queue: deque[ByteRange] = deque(parts)
        self._active: list[Claim] = []
        self._spans: list[Span] = list(done)
        self._combine = combine
        self._min_steal = min_steal
        self._crc0 = initial_crc
        self.fetched = 0
        self.retries = 0

    # --- claiming -------------------------------------------------------------------
    def claim(self) -> Claim | None:
        """Next unclaimed part, or the upper half of the largest in-flight remainder."""
        with self.lock:
            if self._queue:
                rng = self._queue.popleft()
                c = Claim(rng.start, rng.stop, seg_crc=self._crc0)
                self._active.append(c)
                return c
            best: Claim | None = None
            for c in self._active:
                if best is None or c.stop - c.pos > best.stop - best.pos:
                    best = c
            if best is None:
                return None
            point = steal_point(best.pos, best.stop, self._min_steal)
            if point is None:
                return None
            stolen = Claim(point, best.stop, seg_crc=self._crc0)
            best.stop = point
            self._active.append(stolen)
            return stolen

    def has_work(self) -> bool:
        with self.lock:
            if self._queue:
                return True
            return any(c.stop - c.pos >= 2 * self._min_steal for c in self._active)

    def reserve(self, claim: Claim, n: int) -> int:
        """The owner read `n` bytes at `claim.pos`: how many of them are still its to write."""
        with self.lock:
            take = max(0, min(n, claim.stop - claim.pos))
            claim.pos += take
            self.fetched += take
            return take

    def rewind(self, claim: Claim) -> None:
        """Start `claim` again from its segment start (servers without ranges)."""
        with self.lock:
            self.fetched -= claim.pos - claim.seg_start
            claim.pos = claim.written = claim.seg_start
            claim.seg_crc = self._crc0

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
        """Bytes `[claim.seg_start, claim.written)` are written (pwrite returned): record them."""
        end = claim.written
        if end <= claim.seg_start:
            return
        span = Span(claim.seg_start, end, claim.seg_crc if self._combine else None)
        with self.lock:
            self._spans = add_span(self._spans, span, self._combine)
        claim.seg_start = end
        claim.seg_crc = self._crc0

    def spans(self) -> tuple[Span, ...]:
        with self.lock:
            return tuple(self._spans)

    def add_retry(self) -> None:
        with self.lock:
            self.retries += 1

    def finished(self) -> bool:
        with self.lock:
            return not self._queue and not self._active
