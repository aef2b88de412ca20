"""The retry loop: one attempt after another under the `RetryPolicy`, waiting between them.

`_retry` decides (which error is retried, how long to wait, when the policy is spent); this
module is its I/O edge, the one loop that acts on those decisions for every request objget
retries: the HEAD, the listing, the small-object GET and each worker's ranged GET.

`op(attempts)` makes one attempt. A `TransportError` it raises is retried when `_retry`
says so (`on_retry(error, delay)` is told, then `wait(delay)`), else it propagates:
final errors as they are, a spent policy as `RetriesExhausted` chained from the last
error. An op that resumes where the failed attempt stopped (a ranged GET from the last
byte written, a listing after the last key seen) calls `attempts.progressed()` when it
moved forward, so only failures without progress in between count against the policy.
`wait` may raise to stop the loop (the engine's wait raises when the download is
cancelled); its return value is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from .._config import RetryPolicy
from .._exceptions import TransportError
from .._log import log

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Any, Protocol, TypeVar

    from .._retry import RetryState

    T = TypeVar("T")

    class Lister(Protocol):
        def __call__(self, prefix: str, *, start_after: str | None = None) -> Iterator[Any]: ...


__all__ = ["Attempts", "iter_with_retry", "list_with_retry", "run_with_retry"]


OnRetry = Callable[[TransportError, float], object]
Wait = Callable[[float], object]


def _random() -> float:
    """`random.random()`, the module loaded at the first retry: not at every start."""
    import random

    return random.random()


class Attempts:
    """The retry state of one loop, handed to each attempt. One thread only.

    `retries`: how many attempts have failed and been retried so far."""

    __slots__ = ("_on_retry", "_policy", "_rand", "_state", "_wait", "retries")

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        on_retry: OnRetry | None,
        wait: Wait,
        rand: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._state: RetryState | None = None  # made on the first failure only
        self._on_retry = on_retry
        self._wait = wait
        self._rand = rand
        self.retries = 0

    def progressed(self) -> None:
        """The attempt moved forward: the failures before it no longer count."""
        self._state = None

    def failed(self, error: TransportError) -> None:
        """After `error`: raise it (final) or RetriesExhausted (policy spent), else report
        the retry and wait before the next attempt."""
        from .._retry import RetryState, after_failure  # at the first failure: not at start

        state = self._state if self._state is not None else RetryState(policy=self._policy)
        self._state, delay = after_failure(state, error, rand=self._rand())
        self.retries += 1
        if self._on_retry is not None:
            self._on_retry(error, delay)
        self._wait(delay)


def run_with_retry(
    op: Callable[[Attempts], T],
    *,
    policy: RetryPolicy,
    on_retry: OnRetry | None = None,
    wait: Wait = time.sleep,
    rand: Callable[[], float] = _random,
) -> T:
    """`op(attempts)`'s result, retried under `policy` while it raises retryable errors.

    >>> from objget import RetryPolicy, TransportError
    >>> answers = iter([TransportError("reset"), "ok"])
    >>> def op(attempts):
    ...     answer = next(answers)
    ...     if isinstance(answer, Exception):
    ...         raise answer
    ...     return answer, attempts.retries
    >>> run_with_retry(op, policy=RetryPolicy(attempts=3), wait=lambda delay: None)
    ('ok', 1)
    """
    attempts = Attempts(policy, on_retry=on_retry, wait=wait, rand=rand)
    while True:
        try:
            return op(attempts)
        except TransportError as exc:
            attempts.failed(exc)


def iter_with_retry(
    op: Callable[[Attempts], Iterable[T]],
    *,
    policy: RetryPolicy,
    on_retry: OnRetry | None = None,
    wait: Wait = time.sleep,
    rand: Callable[[], float] = _random,
) -> Iterator[T]:
    """The items of `op(attempts)`, which is called again (to resume where it stopped) when
    iterating it raises a retryable error; items already yielded stay yielded."""
    attempts = Attempts(policy, on_retry=on_retry, wait=wait, rand=rand)
    while True:
        try:
            yield from op(attempts)
            return
        except TransportError as exc:
            attempts.failed(exc)


def list_with_retry(
    lister: Lister, prefix: str, policy: RetryPolicy
) -> Iterator[tuple[str, int, str | None, str | None]]:
    """The listing of `prefix` as (key, size, ETag, LastModified), resumed after the last key
    seen when a page fails retryably."""
    last: str | None = None

    def listing(attempts: Attempts) -> Iterator[tuple[str, int, str | None, str | None]]:
        nonlocal last
        for obj in lister(prefix, start_after=last):
            if last is not None and obj[0] <= last:
                continue
            last = obj[0]
            attempts.progressed()
            yield obj[0], obj[1], obj[2], (obj[3] if len(obj) > 3 else None)

    def say(exc: TransportError, delay: float) -> None:
        log.info("listing %s failed (%s); resuming after %r in %.2f s", prefix, exc, last, delay)

    return iter_with_retry(listing, policy=policy, on_retry=say)
