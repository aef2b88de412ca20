"""PURE: what a store says about an object's bytes (`ObjectChecks`), and the two kinds of check
objget builds from it.

- `Checksummer`: a CRC the engine computes per range on the download buffer; per-range values
  combine into the whole object's, so a resumed download never re-reads the file.
- `FileCheck`: a check that reads the finished file once (a digest, a COMPOSITE checksum).

A backend only describes (`ObjectChecks`: algorithm -> the store's value, in the store's text);
`objget.integrity.build` turns a description into checkers and `objget.integrity.compare` runs
them. This is the one module of `objget.integrity` a backend imports. (The two Protocols are
defined in `_protocols.py`, which a plain download never imports: named here, they load at
first access.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._protocols import Checksummer, FileCheck

__all__ = ["CRCS", "DIGESTS", "SUMS", "Checksummer", "FileCheck", "ObjectChecks", "no_values"]

# S3's full-object CRCs, in the order they are used; the digests a store may give (they do not
# combine per range like the CRCs); every checksum S3 may send, strongest first
CRCS = ("crc64nvme", "crc32c", "crc32")
DIGESTS = ("sha256", "sha1")
SUMS = (*CRCS, *DIGESTS)


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


if not TYPE_CHECKING:  # mypy sees the import above

    def __getattr__(name: str) -> object:
        if name in ("Checksummer", "FileCheck"):  # defined (typing imported) at first access
            from . import _protocols

            return getattr(_protocols, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
