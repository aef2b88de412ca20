"""Verification of a finished temp file before it replaces the destination.

Always: the written spans cover exactly `[0, size)`. Then the combined per-range CRC against
the store's value, then whole-file checks that need one more read (a user's `sha256:`, S3's
plain-MD5 ETag or COMPOSITE part CRCs). Any mismatch discards the temp file and checkpoint and
raises IntegrityError; the destination is never touched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Protocol

from ._exceptions import DownloadError, IntegrityError
from ._plan import Span
from .backends._base import Checksummer

__all__ = ["DigestCheck", "FileCheck", "hash_fd", "verify"]

_CHUNK = 4 * 1024 * 1024


class FileCheck(Protocol):
    """A check that reads the finished file: `compute` returns the same text form as
    `expected`."""

    name: str
    expected: str

    def compute(self, fd: int, size: int, /) -> str: ...


def hash_fd(fd: int, size: int, update: Callable[[bytes], object]) -> None:
    """Feed the first `size` bytes of `fd` to `update`, in 4 MiB reads."""
    pos = 0
    while pos < size:
        chunk = os.pread(fd, min(_CHUNK, size - pos), pos)
        if not chunk:
            raise OSError(f"the temp file ended at {pos} of {size} bytes")
        update(chunk)
        pos += len(chunk)


class DigestCheck:
    """A hashlib digest of the whole file (hex), e.g. `sha256` or `md5`."""

    __slots__ = ("expected", "name")

    def __init__(self, name: str, expected_hex: str) -> None:
        hashlib.new(name)  # fail early on an unknown algorithm
        self.name = name
        self.expected = expected_hex.lower()

    def compute(self, fd: int, size: int, /) -> str:
        h = hashlib.new(self.name, usedforsecurity=False)
        hash_fd(fd, size, h.update)
        return h.hexdigest()


def verify(
    fd: int,
    *,
    spans: tuple[Span, ...],
    size: int,
    checksummer: Checksummer | None,
    checks: Iterable[FileCheck],
    display: str,
    discard: Callable[[], None],
) -> tuple[str, ...]:
    """Run every check; returns the names of what was verified (`size` first)."""
    if size > 0 and (len(spans) != 1 or spans[0].start != 0 or spans[0].stop != size):
        raise DownloadError(
            f"{display}: internal error: downloaded spans {spans} do not cover 0-{size}; "
            "run again to resume",
            source=display,
        )
    if os.fstat(fd).st_size != size:
        os.ftruncate(fd, size)
    verified = ["size"]
    if checksummer is not None and size > 0:
        _compare(checksummer.name, str(checksummer.expected), str(spans[0].crc), display, discard)
        verified.append(checksummer.name)
    for check in checks:
        _compare(check.name, check.expected, check.compute(fd, size), display, discard)
        verified.append(check.name)
    return tuple(verified)


def _compare(
    name: str, expected: str, actual: str, display: str, discard: Callable[[], None]
) -> None:
    if actual == expected:
        return
    discard()
    raise IntegrityError(
        f"{display}: {name} mismatch (expected {expected}, got {actual}); the download was "
        "discarded and the destination was not touched",
        algorithm=name,
        expected=expected,
        actual=actual,
        source=display,
    )
