"""One object streamed to a file descriptor (the CLI's `-` DEST: stdout), in offset order.

The same engine as a file download, with an `OrderedSink` in place of `pwrite`: HEAD → parts
in offset order → workers → verify. What a stream cannot have it does not pretend to have: no
temp file, checkpoint, live record or lock (nothing is left anywhere), and no resume. It is
verified as a file is — the size always, the store's CRC combined from the per-range values,
and the whole-object digests (`--checksum sha256:`, S3's MD5 ETag or COMPOSITE CRC) fed with
the bytes in the order they are sent — but only after the bytes went out: a mismatch raises
`IntegrityError` saying that what the stream got is bad.
"""

from __future__ import annotations

import dataclasses
import time

from .._config import DownloadConfig, small_buffer
from .._exceptions import DownloadError, IntegrityError
from .._log import log
from .._models import ByteRange, DownloadResult
from ..backends import Cache, resolve
from ..backends._base import Backend
from ._downloader import Downloader, ProgressListener, head_with_retry
from ._plan import cut_parts
from ._scheduler import Scheduler
from ._stream_checks import stream_checks
from ._stream_sink import WINDOW, OrderedSink
from ._verify import checksummer_of

__all__ = ["STREAM_PART", "StreamDownload"]


MiB = 1024 * 1024
# Parts of a stream: small enough that several fit in the reorder window (a part beyond the
# window waits), big enough that a request's round trip stays small against its bytes.
STREAM_PART = 8 * MiB
_UNKNOWN_SIZE = 2**63 - 1


class StreamDownload:
    """Streams objects to `fd` with the pools of `downloader`; `sent` counts the bytes the
    stream got (after a failure too: they are all in order, from byte 0).

    >>> job = StreamDownload(dl, sys.stdout.fileno())  # doctest: +SKIP
    >>> job.run("s3://bucket/big.tar").verified  # doctest: +SKIP
    ('size', 'crc64nvme')
    """

    def __init__(
        self, downloader: Downloader, fd: int, *, name: str = "stdout", window: int = WINDOW
    ) -> None:
        self._dl = downloader
        self._fd = fd
        self._name = name
        self._window = window
        self.sent = 0
        self.peak_buffered = 0

    def run(
        self,
        source: str,
        *,
        on_progress: ProgressListener | None = None,
        version_id: str | None = None,
    ) -> DownloadResult:
        """Stream `source` (a URL) to the descriptor; raises as a file download does (there is
        nothing to clean up: the stream is all there is)."""
        backends: Cache = {}
        try:
            found = resolve(source, self._dl.transport, self._dl.options, backends)
            return self.run_object(
                found.backend,
                found.key,
                on_progress=on_progress,
                version_id=version_id or found.version_id,
            )
        finally:
            for backend in backends.values():
                backend.close()

    def run_object(
        self,
        backend: Backend,
        key: str,
        *,
        on_progress: ProgressListener | None = None,
        version_id: str | None = None,
    ) -> DownloadResult:
        """Stream one object of an explicit backend."""
        started = time.monotonic()
        display = backend.display(key)
        try:
            return self._object(backend, key, display, on_progress, version_id, started)
        except DownloadError as exc:
            exc.source = exc.source or display
            exc.dest = exc.dest or "-"
            raise

    def _object(
        self,
        backend: Backend,
        key: str,
        display: str,
        on_progress: ProgressListener | None,
        version_id: str | None,
        started: float,
    ) -> DownloadResult:
        cfg = self._dl.config
        meta = head_with_retry(backend, key, version_id, cfg.retry)
        checksummer = checksummer_of(backend, meta)
        ranged = meta.accept_ranges and meta.size is not None
        size = meta.size
        part = cfg.part_size or STREAM_PART
        if size is None:
            parts = [ByteRange(0, _UNKNOWN_SIZE)]
        elif not ranged:
            parts = [ByteRange(0, size)] if size else []
        else:
            parts = cut_parts([ByteRange(0, size)], part) if size else []
        sched = Scheduler(
            parts,
            combine=checksummer.combine if checksummer else None,
            min_steal=max(small_buffer(cfg) * 2, MiB),
        )
        checks = stream_checks(backend, key, meta, cfg, store=size != 0)
        sink = OrderedSink(self._fd, size=size, window=self._window, checks=checks)
        from ._engine import Engine, EngineHooks

        engine = Engine(
            backend=backend,
            key=key,
            meta=meta,
            fd=-1,
            scheduler=sched,
            config=_stream_config(cfg, self._window, part),
            checksummer=checksummer,
            ranged=ranged,
            resumed=0,
            hooks=EngineHooks(save=_nothing, progress=on_progress),
            sink=sink,
        )
        try:
            peak = engine.run()
        finally:
            self.sent, self.peak_buffered = sink.sent, sink.peak
            sink.close()
        log.info(
            "%s: %d bytes to %s over up to %d streams, at most %d of them waited in the "
            "reorder window", display, self.sent, self._name, peak, self.peak_buffered,
        )  # fmt: skip
        if size is None:
            size = engine.eof_size or 0
        spans = sched.spans()
        covered = size == 0 or (len(spans) == 1 and spans[0].range == ByteRange(0, size))
        if self.sent != size or not covered:
            raise DownloadError(
                f"{display}: internal error: {self.sent} of {size} bytes were sent to "
                f"{self._name} (spans {spans})",
                source=display,
            )
        verified = ["size"]
        if checksummer is not None and size > 0:
            self._compare(checksummer.name, str(checksummer.expected), str(spans[0].crc), display)
            verified.append(checksummer.name)
        for check, actual in sink.results():
            self._compare(check.name, check.expected, actual, display)
            verified.append(check.name)
        if on_progress is not None:
            final = engine.progress(time.monotonic() - started)
            on_progress(dataclasses.replace(final, workers=peak))
        return DownloadResult(
            path="-",
            source=display,
            size=size,
            etag=meta.etag,
            version_id=meta.version_id,
            verified=tuple(verified),
            bytes_fetched=sched.fetched,
            bytes_resumed=0,
            elapsed=time.monotonic() - started,
            retries=sched.retries,
            resumable=False,
            workers=peak,
        )

    def _compare(self, name: str, expected: str, actual: str, display: str) -> None:
        if actual == expected:
            return
        raise IntegrityError(
            f"{display}: {name} mismatch (expected {expected}, got {actual}); the "
            f"{self.sent} bytes already written to {self._name} are bad: discard them",
            algorithm=name,
            expected=expected,
            actual=actual,
            source=display,
        )


def _nothing() -> None:
    """A stream has no checkpoint to save."""


def _stream_config(cfg: DownloadConfig, window: int, part: int) -> DownloadConfig:
    """No more streams than parts fit in the window (one more waits at its edge)."""
    most = max(1, min(cfg.max_workers, window // part + 1))
    return dataclasses.replace(cfg, max_workers=most, min_workers=min(cfg.min_workers, most))
