"""Whole-file checks S3 allows after the download, where no per-range CRC can be combined:

- `Md5Check`: the plain-MD5 ETag of a single-part, non-KMS, non-SSE-C object (`--verify md5`).
- `CompositeCheck`: a multipart upload's COMPOSITE CRC (`x-amz-checksum-crc32c: B64-N`), the
  CRC of the concatenated big-endian part CRCs. The part sizes come from GetObjectAttributes;
  each part's CRC is computed from the file, then composed and compared.

Both read the finished temp file once (page cache, C-speed hashing). `parse_object_parts`
is the pure reader of GetObjectAttributes' `ObjectParts` XML.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .._verify import DigestCheck
from ..integrity.s3crc import crc_function, encode_checksum

__all__ = ["CompositeCheck", "Md5Check", "PartsPage", "parse_object_parts"]

_CHUNK = 4 * 1024 * 1024
_PART = re.compile(rb"<Part>(.*?)</Part>", re.DOTALL)
_NUM = re.compile(rb"<PartNumber>(\d{1,6})</PartNumber>")
_SIZE = re.compile(rb"<Size>(\d{1,19})</Size>")
_TRUNC = re.compile(rb"<IsTruncated>(true|false)</IsTruncated>")
_NEXT = re.compile(rb"<NextPartNumberMarker>(\d{1,6})</NextPartNumberMarker>")


@dataclass(frozen=True, kw_only=True, slots=True)
class PartsPage:
    """One page of GetObjectAttributes ObjectParts: (number, size) pairs in order."""

    parts: tuple[tuple[int, int], ...]
    truncated: bool
    next_marker: int | None


def parse_object_parts(body: bytes) -> PartsPage:
    """Parts of one answer; ValueError when it lists none or is malformed."""
    parts = []
    for m in _PART.finditer(body):
        num, size = _NUM.search(m.group(1)), _SIZE.search(m.group(1))
        if num is None or size is None:
            raise ValueError("a <Part> without PartNumber or Size")
        parts.append((int(num.group(1)), int(size.group(1))))
    if not parts:
        raise ValueError("no <Part> in the ObjectParts answer")
    trunc = _TRUNC.search(body)
    nxt = _NEXT.search(body)
    return PartsPage(
        parts=tuple(parts),
        truncated=bool(trunc and trunc.group(1) == b"true"),
        next_marker=int(nxt.group(1)) if nxt else None,
    )


def Md5Check(expected_hex: str) -> DigestCheck:
    """MD5 of the whole file against the ETag's hex digest."""
    return DigestCheck("md5", expected_hex)


class CompositeCheck:
    """A COMPOSITE S3 checksum over parts of the given sizes; `expected` is the store's text
    (`B64-N`), `compute` returns the same form for the file."""

    __slots__ = ("_algorithm", "_sizes", "expected", "name")

    def __init__(self, algorithm: str, expected: str, part_sizes: tuple[int, ...]) -> None:
        if crc_function(algorithm) is None:
            raise ValueError(f"no {algorithm} implementation installed")
        self._algorithm = algorithm
        self.name = f"{algorithm}-composite"
        self.expected = expected
        self._sizes = part_sizes

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def part_sizes(self) -> tuple[int, ...]:
        """The multipart upload's part sizes, in order (a stream computes the check as it goes)."""
        return self._sizes

    def compute(self, fd: int, size: int) -> str:
        update = crc_function(self._algorithm)
        assert update is not None
        if sum(self._sizes) != size:
            return f"<part sizes add up to {sum(self._sizes)}, not {size}>"
        joined = bytearray()
        pos = 0
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        width = 8 if self._algorithm == "crc64nvme" else 4
        for part in self._sizes:
            crc, end = 0, pos + part
            while pos < end:
                n = os.preadv(fd, [view[: min(_CHUNK, end - pos)]], pos)
                if n <= 0:
                    return "<file shorter than its parts>"
                crc = update(crc, view[:n])
                pos += n
            joined += crc.to_bytes(width, "big")
        whole = update(0, memoryview(bytes(joined)))
        return f"{encode_checksum(self._algorithm, whole)}-{len(self._sizes)}"
