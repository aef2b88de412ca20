"""Integrity checks computed on the download buffer: the CRCs stores keep for whole objects.

`crc64` (module) is OSS's CRC-64/XZ (`x-oss-hash-crc64ecma`); `s3crc` holds S3's full-object CRCs.
Both give a `Checksummer` (see `objget.backends`) with a C `update` and a GF(2) `combine`.
"""

from __future__ import annotations

from .crc64 import Crc64, crc64_combine

__all__ = ["Crc64", "crc64_combine"]
