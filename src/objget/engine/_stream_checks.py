"""Whole-object checks of a stream, fed with the bytes in the order they are sent.

A file download runs these after the fact, reading the finished temp file (`FileCheck`); a
stream has no file to read, so the same checks are computed on the way out: a hashlib digest
(`--checksum sha256:`, S3's plain-MD5 ETag) and S3's COMPOSITE CRC of a multipart upload (the
CRC of each part, then of their concatenated big-endian values).
"""

from __future__ import annotations

import hashlib

from .._config import DownloadConfig
from .._log import log
from .._models import ObjectMeta
from ..backends._base import Backend
from ..integrity.checks import FileCheck
from ..integrity.digests import CompositeCheck, DigestCheck
from ._stream_sink import StreamCheck
from ._verify import file_checks_of

__all__ = ["CompositeStreamCheck", "HashCheck", "stream_checks"]


def stream_checks(
    backend: Backend, key: str, meta: ObjectMeta, config: DownloadConfig, *, store: bool = True
) -> list[StreamCheck]:
    """The checks a file download of this object would run after the fact (the store's own
    ones only with `store`: not for an empty object); a check of a kind that cannot be
    computed in order is logged as not verified."""
    files: list[FileCheck] = []
    if config.checksum:
        files.append(DigestCheck("sha256", config.checksum.partition(":")[2]))
    if store and meta.size:
        files.extend(file_checks_of(backend, key, meta, size=meta.size))
    out: list[StreamCheck] = []
    for check in files:
        if isinstance(check, DigestCheck):
            out.append(HashCheck(check.name, check.expected))
            continue
        if isinstance(check, CompositeCheck):
            out.append(
                CompositeStreamCheck(check.name, check.expected, check.algorithm, check.part_sizes)
            )
            continue
        log.warning("%s: %s cannot be checked on a stream; not verified", key, check.name)
    return out


class HashCheck:
    """A hashlib digest (hex) of the bytes in order."""

    __slots__ = ("_hash", "expected", "name")

    def __init__(self, name: str, expected: str) -> None:
        self.name = name
        self.expected = expected.lower()
        self._hash = hashlib.new(name, usedforsecurity=False)

    def update(self, data: memoryview, /) -> None:
        self._hash.update(data)

    def result(self) -> str:
        return self._hash.hexdigest()


class CompositeStreamCheck:
    """S3's COMPOSITE checksum (`B64-N`) over parts of the given sizes, of the bytes in order."""

    __slots__ = (
        "_algorithm", "_crc", "_extra", "_joined", "_left", "_part", "_sizes", "_update",
        "_width", "expected", "name",
    )  # fmt: skip

    def __init__(self, name: str, expected: str, algorithm: str, sizes: tuple[int, ...]) -> None:
        from ..integrity.s3crc import crc_function

        update = crc_function(algorithm)
        if update is None:
            raise ValueError(f"no {algorithm} implementation installed")
        self.name = name
        self.expected = expected
        self._algorithm = algorithm
        self._update = update
        self._width = 8 if algorithm == "crc64nvme" else 4
        self._sizes = sizes
        self._part = 0  # the part being summed
        self._left = sizes[0] if sizes else 0  # its bytes still to come
        self._crc = 0
        self._joined = bytearray()  # the finished parts' CRCs, big-endian
        self._extra = 0  # bytes beyond the last part

    def update(self, data: memoryview, /) -> None:
        while len(data) or (self._part < len(self._sizes) and self._left == 0):
            if self._part >= len(self._sizes):
                self._extra += len(data)
                return
            take = min(len(data), self._left)
            if take:
                self._crc = self._update(self._crc, data[:take])
                self._left -= take
                data = data[take:]
            if self._left == 0:
                self._joined += self._crc.to_bytes(self._width, "big")
                self._crc = 0
                self._part += 1
                self._left = self._sizes[self._part] if self._part < len(self._sizes) else 0

    def result(self) -> str:
        from ..integrity.s3crc import encode_checksum

        if self._extra or self._part != len(self._sizes):
            return f"<the stream does not fit the {len(self._sizes)} parts' sizes>"
        whole = self._update(0, memoryview(bytes(self._joined)))
        return f"{encode_checksum(self._algorithm, whole)}-{len(self._sizes)}"
