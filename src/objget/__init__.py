"""objget: parallel, resumable, verified downloads of large objects from OSS, S3 and HTTP(S).

>>> import objget
>>> result = objget.download("https://example.com/big.iso", "big.iso")  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from ._api import download
from ._batch_models import BatchItem, BatchResult
from ._config import DownloadConfig, RetryPolicy, Timeouts
from ._downloader import Downloader
from ._exceptions import (
    AccessDenied,
    CheckpointError,
    DownloadError,
    IntegrityError,
    LockedError,
    ObjectChanged,
    ObjectNotFound,
    RangeNotSupported,
    RemoteError,
    RetriesExhausted,
    TLSError,
    TransportError,
)
from ._models import ByteRange, DownloadResult, ObjectMeta, Progress
from ._oss2_compat import resumable_download
from .backends import BackendOptions
from .batch import download_many

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "BackendOptions",
    "BatchItem",
    "BatchResult",
    "ByteRange",
    "CheckpointError",
    "DownloadConfig",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "IntegrityError",
    "LockedError",
    "ObjectChanged",
    "ObjectMeta",
    "ObjectNotFound",
    "Progress",
    "RangeNotSupported",
    "RemoteError",
    "RetriesExhausted",
    "RetryPolicy",
    "TLSError",
    "Timeouts",
    "TransportError",
    "__version__",
    "download",
    "download_many",
    "resumable_download",
]

logging.getLogger("objget").addHandler(logging.NullHandler())
