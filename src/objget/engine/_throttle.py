"""A byte-rate limit shared by every worker of one download, or of a whole batch (a token
bucket).

One `RateLimiter` is the bucket. Each taker borrows it through `bound(wait)`: a view whose
`take` sleeps through that taker's own `wait` (an engine's cancel event, a batch's stop
event), so a stop wakes only its own sleepers while the bytes still come from one bucket.
A batch makes one limiter and hands it to every object's engine and to the small-object
path: `--limit-rate` caps the sum of all of them, not each object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["BoundLimiter", "RateLimiter"]


class RateLimiter:
    """Token bucket: `take(n)` blocks until `n` bytes may be read; burst of ~0.25 s.
    Thread-safe: any number of threads may take from one limiter.

    `chunk` is the read size workers should use so the limit stays smooth.
    """

    def __init__(
        self,
        rate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(16 * 1024, rate // 4)
        self.chunk = max(16 * 1024, min(1024 * 1024, rate // 16))
        self._clock = clock
        self._wait = wait or time.sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._last = clock()

    def take(
        self,
        n: int,
        cancelled: Callable[[], bool] = lambda: False,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        """Account `n` bytes and sleep (through `wait`, else the limiter's own) until the
        bucket's debt they make is paid off; no sleep once `cancelled()`."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        if debt > 0 and not cancelled():
            (wait or self._wait)(debt / self.rate)

    def bound(self, wait: Callable[[float], object]) -> BoundLimiter:
        """This bucket, taken from by someone who sleeps through `wait`."""
        return BoundLimiter(self, wait)


class BoundLimiter:
    """A shared `RateLimiter` as one taker sees it: the same bucket, its own `wait`."""

    __slots__ = ("_shared", "_wait", "chunk", "rate")

    def __init__(self, shared: RateLimiter, wait: Callable[[float], object]) -> None:
        self._shared = shared
        self._wait = wait
        self.chunk = shared.chunk
        self.rate = shared.rate

    def take(self, n: int, cancelled: Callable[[], bool] = lambda: False) -> None:
        self._shared.take(n, cancelled, self._wait)
