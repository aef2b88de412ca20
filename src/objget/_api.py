"""`download()`: the one-shot form, a Downloader used once."""

from __future__ import annotations

import os

from ._config import DownloadConfig
from ._models import DownloadResult
from .engine._downloader import Downloader, ProgressListener

__all__ = ["download"]


def download(
    source: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    config: DownloadConfig | None = None,
    on_progress: ProgressListener | None = None,
    version_id: str | None = None,
) -> DownloadResult:
    """Download one object to `dest` and return a `DownloadResult`.

    Parallel ranged parts, resumable (run it again after any interruption), verified, and the
    destination is replaced only once the bytes are complete.

    >>> result = objget.download("https://example.com/big.iso", "big.iso")  # doctest: +SKIP
    >>> result.size, result.verified  # doctest: +SKIP
    (1073741824, ('size',))
    """
    with Downloader(config=config) as dl:
        return dl.download(source, dest, on_progress=on_progress, version_id=version_id)
