"""Integrity owns the checks: a backend describes what an object offers (`ObjectChecks`), and
this package builds and runs the checkers.

- `checks`: the `Checksummer` and `FileCheck` Protocols and `ObjectChecks` (what a backend
  imports).
- `compare`: `check_all`, where every check's result is compared.
- `build`: `checksummer_for` / `file_checks_for`, from a description to checkers.
- `digests`: whole-file digests and S3's COMPOSITE part checksums (read the finished file).
- `crc64` (OSS's CRC-64/XZ, `x-oss-hash-crc64ecma`) and `s3crc` (S3's full-object CRCs): a
  `Checksummer` each, with a C `update` and a GF(2) `combine`.
"""

from __future__ import annotations

from .build import checksummer_for, file_checks_for, full_object_digest
from .checks import Checksummer, FileCheck, ObjectChecks
from .compare import Verified, check_all, checksum_text
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
