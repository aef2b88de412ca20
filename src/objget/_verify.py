"""Verification of a finished temp file before it replaces the destination.

Always: the written spans cover exactly `[0, size)`. Then the combined per-range CRC against
the store's value, then whole-file checks that need one more read (a user's `sha256:`, S3's
full-object SHA-256/SHA-1, plain-MD5 ETag or COMPOSITE part checksums). Any mismatch discards
the temp file and checkpoint and raises IntegrityError; the destination is never touched.

`check_all` is the one place a CRC and the file checks are compared: the engine's path
(`verify`) and a batch's small objects (`_batch_small`) both end there.

Why SHA-256/SHA-1 are a file check and not computed on the byte path: a parallel download
writes out of order and these digests do not combine like CRCs, and where the bytes do come in
order (one stream) hashing on the stream's thread would slow the stream. Measured on this
machine kind (1 GiB, 2-core VM): SHA-256 0.6 s in memory (SHA-NI), SHA-1 0.6 s, reading the
file back from the page cache 0.15 s — the extra read costs a quarter of the hashing itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from ._exceptions import DownloadError, IntegrityError
from ._plan import Span
from .backends._base import Checksummer

__all__ = ["DigestCheck", "FileCheck", "Verified", "check_all", "hash_fd", "verify"]

_CHUNK = 4 * 1024 * 1024


class FileCheck(Protocol):
    """A check that reads the finished file: `compute` returns the same text form as
    `expected`."""

    name: str
    expected: str

    def compute(self, fd: int, size: int, /) -> str: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Verified:
    """What was checked (`names`, `size` first) and each checksum's value (`values`:
    name -> value in the form the store or the user gave it)."""

    names: tuple[str, ...]
    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def hash_fd(fd: int, size: int, update: Callable[[memoryview], object]) -> None:
    """Feed the first `size` bytes of `fd` to `update`, in 4 MiB reads into one buffer."""
    buf = bytearray(min(_CHUNK, max(size, 1)))
    view = memoryview(buf)
    pos = 0
    while pos < size:
        n = os.preadv(fd, [view[: min(len(buf), size - pos)]], pos)
        if n <= 0:
            raise OSError(f"the temp file ended at {pos} of {size} bytes")
        update(view[:n])
        pos += n


class DigestCheck:
    """A hashlib digest of the whole file, e.g. `sha256` or `md5`; `expected` in hex, or in
    base64 with `b64=True` (S3's `x-amz-checksum-sha256` form)."""

    __slots__ = ("_b64", "expected", "name")

    def __init__(self, name: str, expected: str, *, b64: bool = False) -> None:
        hashlib.new(name)  # fail early on an unknown algorithm
        self.name = name
        self._b64 = b64
        self.expected = expected.strip() if b64 else expected.strip().lower()

    def compute(self, fd: int, size: int, /) -> str:
        return self.text(self.digest(fd, size))

    def digest(self, fd: int, size: int) -> bytes:
        """The raw digest of the file's first `size` bytes."""
        h = hashlib.new(self.name, usedforsecurity=False)
        hash_fd(fd, size, h.update)
        return h.digest()

    def text(self, digest: bytes) -> str:
        """`digest` in the form of `expected`."""
        return base64.b64encode(digest).decode("ascii") if self._b64 else digest.hex()


def verify(
    fd: int,
    *,
    spans: tuple[Span, ...],
    size: int,
    checksummer: Checksummer | None,
    checks: Iterable[FileCheck],
    display: str,
    discard: Callable[[], None],
) -> Verified:
    """The spans cover `[0, size)`, then `check_all` with the spans' combined CRC."""
    if size > 0 and (len(spans) != 1 or spans[0].start != 0 or spans[0].stop != size):
        raise DownloadError(
            f"{display}: internal error: downloaded spans {spans} do not cover 0-{size}; "
            "run again to resume",
            source=display,
        )
    if os.fstat(fd).st_size != size:
        os.ftruncate(fd, size)
    crc = spans[0].crc if spans else None
    return check_all(
        fd, size=size, checksummer=checksummer, crc=crc, checks=checks, display=display,
        discard=discard,
    )  # fmt: skip


def check_all(
    fd: int,
    *,
    size: int,
    checksummer: Checksummer | None,
    crc: int | None,
    checks: Iterable[FileCheck],
    display: str,
    discard: Callable[[], None],
) -> Verified:
    """Compare the CRC computed on the byte path (`crc`, of all `size` bytes) with the
    checksummer's, then run every file check on `fd`; IntegrityError (after `discard()`) at
    the first mismatch."""
    names = ["size"]
    values: dict[str, str] = {}
    if checksummer is not None and size > 0:
        _compare(checksummer.name, str(checksummer.expected), str(crc), display, discard)
        names.append(checksummer.name)
        values[checksummer.name] = checksum_text(checksummer)
    digests: dict[str, bytes] = {}  # one read per algorithm (the user's and the store's SHA-256)
    for check in checks:
        if isinstance(check, DigestCheck):
            raw = digests.get(check.name)
            if raw is None:
                raw = digests[check.name] = check.digest(fd, size)
            actual = check.text(raw)
        else:
            actual = check.compute(fd, size)
        _compare(check.name, check.expected, actual, display, discard)
        if check.name not in values:  # e.g. the user's sha256 (hex) and the store's (base64)
            names.append(check.name)
            values[check.name] = check.expected
    return Verified(names=tuple(names), values=MappingProxyType(values))


def checksum_text(checksummer: Checksummer) -> str:
    """The checksummer's expected value as the store writes it (its `text()` when it has one,
    e.g. S3's base64; else the number, as OSS's decimal CRC-64)."""
    text = getattr(checksummer, "text", None)
    return str(text()) if callable(text) else str(checksummer.expected)


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
