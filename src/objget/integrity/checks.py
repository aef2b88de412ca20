"""PURE: what a store says about an object's bytes (`ObjectChecks`), and the two kinds of check
objget builds from it.

- `Checksummer`: a CRC the engine computes per range on the download buffer; per-range values
  combine into the whole object's, so a resumed download never re-reads the file.
- `FileCheck`: a check that reads the finished file once (a digest, a COMPOSITE checksum).

A backend only describes (`ObjectChecks`: algorithm -> the store's value, in the store's text);
`objget.integrity.build` turns a description into checkers and `objget.integrity.compare` runs
them. This is the one module of `objget.integrity` a backend imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

__all__ = ["CRCS", "DIGESTS", "SUMS", "Checksummer", "FileCheck", "ObjectChecks", "no_values"]

# S3's full-object CRCs, in the order they are used; the digests a store may give (they do not
# combine per range like the CRCs); every checksum S3 may send, strongest first
CRCS = ("crc64nvme", "crc32c", "crc32")
DIGESTS = ("sha256", "sha1")
SUMS = (*CRCS, *DIGESTS)


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


class FileCheck(Protocol):
    """A check that reads the finished file: `compute` returns the same text form as
    `expected`."""

    name: str
    expected: str

    def compute(self, fd: int, size: int, /) -> str: ...


def no_values() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True, slots=True)
class ObjectChecks:
    """The checks an object offers, as its store describes them.

    `values`: algorithm -> the store's value in the store's own text: `crc64ecma` in decimal
    (OSS), `crc64nvme`/`crc32c`/`crc32`/`sha256`/`sha1` in base64 with `-N` when COMPOSITE
    over N parts (S3), `md5` in hex (a plain-MD5 ETag). `checksummer`: a ready one that wins
    over `values` (a test fake's own CRC); `source` names the object in log lines.
    """

    values: Mapping[str, str] = field(default_factory=no_values)
    checksummer: Checksummer | None = None
    source: str = ""
