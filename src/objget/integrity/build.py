"""Checkers from a description: the store says which checks an object offers
(`ObjectChecks`), integrity decides which of them objget runs and builds them.

- `checksummer_for`: the per-range CRC — OSS's CRC-64/XZ (`crc64ecma`, decimal), else S3's
  full-object CRC64NVME, CRC32C or CRC32 (base64). A COMPOSITE value (`B64-N`) is not a
  whole-object CRC and is left to the file checks; a CRC with no fast implementation installed
  is logged and skipped (OSS's CRC-64 instead fails with the install hint, as it always did).
- `file_checks_for`: what needs one more read of the file — the full-object SHA-256 (else
  SHA-1), the plain-MD5 ETag, a multipart upload's COMPOSITE checksum. The part layout a
  COMPOSITE check needs is asked for (`part_sizes()`, one request to the store) only when the
  object has one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .._log import log
from .checks import CRCS, DIGESTS, SUMS, ObjectChecks

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:  # the checkers' modules load when an object offers such a check
    from ._protocols import Checksummer, FileCheck
    from .digests import DigestCheck

__all__ = ["checksummer_for", "file_checks_for", "full_object_digest"]


PartSizes = Callable[[], "tuple[int, ...] | None"]


def checksummer_for(checks: ObjectChecks) -> Checksummer | None:
    """The CRC the engine computes per range for this object, or None when it offers none."""
    if checks.checksummer is not None:
        return checks.checksummer
    values = checks.values
    oss = values.get("crc64ecma")
    if oss is not None:
        from .crc64 import Crc64

        return Crc64(expected=int(oss))
    for name in CRCS:
        value = values.get(name)
        if not value:
            continue
        if "-" in value:
            log.info("%s: composite %s of a multipart upload is not verified", checks.source, name)
            continue
        from .s3crc import CrcChecksummer, crc_function, decode_checksum

        update = crc_function(name)
        if update is None:
            log.warning(
                "no fast %s implementation is installed (pip install 'objget[s3]'); the "
                "checksum is not verified",
                name,
            )
            continue
        try:
            expected = decode_checksum(name, value)
        except ValueError as exc:
            log.warning("ignoring the store's checksum: %s", exc)
            continue
        return CrcChecksummer(name, expected, update)
    return None


def full_object_digest(checksums: Mapping[str, str]) -> DigestCheck | None:
    """The full-object SHA-256 (else SHA-1) the store gave, as a base64 file check; None when
    it gave none, or only a COMPOSITE one (`B64-N`)."""
    for name in DIGESTS:
        value = checksums.get(name, "")
        if value and "-" not in value:
            from .digests import DigestCheck

            return DigestCheck(name, value, b64=True)
    return None


def file_checks_for(
    checks: ObjectChecks, *, size: int | None, part_sizes: PartSizes | None = None
) -> tuple[FileCheck, ...]:
    """Checks of the finished file that no per-range CRC can do: the full-object SHA-256 or
    SHA-1, the plain-MD5 ETag and a multipart upload's COMPOSITE checksum (its part sizes
    from `part_sizes()`; skipped, with a log line, when the store does not tell them)."""
    values = checks.values
    found: list[FileCheck] = []
    digest = full_object_digest(values)
    if digest is not None:
        found.append(digest)
    if values.get("md5"):
        from .digests import Md5Check

        found.append(Md5Check(values["md5"]))
    for name in SUMS:
        value = values.get(name, "")
        count = value.rpartition("-")[2]
        if "-" not in value or not count.isdigit():
            continue
        from .digests import CompositeCheck
        from .s3crc import crc_function

        if name not in DIGESTS and crc_function(name) is None:
            continue
        sizes = part_sizes() if part_sizes is not None else None
        if sizes is None or len(sizes) != int(count) or sum(sizes) != size:
            log.info("%s: part sizes unknown; composite %s not verified", checks.source, name)
            continue
        found.append(CompositeCheck(name, value, sizes))
        break
    return tuple(found)
