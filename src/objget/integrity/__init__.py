"""Integrity owns the checks: a backend describes what an object offers (`ObjectChecks`), and
this package builds and runs the checkers.

- `checks`: the `Checksummer` and `FileCheck` Protocols (defined in `_protocols`, loaded at
  first access: they need `typing`) and `ObjectChecks` (what a backend imports).
- `compare`: `check_all`, where every check's result is compared.
- `build`: `checksummer_for` / `file_checks_for`, from a description to checkers.
- `digests`: whole-file digests and S3's COMPOSITE part checksums (read the finished file).
- `crc64` (OSS's CRC-64/XZ, `x-oss-hash-crc64ecma`) and `s3crc` (S3's full-object CRCs): a
  `Checksummer` each, with a C `update` and a GF(2) `combine`.
"""

from __future__ import annotations

import importlib

from .build import checksummer_for, file_checks_for, full_object_digest
from .checks import ObjectChecks
from .compare import Verified, check_all, checksum_text

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._protocols import Checksummer, FileCheck
    from .crc64 import Crc64, crc64_combine
    from .digests import CompositeCheck, DigestCheck, Md5Check

__all__ = [
    "Checksummer",
    "CompositeCheck",
    "Crc64",
    "DigestCheck",
    "FileCheck",
    "Md5Check",
    "ObjectChecks",
    "Verified",
    "check_all",
    "checksum_text",
    "checksummer_for",
    "crc64_combine",
    "file_checks_for",
    "full_object_digest",
]

# the checkers a download without such a check never needs (hashlib, fastcrc, CRC tables): loaded
# on first access (PEP 562)
_LAZY = {
    "Checksummer": "._protocols",
    "FileCheck": "._protocols",
    "CompositeCheck": ".digests",
    "Crc64": ".crc64",
    "DigestCheck": ".digests",
    "Md5Check": ".digests",
    "crc64_combine": ".crc64",
}

if not TYPE_CHECKING:  # mypy sees the imports above, not a catch-all __getattr__

    def __getattr__(name: str) -> object:
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
