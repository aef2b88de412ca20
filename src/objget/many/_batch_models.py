"""Values of a batch: what to fetch (`BatchItem`), what happened to each object
(`ObjectResult`), the whole run (`BatchResult`) and progress snapshots (`BatchProgress`); and
the `Tracker` they come from (updated from worker threads, read by the driver; its `stop`
event is how an interrupt reaches every running engine)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import _models  # its `Progress` is built at first use (a listener's): annotations only
from .._exit import error_kind
from .._models import DownloadResult

__all__ = [
    "ActiveObject", "BatchItem", "BatchProgress", "BatchResult", "ObjectResult", "Stopped",
    "Tracker", "failed",
]  # fmt: skip

_OWN = ("source", "path", "status", "size", "etag")  # always in to_dict, in this order
_FROM_RESULT = (
    "verified", "checksums", "bytes_fetched", "bytes_resumed", "elapsed", "retries", "restarted",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchItem:
    """One object to fetch: a source URL, and optionally where it goes (a path relative to the
    destination directory), its expected SHA-256 (hex) and the version to fetch."""

    source: str
    dest: str | None = None
    sha256: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ObjectResult:
    """What happened to one object.

    `status`: `downloaded`, `skipped` (done in an earlier run and unchanged), `failed`, or
    `planned` (dry run). `error_kind` says why it failed: `not-found`, `access-denied`,
    `changed`, `remote`, `integrity`, `network`, `local`, `locked`, `unsafe-path` or `usage`
    (the table in `_exit.py`, documented in docs/errors.md).
    """

    source: str
    path: str | None
    status: str
    size: int | None = None
    etag: str | None = None
    error: str | None = None
    error_kind: str | None = None
    result: DownloadResult | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: getattr(self, k) for k in _OWN}
        if self.error is not None:
            out["error"] = self.error
            out["error_kind"] = self.error_kind
        if self.result is not None:  # what the download did, as a single download says it
            full = self.result.to_dict()
            out.update((k, full[k]) for k in _FROM_RESULT)
        return out


def failed(
    source: str, path: str | None, exc: BaseException, *, size: int | None = None,
    etag: str | None = None, kind: str | None = None,
) -> ObjectResult:  # fmt: skip
    """The result of an object that failed with `exc` (its message names the source)."""
    text = str(exc) if source in str(exc) else f"{source}: {exc}"
    return ObjectResult(source=source, path=path, status="failed", size=size, etag=etag,
                        error=text, error_kind=kind or error_kind(exc))  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchResult:
    """Every object's result, in the order they finished, and the run's totals."""

    objects: tuple[ObjectResult, ...]
    elapsed: float
    dry_run: bool = False

    def _with(self, status: str) -> tuple[ObjectResult, ...]:
        return tuple(o for o in self.objects if o.status == status)

    @property
    def downloaded(self) -> tuple[ObjectResult, ...]:
        return self._with("downloaded")

    @property
    def skipped(self) -> tuple[ObjectResult, ...]:
        return self._with("skipped")

    @property
    def failed(self) -> tuple[ObjectResult, ...]:
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when no object failed."""
        return not self.failed

    @property
    def bytes_fetched(self) -> int:
        return sum(o.result.bytes_fetched for o in self.objects if o.result is not None)

    def summary(self) -> dict[str, object]:
        return {
            "objects": len(self.objects),
            "downloaded": len(self.downloaded),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "planned": len(self._with("planned")),
            "bytes_fetched": self.bytes_fetched,
            "elapsed": round(self.elapsed, 6),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ActiveObject:
    """An object being downloaded right now: its destination and bytes done of total."""

    path: str
    done: int
    total: int | None


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchProgress:
    """A snapshot of a batch. Counts are of this run's work: `objects_total` objects to
    download (skipped ones not included), of which `objects_done` finished and
    `objects_failed` failed; bytes likewise (resumed bytes count as done)."""

    objects_total: int
    objects_done: int
    objects_failed: int
    objects_skipped: int
    bytes_total: int
    bytes_done: int
    elapsed: float
    active: tuple[ActiveObject, ...] = ()

    @property
    def rate(self) -> float:
        """Average bytes per second of this run."""
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0


class Stopped(Exception):
    """Raised from the progress hook to stop an engine when the batch is interrupted."""


class Tracker:
    """Progress of the whole batch; updated from worker threads, read by the driver."""

    def __init__(self, on_result: Callable[[ObjectResult], None] | None) -> None:
        self._lock = threading.Lock()
        self._on_result = on_result
        self.results: list[ObjectResult] = []  # in the order they were reported to on_result
        self.by_rel: dict[str, ObjectResult] | None = None  # kept when set to a dict
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

    def listener(self, rel: str) -> Callable[[_models.Progress], None]:
        def update(snap: _models.Progress) -> None:
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
        if self.by_rel is not None:
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
