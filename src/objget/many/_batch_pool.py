"""The batch driver's worker threads: the part of `concurrent.futures` it uses (a pool's
`submit`, joined when its block ends; a future's result, exception, cancel and done callback;
`wait`), with the same behaviour, without importing `concurrent.futures`. That package loads
`logging` (and `traceback`, `string`, `textwrap`...): ~21 M instructions of a batch command's
~390 M start, and with `logging` loaded every `log` call of the library became a call into it
(`objget._log`), one per object and more.

Like `ThreadPoolExecutor`: a thread is started at a `submit` when no started one is idle, up
to `max_workers`; a work item raising (BaseException included) fails its future; leaving the
`with` block lets every submitted item run (or be skipped when cancelled) and joins the
threads. Threads are not daemons. One difference: `wait` counts a cancelled future done at
once, the standard library once a worker has taken it off the queue (the driver skips the
cancelled ones it is given either way).
"""

from __future__ import annotations

import threading
import time
from _queue import SimpleQueue
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from .._log import log

__all__ = ["CancelledError", "Future", "ThreadPoolExecutor", "wait"]

_T = TypeVar("_T")
_PENDING, _RUNNING, _CANCELLED, _FINISHED = range(4)


class CancelledError(Exception):
    """The result of a future cancelled before it ran."""


class Future(Generic[_T]):
    """One submitted call's outcome."""

    __slots__ = ("_callbacks", "_done", "_exception", "_lock", "_result", "_state")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state = _PENDING
        self._result: _T | None = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future[_T]], object]] = []

    def cancel(self) -> bool:
        """Cancel the call unless it is running or finished: whether it is cancelled."""
        with self._lock:
            if self._state in (_RUNNING, _FINISHED):
                return False
            if self._state == _CANCELLED:
                return True
            self._state = _CANCELLED
        self._settle()
        return True

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def done(self) -> bool:
        return self._state in (_CANCELLED, _FINISHED)

    def result(self, timeout: float | None = None) -> _T:
        """The call's value (waiting for it); its exception raised; CancelledError."""
        exc = self.exception(timeout)
        if exc is not None:
            raise exc
        return self._result  # type: ignore[return-value]  # set with _FINISHED

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The call's exception or None (waiting for it); CancelledError; TimeoutError."""
        if not self._done.wait(timeout):
            raise TimeoutError
        if self._state == _CANCELLED:
            raise CancelledError
        return self._exception

    def add_done_callback(self, fn: Callable[[Future[_T]], object]) -> None:
        """Call `fn(self)` when the future is done: now, in this thread, if it is."""
        with self._lock:
            if self._state not in (_CANCELLED, _FINISHED):
                self._callbacks.append(fn)
                return
        self._call(fn)

    def _start(self) -> bool:
        """The worker's: False when cancelled (then not run)."""
        with self._lock:
            if self._state == _CANCELLED:
                return False
            self._state = _RUNNING
            return True

    def _finish(self, result: _T | None, exception: BaseException | None) -> None:
        with self._lock:
            self._result, self._exception = result, exception
            self._state = _FINISHED
        self._settle()

    def _settle(self) -> None:
        self._done.set()
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            self._call(fn)

    def _call(self, fn: Callable[[Future[_T]], object]) -> None:
        try:
            fn(self)
        except Exception:  # what concurrent.futures does: logged, the others still called
            log.warning("a batch worker's done callback %r failed", fn)


class ThreadPoolExecutor:
    """Up to `max_workers` threads running submitted calls in order; a context manager."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max = max_workers
        self._prefix = thread_name_prefix or f"ThreadPoolExecutor-{id(self):x}"
        self._queue: SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._queue = SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._shut = False

    def __enter__(self) -> ThreadPoolExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def submit(self, fn: Callable[..., _T], /, *args: Any) -> Future[_T]:
        if self._shut:
            raise RuntimeError("cannot schedule new futures after shutdown")
        fut: Future[_T] = Future()
        self._queue.put((fut, fn, args))
        if not self._idle.acquire(timeout=0) and len(self._threads) < self._max:
            t = threading.Thread(name=f"{self._prefix}_{len(self._threads)}", target=self._work)
            t.start()
            self._threads.append(t)
        return fut

    def shutdown(self, wait: bool = True) -> None:
        """No more submits; the threads end once every submitted call ran (joined: `wait`)."""
        if not self._shut:
            self._shut = True
            self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()

    def _work(self) -> None:
        queue = self._queue
        while True:
            item = queue.get()
            if item is None:
                queue.put(None)  # for the next thread
                return
            fut, fn, args = item
            del item
            if fut._start():
                try:
                    value = fn(*args)
                except BaseException as exc:
                    fut._finish(None, exc)
                    del exc
                else:
                    fut._finish(value, None)
                    del value
            del fut, fn, args
            self._idle.release()


def wait(
    fs: Iterable[Future[Any]], timeout: float | None = None
) -> tuple[set[Future[Any]], set[Future[Any]]]:
    """Wait until every future in `fs` is done or `timeout` seconds passed: (done, not done)."""
    futures = set(fs)
    deadline = None if timeout is None else time.monotonic() + timeout
    for fut in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not fut._done.wait(left):
            break
    done = {f for f in futures if f.done()}
    return done, futures - done
