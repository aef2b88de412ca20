"""The work a Ray task does, as plain functions (no Ray import here): a group of small objects,
or one byte range of a large object written into the shared temp file.

Everything crossing the task boundary is picklable: URLs (each worker resolves its own
backend and credentials), frozen configs, and the object's identity as a dict. A range task
keeps its own checkpoint (`DEST.objget-r<start>.ckpt`) and lock, so a retried task — after a
worker died — resumes from the bytes the lost one saved, on any node that sees the file.

A range checkpoint is saved as a single-object download saves one (`_saver`: snapshot, then
fdatasync, then the checkpoint; nothing after a failed sync). Every span in it carries a CRC:
the store's when it gives one, else a CRC-32 of our own (`span_checksummer`). A task that
resumes reads the spans it resumes back from the file and fetches again any whose bytes do
not match their CRC (a lost node's file system may not hold what its checkpoint says); the
driver checks the resumed spans once more before it commits (`bad_spans`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import _checkpoint as ck
from ._batch_models import ObjectResult
from ._config import DownloadConfig
from ._downloader import Downloader
from ._exceptions import DownloadError
from ._exit import error_kind
from ._fileio import open_part
from ._models import ByteRange, ObjectMeta
from ._plan import Span, auto_part_size, cut_parts, missing_ranges
from ._saver import DurableSaver, save_quietly
from ._scheduler import Scheduler
from .backends import BackendOptions, resolve
from .backends._base import Backend, Checksummer
from .integrity import checksummer_for
from .integrity._gf2 import CrcCombiner

__all__ = [
    "GroupEntry",
    "RangeJob",
    "RangeOutcome",
    "bad_spans",
    "meta_from",
    "meta_to",
    "run_group",
    "run_range",
    "span_checksummer",
]

log = logging.getLogger("objget")
_CHUNK = 4 * 1024 * 1024


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
    resumed: tuple[Span, ...] = ()  # from the checkpoint of an earlier attempt (checked)
    error: str | None = None
    error_kind: str | None = None
    fetched: int = 0


def meta_to(meta: ObjectMeta) -> dict[str, object]:
    # not dataclasses.asdict: it deep-copies, and the default `checksums` is a mappingproxy
    d: dict[str, object] = {f.name: getattr(meta, f.name) for f in dataclasses.fields(meta)}
    d["checksums"] = dict(meta.checksums)
    return d


def meta_from(d: Mapping[str, object]) -> ObjectMeta:
    return ObjectMeta(**d)  # type: ignore[arg-type]


class _LocalCrc:
    """CRC-32 (zlib) of the bytes a range task wrote, for objects the store keeps no CRC for.
    It checks nothing against the store: it lets resumed spans be checked against the file."""

    __slots__ = ()
    name = "crc32-local"
    expected = 0
    _combiner = CrcCombiner(0xEDB88320, 32)

    def update(self, crc: int, data: memoryview, /) -> int:
        return zlib.crc32(data, crc)

    def combine(self, crc_a: int, crc_b: int, len_b: int, /) -> int:
        return self._combiner.combine(crc_a, crc_b, len_b)


def span_checksummer(backend: Backend, meta: ObjectMeta) -> Checksummer:
    """The CRC every span of a range checkpoint carries: the store's, else a local CRC-32."""
    return checksummer_for(backend.object_checks(meta)) or _LocalCrc()


def bad_spans(
    fd: int, spans: tuple[Span, ...], checksummer: Checksummer
) -> list[tuple[Span, int | None]]:
    """The spans whose bytes in `fd` do not give their recorded CRC, each with the CRC they
    gave (None: the span has no CRC, or lies beyond the end of the file)."""
    bad: list[tuple[Span, int | None]] = []
    for span in spans:
        crc, pos = 0, span.start
        while span.crc is not None and pos < span.stop:
            data = os.pread(fd, min(_CHUNK, span.stop - pos), pos)
            if not data:
                break
            crc = checksummer.update(crc, memoryview(data))
            pos += len(data)
        if pos < span.stop or span.crc is None:
            bad.append((span, None))
        elif crc != span.crc:
            bad.append((span, crc))
    return bad


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
    by the driver), resuming from this range's own checkpoint once its spans read back
    right."""
    from ._engine import Engine, EngineHooks

    meta = meta_from(job.meta)
    assert meta.size is not None
    paths = range_paths(job.dest, job.start)
    try:
        with Downloader(config=config, options=options) as dl:
            found = resolve(job.source, dl.transport, options, {})
            backend = found.backend
            display = backend.display(found.key)
            crc = span_checksummer(backend, meta)
            with ck.DestLock(paths.lock, dest=job.dest, source=display):
                fd = open_part(paths.part, fresh=False)
                try:
                    spans = _resume(paths, display, meta, crc, fd, job)
                    todo = [
                        ByteRange(max(r.start, job.start), min(r.stop, job.stop))
                        for r in missing_ranges(spans, meta.size)
                        if r.stop > job.start and r.start < job.stop
                    ]
                    part = config.part_size or auto_part_size(
                        job.stop - job.start, config.max_workers
                    )
                    sched = Scheduler(
                        cut_parts(todo, part),
                        done=spans,
                        combine=crc.combine,
                        min_steal=max(config.buffer_size * 2, 1024 * 1024),
                    )
                    saver = DurableSaver(
                        fd,
                        paths.checkpoint,
                        view=sched.durable_view,
                        record=lambda done: ck.Checkpoint(
                            source=display, identity=meta.identity(), checksum=crc.name, spans=done
                        ),
                    )
                    engine = Engine(
                        backend=backend, key=found.key, meta=meta, fd=fd, scheduler=sched,
                        config=config, checksummer=crc, ranged=True,
                        resumed=sum(s.stop - s.start for s in spans), hooks=EngineHooks(save=saver),
                    )  # fmt: skip
                    try:
                        engine.run()
                    except BaseException:
                        save_quietly(saver)  # the newest record; never one after a failed sync
                        raise
                    saver()  # the range's last checkpoint: the driver commits from it
                    return RangeOutcome(
                        start=job.start, stop=job.stop, spans=sched.spans(), resumed=spans,
                        fetched=sched.fetched,
                    )  # fmt: skip
                finally:
                    os.close(fd)
    except (DownloadError, OSError, ValueError) as exc:
        return RangeOutcome(
            start=job.start, stop=job.stop, error=f"{job.source}: {exc}", error_kind=error_kind(exc)
        )


def _resume(
    paths: ck.Paths, display: str, meta: ObjectMeta, crc: Checksummer, fd: int, job: RangeJob
) -> tuple[Span, ...]:
    """The spans of this range's checkpoint that lie in the range (an earlier run may have
    used larger ranges: the rest is another task's) and whose bytes match their CRCs."""
    try:
        saved = ck.load(paths.checkpoint)
    except (ck.CheckpointInvalid, OSError):
        return ()
    if (
        saved is None
        or saved.source != display
        or saved.identity != meta.identity()
        or saved.checksum != crc.name
    ):
        return ()
    inside = tuple(s for s in saved.spans if job.start <= s.start and s.stop <= job.stop)
    bad = {span for span, _ in bad_spans(fd, inside, crc)}
    if bad:
        lost = sum(s.stop - s.start for s in bad)
        log.warning(
            "%s: %d bytes the checkpoint %s claims do not read back as written; fetching "
            "them again",
            display,
            lost,
            paths.checkpoint,
        )
    return tuple(s for s in inside if s not in bad)
