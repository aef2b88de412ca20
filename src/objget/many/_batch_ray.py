"""The work a Ray task does, as plain functions (no Ray import here): a group of small objects,
or one byte range of a large object written into the shared temp file. What crosses the task
boundary is picklable: URLs (each worker resolves its own backend and credentials), frozen
configs, the object's metadata. A range task is the engine's window phases
(`_windows.prepare_window`, `_phases.fetch`): its checkpoint, CRC'd spans and their read-back
on resume are the engine's, so a task run again after its worker died resumes on any node.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .._config import DownloadConfig
from .._exceptions import DownloadError
from .._exit import error_kind
from .._models import ByteRange, ObjectMeta
from ..backends import BackendOptions, resolve
from ..backends._base import Backend
from ..engine._downloader import Downloader
from ..engine._phases import Span, fetch
from ..engine._windows import prepare_window
from ._batch_models import ObjectResult, failed

__all__ = ["GroupEntry", "RangeJob", "RangeOutcome", "picklable", "run_group", "run_range"]


@dataclass(frozen=True, kw_only=True, slots=True)
class GroupEntry:
    source: str
    dest: str
    version_id: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeJob:
    source: str
    dest: str
    start: int
    stop: int
    meta: ObjectMeta  # picklable()


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeOutcome:
    start: int
    stop: int
    spans: tuple[Span, ...] = ()
    resumed: tuple[Span, ...] = ()  # from the checkpoint of an earlier attempt (checked)
    error: str | None = None
    error_kind: str | None = None
    fetched: int = 0


def picklable(meta: ObjectMeta) -> ObjectMeta:
    """`meta` with its checksums in a dict (the default, a mappingproxy, does not pickle)."""
    return dataclasses.replace(meta, checksums=dict(meta.checksums))


def run_group(
    entries: list[GroupEntry], config: DownloadConfig, options: BackendOptions, threads: int
) -> list[ObjectResult]:
    """Download whole objects (one connection each, `threads` at a time) in this worker."""
    per_object = dataclasses.replace(config, max_workers=1, min_workers=1, checksum=None)

    def one(dl: Downloader, e: GroupEntry) -> ObjectResult:
        sha = dataclasses.replace(per_object, checksum=f"sha256:{e.sha256}") if e.sha256 else None
        try:
            found = resolve(e.source, dl.transport, options, cache)
            r = dl.download_object(found.backend, found.key, e.dest,
                                   version_id=e.version_id or found.version_id,
                                   config=sha or per_object)  # fmt: skip
        except (DownloadError, OSError, ValueError) as exc:
            return failed(e.source, e.dest, exc, size=e.size)
        return ObjectResult(
            source=e.source, path=e.dest, status="downloaded", size=r.size, etag=r.etag, result=r
        )

    cache: dict[tuple[str, str], Backend] = {}
    with Downloader(config=dataclasses.replace(config, max_workers=threads), options=options) as dl:
        dl.transport  # noqa: B018 - one pool, made before the threads share it
        with ThreadPoolExecutor(threads, thread_name_prefix="objget-ray") as pool:
            return list(pool.map(lambda e: one(dl, e), entries))


def run_range(job: RangeJob, config: DownloadConfig, options: BackendOptions) -> RangeOutcome:
    """Fetch bytes [start, stop) of the object into the shared temp file (made by the driver),
    resuming from this window's checkpoint once its spans read back right."""
    meta = job.meta
    try:
        with Downloader(config=config, options=options) as dl:
            found = resolve(job.source, dl.transport, options, {})
            display = found.backend.display(found.key)
            window = ByteRange(job.start, job.stop)
            with prepare_window(
                found.backend, found.key, meta, job.dest, window, display=display, config=config
            ) as w:
                fetch(w)
                return RangeOutcome(start=job.start, stop=job.stop, spans=w.spans,
                                    resumed=w.resumed, fetched=w.fetched)  # fmt: skip
    except (DownloadError, OSError, ValueError) as exc:
        return RangeOutcome(
            start=job.start, stop=job.stop, error=f"{job.source}: {exc}", error_kind=error_kind(exc)
        )
