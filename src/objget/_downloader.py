"""Downloader: HEAD → lock + checkpoint → plan → engine → verify → commit.

A `Downloader` keeps its connection pools between downloads (like `httpx.Client`); use it as a
context manager. The destination is replaced only after the bytes were verified.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _checkpoint as ck
from ._attempts import run_with_retry
from ._config import DownloadConfig, RetryPolicy
from ._exceptions import (
    CheckpointError,
    DownloadError,
    ObjectChanged,
)
from ._fileio import (
    MARKER,
    carries_marker,
    check_dest,
    check_free_space,
    commit_part,
    disk_full,
    file_id,
    open_part,
    preallocate,
    remove_quietly,
    remove_stale_temps,
)
from ._live import LiveRecord, new_run, segment_crc, tag_for
from ._models import ByteRange, DownloadResult, ObjectMeta, Progress
from ._plan import Span, cut_parts, done_bytes, missing_ranges
from ._recover import discard, resume_point
from ._saver import DurableSaver, save_quietly
from ._scheduler import Scheduler
from ._sync import skip_existing, stamp
from ._verify import checksummer_of, file_checks_of, verify
from .backends import BackendOptions, resolve
from .backends._base import Backend
from .backends._transport import Transport
from .integrity import DigestCheck, FileCheck

if TYPE_CHECKING:
    from ._throttle import RateLimiter

# MARKER and carries_marker: the engine's rule for side-file names, the batch refuses keys by it
__all__ = ["MARKER", "Downloader", "ProgressListener", "carries_marker", "head_with_retry"]

log = logging.getLogger("objget")

ProgressListener = Callable[[Progress], None]
_UNKNOWN_SIZE = 2**63 - 1


class Downloader:
    """Downloads objects with reusable connection pools.

    >>> with objget.Downloader(config=objget.DownloadConfig(max_workers=8)) as dl:  # doctest: +SKIP
    ...     result = dl.download("https://example.com/big.iso", "big.iso")
    """

    def __init__(
        self, *, config: DownloadConfig | None = None, options: BackendOptions | None = None
    ) -> None:
        self.config = config or DownloadConfig()
        self.options = options or BackendOptions()
        self._transport: Transport | None = None
        self._backends: dict[tuple[str, str], Backend] = {}

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = Transport(self.config)
        return self._transport

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def download(
        self,
        source: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        on_progress: ProgressListener | None = None,
        version_id: str | None = None,
    ) -> DownloadResult:
        """Download `source` (URL) to `dest` (file or existing directory; default: the
        object's base name in the current directory) and return what was done."""
        path = dest_path(source, dest)
        check_dest(path)  # before resolving: a store's credential lookup may reach the network
        found = resolve(source, self.transport, self.options, self._backends)
        return self.download_object(
            found.backend,
            found.key,
            ck.Paths.beside(path),
            on_progress=on_progress,
            version_id=version_id or found.version_id,
        )

    def download_object(
        self,
        backend: Backend,
        key: str,
        paths: ck.Paths,
        *,
        on_progress: ProgressListener | None = None,
        version_id: str | None = None,
        meta: ObjectMeta | None = None,
        config: DownloadConfig | None = None,
        limiter: RateLimiter | None = None,
    ) -> DownloadResult:
        """The whole flow for one object with an explicit backend and file locations;
        `config` overrides the Downloader's options for this object (the pool stays);
        `limiter` is a rate limit shared with other downloads (a batch's `limit_rate`)."""
        started = time.monotonic()
        display = backend.display(key)
        try:
            check_dest(paths.dest)  # before the first request: no transfer to a doomed place
            if meta is None:
                meta = head_with_retry(backend, key, version_id, self.config.retry)
            parent = os.path.dirname(os.path.abspath(paths.dest))
            if not os.path.isdir(parent):
                raise FileNotFoundError(f"destination directory {parent} does not exist")
            cfg = config or self.config
            if done := skip_existing(paths.dest, display, meta, started, cfg):
                return done
            with ck.DestLock(paths.lock, dest=paths.dest, source=display):
                return self._locked(
                    backend, key, meta, paths, display, on_progress, started, cfg, limiter
                )
        except DownloadError as exc:
            exc.source = exc.source or display
            exc.dest = exc.dest or str(paths.dest)
            raise

    def _locked(
        self,
        backend: Backend,
        key: str,
        meta: ObjectMeta,
        paths: ck.Paths,
        display: str,
        on_progress: ProgressListener | None,
        started: float,
        cfg: DownloadConfig,
        limiter: RateLimiter | None = None,
    ) -> DownloadResult:
        checksummer = checksummer_of(backend, meta)
        ranged = meta.accept_ranges and meta.size is not None
        remove_stale_temps(paths.checkpoint)
        crc_name, crc_update = segment_crc(checksummer)
        resume = resume_point(
            paths,
            meta=meta,
            display=display,
            checksummer=checksummer,
            ranged=ranged,
            restart=cfg.restart,
            crc=(crc_name, crc_update),
        )
        if resume.restarted:
            log.warning("%s: starting over: %s", display, resume.restarted)
        spans = resume.spans
        size = meta.size
        fresh = not spans
        run = resume.run if resume.run is not None and not fresh else new_run()
        if fresh:  # a new data file, a new run: no earlier live record may describe it
            remove_quietly(paths.live)
        fd = open_part(paths.part, fresh=fresh)
        tag = tag_for(fd, run=run, crc=crc_name) if ranged else None
        live = LiveRecord(paths.live, tag)
        if run == resume.run:
            live.arm()  # the durable checkpoint on disk names this run already
        try:
            resumed = done_bytes(spans)
            if size is not None:
                missing = size - resumed
                check_free_space(
                    os.path.dirname(os.path.abspath(paths.part)), missing if not fresh else size
                )
                if fresh:
                    preallocate(fd, size)
            todo = missing_ranges(spans, size) if size is not None else []
            if size is None:
                parts = [_unknown_range()]
            elif not ranged:
                parts = todo
            elif cfg.part_size:
                parts = cut_parts(todo, cfg.part_size)
            else:
                parts = todo  # cut at claim time, sized for the streams running then
            sched = Scheduler(
                parts,
                guided=ranged and size is not None and not cfg.part_size,
                done=spans,
                combine=checksummer.combine if checksummer else None,
                min_steal=max(cfg.buffer_size * 2, 1024 * 1024),
                live=resume.live if tag is not None else None,
            )
            identity = meta.identity()

            def record(spans: tuple[Span, ...]) -> ck.Checkpoint:
                return ck.Checkpoint(
                    source=display,
                    identity=identity,
                    checksum=checksummer.name if checksummer else None,
                    spans=spans,
                    run=run,
                )

            # snapshot → fdatasync → checkpoint; after a failed sync nothing is saved again,
            # and the live record (which trusts the same pages) goes
            def saved(seq: int) -> None:
                sched.saved(seq)  # the live record keeps only what came after the snapshot
                live.arm()

            saver = DurableSaver(
                fd,
                paths.checkpoint,
                view=sched.durable_view,
                record=record,
                on_saved=saved,
                on_sync_failed=lambda: live.close(remove=True),
            )

            def save() -> None:
                if ranged:
                    saver()

            def save_live() -> None:
                live.write(sched.live_segments())  # nothing once closed, or before `arm`

            from ._engine import Engine, EngineHooks

            engine = Engine(
                backend=backend,
                key=key,
                meta=meta,
                fd=fd,
                scheduler=sched,
                config=cfg,
                checksummer=checksummer,
                ranged=ranged,
                resumed=resumed,
                hooks=EngineHooks(
                    save=save,
                    save_at_start=not live.armed,  # fresh, or a checkpoint without a run id
                    save_live=save_live,
                    progress=on_progress,
                ),
                live_crc=crc_update if tag is not None else None,
                limiter=limiter,
            )
            try:
                peak = engine.run()
            except ObjectChanged:
                discard(paths)
                raise
            except BaseException as exc:
                if save_quietly(save):  # the durable record is the newest: drop the live one
                    live.close(remove=True)
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and size is not None:
                    where = os.path.dirname(os.path.abspath(paths.part))
                    raise disk_full(where, size - done_bytes(sched.spans())) from exc
                raise
            if size is None:
                size = engine.eof_size or 0
            checks: list[FileCheck] = []
            if cfg.checksum:
                checks.append(DigestCheck("sha256", cfg.checksum.partition(":")[2]))
            checks.extend(file_checks_of(backend, key, meta, size=size))
            checked = verify(
                fd,
                spans=sched.spans(),
                size=size,
                checksummer=checksummer,
                checks=checks,
                display=display,
                discard=lambda: discard(paths),
            )
            if on_progress is not None:
                final = engine.progress(time.monotonic() - started)
                on_progress(dataclasses.replace(final, workers=peak))
            stamp(fd, meta.last_modified)  # before the fsync and the rename: never a fake mtime
            os.fsync(fd)
            made = file_id(fd)
        finally:
            live.close(remove=False)
            os.close(fd)
        try:  # only the file written here: never one put at the temp path meanwhile
            commit_part(paths.part, paths.dest, made, display=display)
        except CheckpointError:  # the records describe the file that is gone: so do they
            remove_quietly(paths.checkpoint)
            remove_quietly(paths.live)
            raise
        remove_quietly(paths.checkpoint)
        remove_quietly(paths.live)
        return DownloadResult(
            path=str(paths.dest),
            source=display,
            size=size,
            etag=meta.etag,
            version_id=meta.version_id,
            verified=checked.names,
            checksums=checked.values,
            bytes_fetched=sched.fetched,
            bytes_resumed=resumed,
            elapsed=time.monotonic() - started,
            retries=sched.retries,
            resumable=ranged,
            restarted=resume.restarted,
            resumed_from=resume.moved_from if resumed else None,
            workers=peak,
        )


def _unknown_range() -> ByteRange:
    return ByteRange(0, _UNKNOWN_SIZE)


def head_with_retry(
    backend: Backend, key: str, version_id: str | None, policy: RetryPolicy
) -> ObjectMeta:
    """HEAD under the same retry policy as the data requests."""
    return run_with_retry(
        lambda _: backend.head(key, version_id=version_id),
        policy=policy,
        on_retry=lambda exc, delay: log.debug("retrying HEAD in %.2f s: %s", delay, exc),
    )


def dest_path(source: str, dest: str | os.PathLike[str] | None) -> str:
    """Where `source` goes: `dest` itself, or the source's base name inside `dest` when it is
    a directory (or None: the current directory)."""
    from urllib.parse import unquote, urlsplit

    text = None if dest is None else os.fspath(dest)
    if text is not None and not (os.path.isdir(text) or text.endswith(os.sep)):
        return text
    path = urlsplit(source).path if "://" in source else source
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "\x00" in name or "/" in name:
        raise ValueError(f"cannot derive a file name from {source!r}; give a destination")
    return os.path.join(text or ".", name)
