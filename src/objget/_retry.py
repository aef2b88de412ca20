"""PURE: retry decisions. Backoff with full jitter, Retry-After, one policy for every backend.

Like urllib3's `Retry`, the state is immutable: `RetryState.failed()` returns a new state.
The random draw is injected (`rand` in [0, 1)), so tests are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._config import RetryPolicy
from ._exceptions import DownloadError, RetriesExhausted, TLSError, TransportError

__all__ = ["RetryState", "after_failure", "backoff_delay", "is_retryable", "parse_retry_after"]

_MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if
    absent or unusable. Never negative, never more than a day."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    import email.utils  # only for an HTTP date: a plain download never loads `email`

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    try:
        delta = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    if math.isnan(delta):
        return None
    return min(max(0.0, delta), _MAX_RETRY_AFTER)


def is_retryable(error: BaseException) -> bool:
    """Transport failures (reset, timeout, stall, 5xx, 429) are retried; TLS failures,
    final remote answers, integrity and local errors are not."""
    return isinstance(error, TransportError) and not isinstance(error, TLSError)


def backoff_delay(policy: RetryPolicy, failures: int, rand: float) -> float:
    """Full jitter: uniform in [0, min(max_backoff, backoff * 2**(failures-1)))."""
    if failures <= 0:
        return 0.0
    cap = min(policy.max_backoff, policy.backoff * float(2 ** min(failures - 1, 32)))
    return cap * rand


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class RetryState:
    """Consecutive failures of one part without progress, and the time spent waiting on them.

    `failed()` returns the next state and the delay to sleep, or raises the error back when
    the policy is exhausted (the caller wraps it into `RetriesExhausted`).
    """

    policy: RetryPolicy
    failures: int = 0
    waited: float = 0.0

    def progressed(self) -> RetryState:
        """A part made progress: its consecutive-failure count starts again."""
        return RetryState(policy=self.policy)

    def exhausted(self, error: DownloadError) -> bool:
        return not is_retryable(error) or self.failures + 1 >= self.policy.attempts

    def failed(self, error: DownloadError, *, rand: float) -> tuple[RetryState, float]:
        """The state after `error` and how long to wait; `exhausted()` must be False."""
        failures = self.failures + 1
        delay = backoff_delay(self.policy, failures, rand)
        if isinstance(error, TransportError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.policy.max_backoff))
        if self.policy.deadline is not None:
            delay = min(delay, max(0.0, self.policy.deadline - self.waited))
        return RetryState(policy=self.policy, failures=failures, waited=self.waited + delay), delay

    def out_of_time(self) -> bool:
        return self.policy.deadline is not None and self.waited >= self.policy.deadline


def after_failure(
    state: RetryState, error: DownloadError, *, rand: float
) -> tuple[RetryState, float]:
    """The next state and the delay before retrying; re-raises `error` when it is not
    retryable and raises RetriesExhausted (chained from it) when the policy is spent."""
    if not is_retryable(error):
        raise error
    if state.exhausted(error) or state.out_of_time():
        attempts = state.failures + 1
        raise RetriesExhausted(
            f"{error} (gave up after {attempts} attempts)",
            attempts=attempts,
            last_error=error,
            source=error.source,
        ) from error
    return state.failed(error, rand=rand)
