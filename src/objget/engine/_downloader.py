"""Downloader: DEST checked, HEAD, then the engine's phases (`_phases`): prepare (lock,
resume point, plan) → fetch → finish (verify, commit).

A `Downloader` keeps its connection pools between downloads (like `httpx.Client`); use it as a
context manager. The destination is replaced only after the bytes were verified.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .._config import DownloadConfig, RetryPolicy
from .._exceptions import DownloadError
from .._log import log
from .._models import DownloadResult, ObjectMeta
from ..backends import BackendOptions, resolve
from ..backends._transport import Transport
from . import _checkpoint as ck
from ._attempts import run_with_retry
from ._fileio import MARKER, carries_marker, check_dest
from ._phases import fetch, finish, prepare
from ._sync import skip_existing

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from .._progress import Progress
    from ..backends._base import Backend
    from ._throttle import RateLimiter

# MARKER and carries_marker: the engine's rule for side-file names, the batch refuses keys by it;
# head_with_retry: the HEAD phase (a batch or the Ray driver heads objects before planning);
# download_shared: one object under the batch's shared rate limit
__all__ = [
    "MARKER", "Downloader", "ProgressListener", "carries_marker", "download_shared",
    "head_with_retry",
]  # fmt: skip


ProgressListener = Callable[["Progress"], None]  # Progress: imported when one is made


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
            path,
            on_progress=on_progress,
            version_id=version_id or found.version_id,
        )

    def download_object(
        self,
        backend: Backend,
        key: str,
        dest: str | os.PathLike[str],
        *,
        on_progress: ProgressListener | None = None,
        version_id: str | None = None,
        meta: ObjectMeta | None = None,
        config: DownloadConfig | None = None,
    ) -> DownloadResult:
        """The whole flow for one object of an explicit backend into the file `dest` (its temp
        data, checkpoint and lock beside it); `meta`: the object's HEAD when the caller has
        it; `config` overrides the Downloader's options for this object (the pool stays)."""
        return self._download_to(
            backend, key, ck.Paths.beside(os.fspath(dest)), on_progress=on_progress,
            version_id=version_id, meta=meta, config=config,
        )  # fmt: skip

    def _download_to(
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
        """`download_object` with the side files where `paths` says (the oss2 drop-in keeps
        its checkpoint in oss2's store directory) and `limiter`, a rate limit shared with
        other downloads (a batch's `limit_rate`; see `download_shared`)."""
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
            with prepare(backend, key, meta, paths, display=display, config=cfg) as job:
                fetch(job, on_progress=on_progress, limiter=limiter)
                return finish(job, started=started, on_progress=on_progress)
        except DownloadError as exc:
            exc.source = exc.source or display
            exc.dest = exc.dest or str(paths.dest)
            raise


def download_shared(
    dl: Downloader, backend: Backend, key: str, dest: str, *, limiter: RateLimiter | None,
    on_progress: ProgressListener | None, version_id: str | None, meta: ObjectMeta | None,
    config: DownloadConfig,
) -> DownloadResult:  # fmt: skip
    """`dl.download_object` under `limiter`, a rate limit it shares with other downloads (the
    batch runner's: `limit_rate` caps the whole batch). Not a method: the limiter is private."""
    return dl._download_to(
        backend, key, ck.Paths.beside(dest), on_progress=on_progress, version_id=version_id,
        meta=meta, config=config, limiter=limiter,
    )  # fmt: skip


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
    text = None if dest is None else os.fspath(dest)
    if text is not None and not (os.path.isdir(text) or text.endswith(os.sep)):
        return text
    from urllib.parse import unquote, urlsplit  # a name to derive: not for a given file

    path = urlsplit(source).path if "://" in source else source
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "\x00" in name or "/" in name:
        raise ValueError(f"cannot derive a file name from {source!r}; give a destination")
    return os.path.join(text or ".", name)
