"""Progress of one batch run: counts and bytes, updated from worker threads and read by the
driver; its `stop` event is how an interrupt reaches every running engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .._models import Progress as Snapshot
from ._batch_models import ActiveObject, BatchProgress, ObjectResult

__all__ = ["Stopped", "Tracker"]


class Stopped(Exception):
    """Raised from the progress hook to stop an engine when the batch is interrupted."""


class Tracker:
    """Progress of the whole batch; updated from worker threads, read by the driver."""

    def __init__(self, on_result: Callable[[ObjectResult], None] | None) -> None:
        self._lock = threading.Lock()
        self._on_result = on_result
        self.results: list[ObjectResult] = []  # in the order they were reported to on_result
        self.by_rel: dict[str, ObjectResult] = {}
        self.stop = threading.Event()
        self._active: dict[str, tuple[int, int | None]] = {}
        self._finished_bytes = 0
        self.total_objects = self.total_bytes = self.skipped = self.done = self.failed = 0
        self._started = time.monotonic()

    def add(self, objects: int, nbytes: int, *, skipped: int = 0) -> None:
        """More objects to download, and skipped (the listing streamed in)."""
        with self._lock:
            self.skipped += skipped
            self.total_objects += objects
            self.total_bytes += nbytes

    def listener(self, rel: str) -> Callable[[Snapshot], None]:
        def update(snap: Snapshot) -> None:
            if self.stop.is_set():
                raise Stopped
            with self._lock:
                self._active[rel] = (snap.done, snap.total)

        return update

    def finish(self, rel: str, result: ObjectResult) -> None:
        """`result` is final (and journaled): counted, kept, and reported to `on_result`."""
        with self._lock:
            self._active.pop(rel, None)
            if result.status == "failed":
                self.failed += 1
            elif result.status == "skipped":
                self.skipped += 1
                self.total_objects -= 1
                self.total_bytes -= result.size or 0
            else:
                self.done += 1
                self._finished_bytes += result.size or 0
        self.results.append(result)
        self.by_rel[rel] = result
        if self._on_result is not None:
            self._on_result(result)

    def snapshot(self) -> BatchProgress:
        with self._lock:
            active = tuple(
                ActiveObject(path=rel, done=d, total=t) for rel, (d, t) in self._active.items()
            )
            in_flight = sum(a.done for a in active)
            return BatchProgress(
                objects_total=self.total_objects,
                objects_done=self.done,
                objects_failed=self.failed,
                objects_skipped=self.skipped,
                bytes_total=max(self.total_bytes, 0),
                bytes_done=self._finished_bytes + in_flight,
                elapsed=time.monotonic() - self._started,
                active=active,
            )
