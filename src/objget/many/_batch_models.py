"""Values of a batch: what to fetch (`BatchItem`), what happened to each object
(`ObjectResult`), the whole run (`BatchResult`) and progress snapshots (`BatchProgress`)."""

from __future__ import annotations

from dataclasses import dataclass

from .._exit import error_kind
from .._models import DownloadResult

__all__ = ["ActiveObject", "BatchItem", "BatchProgress", "BatchResult", "ObjectResult", "failed"]

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
