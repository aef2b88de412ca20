"""The one table from an error to what it means: a batch object's `error_kind`, the exit code of
the `objget` command (single object and batch alike) and the line the command prints.

Every caller uses it: `cli.py`, `_cli_batch.py` and the batch results (`error_kind`). A test
walks the whole error tree and checks that the single-object and batch commands agree.

>>> from objget._exceptions import LockedError, ObjectNotFound
>>> error_kind(ObjectNotFound("gone")), exit_code(ObjectNotFound("gone"))
('not-found', 3)
>>> exit_code(LockedError("busy"))
7
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._exceptions import (
    AccessDenied,
    CheckpointError,
    DownloadError,
    IntegrityError,
    LockedError,
    ObjectChanged,
    ObjectNotFound,
    RemoteError,
    RetriesExhausted,
    TLSError,
    TransportError,
    UnsafePath,
)
from ._extras import install_hint

__all__ = ["EXIT", "HANDLED", "KIND_EXIT", "describe", "error_kind", "exit_code"]

EXIT: Mapping[str, int] = MappingProxyType(
    {
        "ok": 0,
        "usage": 2,
        "remote": 3,
        "integrity": 4,
        "network": 5,
        "local": 6,
        "locked": 7,
        "some-failed": 8,
        "interrupted": 130,
    }
)

# error kind -> exit code; each kind is one row of docs/errors.md
KIND_EXIT: Mapping[str, int] = MappingProxyType(
    {
        "usage": EXIT["usage"],
        "unsafe-path": EXIT["usage"],
        "not-found": EXIT["remote"],
        "access-denied": EXIT["remote"],
        "changed": EXIT["remote"],
        "remote": EXIT["remote"],
        "integrity": EXIT["integrity"],
        "network": EXIT["network"],
        "local": EXIT["local"],
        "locked": EXIT["locked"],
        "interrupted": EXIT["interrupted"],
    }
)

# most specific first: the first class the error is an instance of gives its kind
# (ObjectNotFound is also a FileNotFoundError, UnsafePath also a ValueError)
_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (KeyboardInterrupt, "interrupted"),
    (UnsafePath, "unsafe-path"),
    (ObjectNotFound, "not-found"),
    (AccessDenied, "access-denied"),
    (ObjectChanged, "changed"),
    (RemoteError, "remote"),
    (IntegrityError, "integrity"),
    (TransportError, "network"),
    (RetriesExhausted, "network"),
    (LockedError, "locked"),
    (CheckpointError, "local"),
    (DownloadError, "local"),
    (ValueError, "usage"),
    (OSError, "local"),
    (ImportError, "usage"),
)

# what the command catches and exits on; anything else is a bug and keeps its traceback
HANDLED: tuple[type[BaseException], ...] = (
    KeyboardInterrupt,
    DownloadError,
    ValueError,
    OSError,
    ImportError,
)

_RESUME = "progress is saved: run the same command again to resume"


def error_kind(exc: BaseException) -> str:
    """The short name of why an object failed (`ObjectResult.error_kind`); `local` for an
    error outside the table.

    >>> error_kind(ValueError("bad URL")), error_kind(OSError(28, "No space left on device"))
    ('usage', 'local')
    """
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return "local"


def exit_code(exc: BaseException) -> int:
    """The `objget` command's exit code for an error that stopped it.

    >>> exit_code(KeyboardInterrupt()), exit_code(ValueError("bad option"))
    (130, 2)
    """
    return KIND_EXIT[error_kind(exc)]


def describe(exc: BaseException) -> str:
    """The line the command prints for an error in `HANDLED` (after `objget: `). An
    ImportError that is not a missing extra is raised again: it is a bug.

    >>> describe(OSError(28, "No space left on device", "big.iso"))
    'local I/O error: No space left on device: big.iso'
    """
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted; {_RESUME}"
    if isinstance(exc, ImportError):
        return install_hint(exc)
    if isinstance(exc, TransportError | RetriesExhausted) and not isinstance(exc, TLSError):
        return f"{exc}\n{_RESUME}"  # a refused certificate fails the same way next time
    if isinstance(exc, OSError) and not isinstance(exc, DownloadError):
        text = exc.strerror or str(exc)
        if exc.filename:
            text = f"{text}: {exc.filename}"
        return f"local I/O error: {text}"
    return str(exc)
