"""The error tree. Users catch only these types; lower layers are translated at one boundary.

```
DownloadError                     .source, .dest; always chained from the cause
├── RemoteError                   the store answered, and the answer is final
│   ├── ObjectNotFound            404 (also a FileNotFoundError)
│   ├── AccessDenied              401/403 (names the credentials used, never the secret)
│   ├── ObjectChanged             412 / identity changed mid-download
│   └── RangeNotSupported         200 to a Range, wrong Content-Range, wrong length
├── TransportError                retryable: reset, refused, timeout, stall, truncated, 5xx, 429
│   └── TLSError                  certificate refused, or no TLS there (not retried)
├── RetriesExhausted              .attempts, .last_error
├── IntegrityError                .algorithm, .expected, .actual
├── CheckpointError               unusable checkpoint
│   └── LockedError               another run holds the destination's lock
└── UnsafePath                    a batch key or manifest dest that cannot be written safely
                                  under the destination directory (also a ValueError)
```

Local disk errors (ENOSPC, EIO, EROFS, EFBIG) propagate as `OSError` after the last good
checkpoint was saved.
"""

from __future__ import annotations

import re

__all__ = [
    "AccessDenied",
    "CheckpointError",
    "DownloadError",
    "IntegrityError",
    "LockedError",
    "ObjectChanged",
    "ObjectNotFound",
    "RangeNotSupported",
    "RemoteError",
    "RetriesExhausted",
    "TLSError",
    "TransportError",
    "UnsafePath",
]


_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # compiled at its first use (re's cache)


def _printable(text: str) -> str:
    """Control characters (e.g. terminal escapes in a hostile server's error body) as \\xNN,
    so printing an error can never drive the user's terminal."""
    return re.sub(_CONTROL, lambda m: f"\\x{ord(m.group()):02x}", text)


class DownloadError(Exception):
    """Base of every objget error. `source` is already redacted; `dest` may be None.
    Control characters in the message are shown escaped (`\\x1b`)."""

    def __init__(self, message: str, *, source: str | None = None, dest: str | None = None):
        message = _printable(message)
        super().__init__(message)
        self.message = message
        self.source = source
        self.dest = dest

    def __str__(self) -> str:
        return self.message


class RemoteError(DownloadError):
    """The store answered, and the answer is final (not retried).

    `status` is the HTTP status, `code`/`request_id` come from the store's error body or
    headers when it sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        source: str | None = None,
        dest: str | None = None,
    ):
        super().__init__(message, source=source, dest=dest)
        self.status = status
        self.code = code
        self.request_id = request_id


class ObjectNotFound(RemoteError, FileNotFoundError):
    """404: no such object (or bucket)."""


class AccessDenied(RemoteError):
    """401/403: the credentials were refused. The message names their source, never a secret."""


class ObjectChanged(RemoteError):
    """The object changed while it was being downloaded (412, or a different identity)."""


class RangeNotSupported(RemoteError):
    """The answer to a Range request was not the exact bytes asked for."""


class TransportError(DownloadError):
    """A retryable failure: connection reset/refused, timeout, stall, short body, 5xx, 429.

    `retry_after` is the server's `Retry-After` in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        source: str | None = None,
        dest: str | None = None,
    ):
        super().__init__(message, source=source, dest=dest)
        self.status = status
        self.retry_after = retry_after
        self.request_id = request_id


class TLSError(TransportError):
    """The server's certificate was refused (chain, dates, host name), the CA certificates
    could not be loaded, or the server does not speak TLS; never retried (a retry would fail
    the same way). Other TLS failures, such as a handshake cut short, are plain retryable
    `TransportError`s."""


class RetriesExhausted(DownloadError):
    """A retryable failure kept happening until the retry policy gave up."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_error: BaseException,
        source: str | None = None,
        dest: str | None = None,
    ):
        super().__init__(message, source=source, dest=dest)
        self.attempts = attempts
        self.last_error = last_error


class IntegrityError(DownloadError):
    """The downloaded bytes do not match the expected checksum; the destination is untouched."""

    def __init__(
        self,
        message: str,
        *,
        algorithm: str,
        expected: str,
        actual: str,
        source: str | None = None,
        dest: str | None = None,
    ):
        super().__init__(message, source=source, dest=dest)
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class CheckpointError(DownloadError):
    """A checkpoint cannot be used (and could not be safely ignored)."""


class LockedError(CheckpointError):
    """Another objget run holds the lock on this destination."""


class UnsafePath(DownloadError, ValueError):
    """A key (or manifest `dest`) that cannot be written safely under the destination
    directory; the message says why. In a batch the object is refused and the batch goes on."""
