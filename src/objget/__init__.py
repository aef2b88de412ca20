"""objget: parallel, resumable, verified downloads of large objects from OSS, S3 and HTTP(S).

>>> import objget
>>> result = objget.download("https://example.com/big.iso", "big.iso")  # doctest: +SKIP

Only the error tree is imported with the package; the other public names load on first use
(PEP 562), so `import objget` and the `objget` command start fast and a plain HTTP download
never imports the batch, OSS or oss2 modules.
"""

from __future__ import annotations

import importlib
import sys

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
    UnsafePath,
)

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._api import download
    from ._config import DownloadConfig, RetryPolicy, Timeouts
    from ._models import ByteRange, DownloadResult, ObjectMeta
    from ._oss2_compat import resumable_download
    from ._progress import Progress
    from .backends import BackendOptions
    from .batch import download_many
    from .engine._downloader import Downloader
    from .many._batch_models import BatchItem, BatchResult

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
    "UnsafePath",
    "__version__",
    "download",
    "download_many",
    "resumable_download",
]

# public name -> the private module that defines it (imported on first access)
_LAZY = {
    "BackendOptions": ".backends",
    "BatchItem": ".many._batch_models",
    "BatchResult": ".many._batch_models",
    "ByteRange": "._models",
    "DownloadConfig": "._config",
    "DownloadResult": "._models",
    "Downloader": ".engine._downloader",
    "ObjectMeta": "._models",
    "Progress": "._progress",
    "RetryPolicy": "._config",
    "Timeouts": "._config",
    "download": "._api",
    "download_many": ".batch",
    "resumable_download": "._oss2_compat",
}
# public subpackages that `import objget` used to load eagerly: still reachable as attributes
_SUBMODULES = frozenset({"backends", "batch"})

if not TYPE_CHECKING:  # mypy sees the imports above, not a catch-all __getattr__

    def __getattr__(name: str) -> object:
        if name in _LAZY:
            value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        elif name in _SUBMODULES:
            value = importlib.import_module(f".{name}", __name__)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if "logging" in sys.modules:  # someone may configure it: objget's logger gets its NullHandler
    from . import _log  # (when logging is loaded later: at the library's first record, _log.py)

    _log.log.bound()
