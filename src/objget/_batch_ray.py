"""The work a Ray task does, as plain functions (no Ray import here): a group of small objects,
or one byte range of a large object written into the shared temp file.

Everything crossing the task boundary is picklable: URLs (each worker resolves its own
backend and credentials), frozen configs, and the object's identity as a dict. A range task
keeps its own checkpoint (`DEST.objget-r<start>.ckpt`) and lock, so a retried task — after a
worker died — resumes from the bytes the lost one saved, on any node that sees the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import _checkpoint as ck
from ._batch_models import ObjectResult, error_kind
from ._config import DownloadConfig
from ._downloader import Downloader
from ._exceptions import DownloadError
from ._fileio import open_part
from ._models import ByteRange, ObjectMeta
from ._plan import Span, auto_part_size, cut_parts, missing_ranges
from ._scheduler import Scheduler
from .backends import BackendOptions, resolve
from .backends._base import Backend

__all__ = [
    "GroupEntry",
    "RangeJob",
    "RangeOutcome",
    "meta_from",
    "meta_to",
    "run_group",
    "run_range",
]


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
    meta: dict[str, object]


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeOutcome:
    start: int
    stop: int
    spans: tuple[Span, ...] = ()
    error: str | None = None
    error_kind: str | None = None
    fetched: int = 0


def meta_to(meta: ObjectMeta) -> dict[str, object]:
    d = dataclasses.asdict(meta)
    d["checksums"] = dict(meta.checksums)
    return d


def meta_from(d: Mapping[str, object]) -> ObjectMeta:
    return ObjectMeta(**d)  # type: ignore[arg-type]


def range_paths(dest: str, start: int) -> ck.Paths:
    base = ck.Paths.beside(dest)
    return ck.Paths(
        dest=dest,
        part=base.part,
        checkpoint=f"{dest}.objget-r{start}.ckpt",
        lock=f"{dest}.objget-r{start}.lock",
    )


def run_group(
    entries: list[GroupEntry], config: DownloadConfig, options: BackendOptions, threads: int
) -> list[ObjectResult]:
    """Download whole objects (one connection each, `threads` at a time) in this worker."""
    per_object = dataclasses.replace(config, max_workers=1, min_workers=1, checksum=None)

    def one(dl: Downloader, e: GroupEntry) -> ObjectResult:
        try:
            found = resolve(e.source, dl.transport, options, cache)
            cfg = per_object
            if e.sha256:
                cfg = dataclasses.replace(per_object, checksum=f"sha256:{e.sha256}")
            r = dl.download_object(
                found.backend,
                found.key,
                ck.Paths.beside(e.dest),
                version_id=e.version_id or found.version_id,
                config=cfg,
            )
        except (DownloadError, OSError, ValueError) as exc:
            text = str(exc) if e.source in str(exc) else f"{e.source}: {exc}"
            return ObjectResult(
                source=e.source, path=e.dest, status="failed", size=e.size, error=text,
                error_kind=error_kind(exc),
            )  # fmt: skip
        return ObjectResult(
            source=e.source, path=e.dest, status="downloaded", size=r.size, etag=r.etag, result=r
        )

    cache: dict[tuple[str, str], Backend] = {}
    with Downloader(config=dataclasses.replace(config, max_workers=threads), options=options) as dl:
        dl.transport  # noqa: B018 - one pool, made before the threads share it
        with ThreadPoolExecutor(threads, thread_name_prefix="objget-ray") as pool:
            return list(pool.map(lambda e: one(dl, e), entries))


def run_range(job: RangeJob, config: DownloadConfig, options: BackendOptions) -> RangeOutcome:
    """Fetch bytes [start, stop) of the object into the shared temp file (created and sized
    by the driver), resuming from this range's own checkpoint."""
    from ._engine import Engine, EngineHooks

    meta = meta_from(job.meta)
    assert meta.size is not None
    paths = range_paths(job.dest, job.start)
    try:
        with Downloader(config=config, options=options) as dl:
            found = resolve(job.source, dl.transport, options, {})
            backend = found.backend
            display = backend.display(found.key)
            checksummer = backend.checksummer(meta)
            with ck.DestLock(paths.lock, dest=job.dest, source=display):
                spans = _resume(paths, display, meta, checksummer.name if checksummer else None)
                done_here = sum(s.stop - s.start for s in spans)
                todo = [
                    ByteRange(max(r.start, job.start), min(r.stop, job.stop))
                    for r in missing_ranges(spans, meta.size)
                    if r.stop > job.start and r.start < job.stop
                ]
                part = config.part_size or auto_part_size(job.stop - job.start, config.max_workers)
                sched = Scheduler(
                    cut_parts(todo, part),
                    done=spans,
                    combine=checksummer.combine if checksummer else None,
                    min_steal=max(config.buffer_size * 2, 1024 * 1024),
                )
                fd = open_part(paths.part, fresh=False)
                try:

                    def save() -> None:
                        os.fdatasync(fd)
                        ck.save(
                            paths.checkpoint,
                            ck.Checkpoint(
                                source=display,
                                identity=meta.identity(),
                                checksum=checksummer.name if checksummer else None,
                                spans=sched.spans(),
                            ),
                        )

                    engine = Engine(
                        backend=backend, key=found.key, meta=meta, fd=fd, scheduler=sched,
                        config=config, checksummer=checksummer, ranged=True, resumed=done_here,
                        hooks=EngineHooks(save=save),
                    )  # fmt: skip
                    try:
                        engine.run()
                    finally:
                        save()
                    return RangeOutcome(
                        start=job.start, stop=job.stop, spans=sched.spans(), fetched=sched.fetched
                    )
                finally:
                    os.close(fd)
    except (DownloadError, OSError, ValueError) as exc:
        return RangeOutcome(
            start=job.start, stop=job.stop, error=f"{job.source}: {exc}", error_kind=error_kind(exc)
        )


def _resume(
    paths: ck.Paths, display: str, meta: ObjectMeta, checksum: str | None
) -> tuple[Span, ...]:
    try:
        saved = ck.load(paths.checkpoint)
    except (ck.CheckpointInvalid, OSError):
        return ()
    if (
        saved is None
        or saved.source != display
        or saved.identity != meta.identity()
        or saved.checksum != checksum
    ):
        return ()
    return saved.spans
