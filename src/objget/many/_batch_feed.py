"""The batch's listing, run in a thread of its own while the downloads of what it listed so
far already run: the driver takes what arrived at each turn of its loop, checked against the
journal and the destination by `admit` (in the driver's thread).

The first item after a take wakes the driver (`wake`); an error of the listing is raised by
the driver's next `take`. A driver that wants the whole listing first (Ray's) reads it in
its own thread (`drain`). `close()` joins the thread for a bounded time only: after an
interrupt, a listing request still waiting for its answer is left to the (daemon) thread,
which only lists and writes nothing, rather than holding up the exit for a read timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._batch_models import ObjectResult
    from ._batch_sources import Planned

__all__ = ["Admit", "Feed"]

# the listing's decided items -> (the objects to download, how many were skipped as done);
# batch.py's `admit`: the journal and destination checks (it reports the refused and skipped)
Admit = Callable[[list["Planned | ObjectResult"]], tuple[list["Planned"], int]]


class Feed:
    """The listing's items, made in a background thread, taken in order by one driver."""

    def __init__(
        self, items: Iterator[Planned | ObjectResult], admit: Admit, *, join_timeout: float = 2.0
    ) -> None:
        self._items = items
        self._admit = admit
        self._lock = threading.Lock()
        self._got: list[Planned | ObjectResult] = []
        self._ended = self._signalled = False
        self._error: BaseException | None = None
        self._wake: Callable[[], None] = lambda: None
        self._stop = threading.Event()
        self._join_timeout = join_timeout
        self._thread = threading.Thread(target=self._pull, name="objget-listing", daemon=True)

    def start(self, wake: Callable[[], None] | None = None) -> None:
        """Start the thread (again: set `wake` and call it); `wake()` says items wait."""
        self._wake = wake or self._wake
        if self._thread.ident is None:
            self._thread.start()
        else:
            self._wake()

    def _pull(self) -> None:
        try:
            for item in self._items:
                with self._lock:
                    self._got.append(item)
                    signal = not self._signalled
                    self._signalled = True
                if signal:
                    self._wake()
                if self._stop.is_set():
                    return
        except BaseException as exc:  # handed to the driver, raised there
            with self._lock:
                self._error = exc
        finally:
            with self._lock:
                self._ended = True
            self._wake()

    def take(self) -> tuple[list[Planned], int, bool]:
        """(the objects to download that arrived since the last take, how many more `admit`
        skipped as done, whether that was all); the iterator's error, once every item before
        it was taken. `admit` runs here, in the driver's thread."""
        with self._lock:
            got, self._got = self._got, []
            self._signalled = False
            ended, error = self._ended, self._error
        if error is not None and not got:
            raise error
        todo, skipped = self._admit(got) if got else ([], 0)
        return todo, skipped, ended and error is None

    def drain(self) -> tuple[list[Planned], int]:
        """The whole listing, read in the caller's thread (no thread started): (the objects
        to download, how many `admit` skipped as done); the listing's error is raised."""
        self._pull()
        todo, skipped, _ = self.take()
        self.take()  # the error that came after the last items, if one did
        return todo, skipped

    def close(self, wait: float | None = None) -> None:
        """Stop the thread after its current item and wait for it (bounded; `wait` s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._join_timeout if wait is None else wait)
        close = getattr(self._items, "close", None)
        if close is not None and not self._thread.is_alive():
            close()
