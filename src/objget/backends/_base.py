"""The backend contract: two tiny Protocols. Backends translate; the engine validates.

A backend raises only objget's own errors (`RemoteError` subclasses for final answers,
`TransportError` for retryable ones) with the SDK/socket error as `__cause__`.
"""

from __future__ import annotations

from typing import Protocol

from .._models import ByteRange, ObjectMeta

__all__ = ["Backend", "Checksummer", "RangeBody"]


class RangeBody(Protocol):
    """An open response body. `readinto` returns 0 at the end of the body.

    `content_range` is the raw `Content-Range` header (None when absent), `content_length`
    the parsed `Content-Length` (None when absent). The engine checks both against what it
    asked for before it writes one byte.
    """

    status: int
    content_range: str | None
    content_length: int | None

    def readinto(self, buf: memoryview, /) -> int: ...

    def close(self) -> None:
        """Release the connection (to the pool when the body was read to its end)."""


class Backend(Protocol):
    """One store (a host, a bucket); `key` is the backend's own object address.

    `get_range` with `rng=None` asks for the whole object without a Range header (the
    one-stream path for servers that do not do ranges). `meta` is what `head` returned: the
    backend uses its ETag / Last-Modified / version to pin the object (If-Match, If-Range,
    versionId).
    """

    def display(self, key: str) -> str:
        """The source as it may be shown in messages, logs and checkpoints (no secrets)."""

    def head(self, key: str, *, version_id: str | None = None) -> ObjectMeta: ...

    def get_range(self, key: str, rng: ByteRange | None, *, meta: ObjectMeta) -> RangeBody: ...

    def checksummer(self, meta: ObjectMeta) -> Checksummer | None:
        """The per-range checksum the engine should compute for this object, if any."""

    def close(self) -> None: ...


class Checksummer(Protocol):
    """A CRC the engine computes per range, on the same buffer as the write.

    `expected` is the store's whole-object value; `combine(crc_a, crc_b, len_b)` is the CRC of
    the concatenation, so per-range values persisted in the checkpoint give the whole-object
    value without re-reading the file.
    """

    name: str
    expected: int

    def update(self, crc: int, data: memoryview, /) -> int: ...

    def combine(self, crc_a: int, crc_b: int, len_b: int, /) -> int: ...
