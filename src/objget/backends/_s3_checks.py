"""S3's checksums as the store sends them, and the whole-file checks S3 allows after the
download, where no per-range CRC can be combined:

- `checksums_from_headers`: the `x-amz-checksum-*` values of a HEAD or whole-object GET answer.
  A COMPOSITE value (`B64-N`: a checksum of the part checksums) keeps its `-N`; a value without
  one is the full object's, unless the answer says `x-amz-checksum-type: COMPOSITE`.
- `full_object_digest`: the full-object SHA-256 (else SHA-1) as a `DigestCheck` in base64. S3
  gives SHA-256/SHA-1 as full-object values only for single-part uploads (multipart ones are
  always COMPOSITE: FULL_OBJECT exists for the CRCs only).
- `Md5Check`: the plain-MD5 ETag of a single-part, non-KMS, non-SSE-C object (`--verify md5`).
- `CompositeCheck`: a multipart upload's COMPOSITE checksum (`x-amz-checksum-crc32c: B64-N`,
  also SHA-256/SHA-1), the checksum of the concatenated big-endian part checksums. The part
  sizes come from GetObjectAttributes; each part's checksum is computed from the file, then
  composed and compared.

Each reads the finished temp file once (page cache, C-speed hashing). `parse_object_parts`
is the pure reader of GetObjectAttributes' `ObjectParts` XML.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .._verify import DigestCheck
from ..integrity.s3crc import crc_function, encode_checksum

__all__ = [
    "DIGESTS",
    "SUMS",
    "CompositeCheck",
    "Md5Check",
    "PartsPage",
    "checksums_from_headers",
    "full_object_digest",
    "parse_object_parts",
]

# What S3 may send, strongest first; the CRCs are combinable per range, the digests are not.
SUMS = ("crc64nvme", "crc32c", "crc32", "sha256", "sha1")
DIGESTS = ("sha256", "sha1")

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


def checksums_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Algorithm -> value (S3's text) from an answer's `x-amz-checksum-*` headers; under
    `x-amz-checksum-type: COMPOSITE` only values that carry their `-N` are kept."""
    found: dict[str, str] = {}
    for name in SUMS:
        value = headers.get(f"x-amz-checksum-{name}")
        if value and value.strip():
            found[name] = value.strip()
    if (headers.get("x-amz-checksum-type") or "").strip().upper() == "COMPOSITE":
        found = {k: v for k, v in found.items() if "-" in v}
    return found


def full_object_digest(checksums: Mapping[str, str]) -> DigestCheck | None:
    """The full-object SHA-256 (else SHA-1) the store gave, as a base64 file check; None when
    it gave none, or only a COMPOSITE one (`B64-N`)."""
    for name in DIGESTS:
        value = checksums.get(name, "")
        if value and "-" not in value:
            return DigestCheck(name, value, b64=True)
    return None


def Md5Check(expected_hex: str) -> DigestCheck:
    """MD5 of the whole file against the ETag's hex digest."""
    return DigestCheck("md5", expected_hex)


class CompositeCheck:
    """A COMPOSITE S3 checksum over parts of the given sizes; `expected` is the store's text
    (`B64-N`), `compute` returns the same form for the file."""

    __slots__ = ("_algorithm", "_sizes", "expected", "name")

    def __init__(self, algorithm: str, expected: str, part_sizes: tuple[int, ...]) -> None:
        if algorithm not in DIGESTS and crc_function(algorithm) is None:
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
        if sum(self._sizes) != size:
            return f"<part sizes add up to {sum(self._sizes)}, not {size}>"
        if self._algorithm in DIGESTS:
            return self._digest_parts(fd)
        update = crc_function(self._algorithm)
        assert update is not None
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

    def _digest_parts(self, fd: int) -> str:
        """SHA-256/SHA-1 of the concatenated part digests, base64 with `-N`."""
        joined = hashlib.new(self._algorithm, usedforsecurity=False)
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        pos = 0
        for part in self._sizes:
            h, end = hashlib.new(self._algorithm, usedforsecurity=False), pos + part
            while pos < end:
                n = os.preadv(fd, [view[: min(_CHUNK, end - pos)]], pos)
                if n <= 0:
                    return "<file shorter than its parts>"
                h.update(view[:n])
                pos += n
            joined.update(h.digest())
        whole = base64.b64encode(joined.digest()).decode("ascii")
        return f"{whole}-{len(self._sizes)}"
