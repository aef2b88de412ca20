"""A global byte-rate limit shared by all workers of one download (a token bucket)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket: `take(n)` blocks until `n` bytes may be read; burst of ~0.25 s.

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

    def take(self, n: int, cancelled: Callable[[], bool] = lambda: False) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        if debt > 0 and not cancelled():
            self._wait(debt / self.rate)
