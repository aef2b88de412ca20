"""The gate every worker passes for each write to the data file, so a stopped download writes
no byte after its engine has returned.

Stopping a download joins its workers, but only for a bounded time: a worker stuck in a read
that nothing could break may outlive the stop. Its caller then closes the data file's
descriptor, and the number may be reused at once for another file. The gate makes that safe:
once `close` returns, no write starts again (`enter` says no), and every write that started
before has returned. Two uncontended lock round trips per write (one per buffer, 256 KiB by
default), against the pwrite itself.
"""

from __future__ import annotations

import threading

__all__ = ["WriteGate"]


class WriteGate:
    """`enter()` before each write (False: closed, do not write), `leave()` after it."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._open = True
        self._writing = 0

    def enter(self) -> bool:
        with self._cond:
            if not self._open:
                return False
            self._writing += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._writing -= 1
            if self._writing == 0:
                self._cond.notify_all()

    def close(self, *, timeout: float) -> bool:
        """Let no write start again, and wait (up to `timeout` seconds) for those in progress.
        True when none is left."""
        with self._cond:
            self._open = False
            return self._cond.wait_for(lambda: self._writing == 0, timeout)
