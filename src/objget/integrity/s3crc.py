"""The full-object CRCs S3 stores (`x-amz-checksum-crc64nvme`, `-crc32c`, `-crc32`), each as a
`Checksummer`: a fast C `update` that releases the GIL, and a GF(2) `combine`.

Implementations, measured on 1 MiB memoryviews (2-core VM, one thread / two threads):

- CRC-32: `zlib.crc32` (stdlib) 2.2 / 4.7 GB/s.
- CRC-32C: `crc32c` 9.8 / 12.6 GB/s, `fastcrc` 9.2 / 11.0, `awscrt` 4.1 / 7.1,
  `google-crc32c` 5.6 (needs a bytes copy).
- CRC-64/NVME: `awscrt` 6.7 / 9.3 GB/s, `anycrc` 6.8 / 6.6 (holds the GIL).

The first importable one in that order is used; with none, the checksum is not verified (the
caller logs it). Values on the wire are the big-endian CRC in base64.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from ._gf2 import CrcCombiner

__all__ = ["ALGORITHMS", "CrcChecksummer", "crc_function", "decode_checksum", "encode_checksum"]

Update = Callable[[int, memoryview], int]

# name -> (reflected polynomial, width in bits)
ALGORITHMS: dict[str, tuple[int, int]] = {
    "crc64nvme": (0x9A6C9329AC4BC9B5, 64),
    "crc32c": (0x82F63B78, 32),
    "crc32": (0xEDB88320, 32),
}

_COMBINERS: dict[str, CrcCombiner] = {}


def _zlib_crc32(crc: int, data: memoryview) -> int:
    return zlib.crc32(data, crc)


def _candidates(name: str) -> Sequence[tuple[str, Callable[[Any], Update]]]:
    """(module, adapter) pairs in order of measured speed."""
    if name == "crc32c":
        return (
            ("crc32c", lambda m: lambda crc, data: m.crc32c(data, crc)),
            ("fastcrc", lambda m: lambda crc, data: m.crc32.iscsi(data, crc)),
            ("awscrt.checksums", lambda m: lambda crc, data: m.crc32c(data, crc)),
            ("google_crc32c", lambda m: lambda crc, data: m.extend(crc, bytes(data))),
        )
    if name == "crc64nvme":
        return (
            ("awscrt.checksums", lambda m: lambda crc, data: m.crc64nvme(data, crc)),
            ("anycrc", _anycrc_nvme),
        )
    return ()


def _anycrc_nvme(module: Any) -> Update:
    model = module.Model("CRC64-NVME")
    return lambda crc, data: int(model.calc(data, crc))


_CHECK = b"123456789"
_CHECK_VALUES = {"crc64nvme": 0xAE8B14860A799888, "crc32c": 0xE3069283, "crc32": 0xCBF43926}
_FOUND: dict[str, Update | None] = {}


def crc_function(name: str) -> Update | None:
    """`update(crc, data) -> crc` for `name`, from the fastest installed module that passes the
    standard check value; None when no implementation is installed."""
    if name in _FOUND:
        return _FOUND[name]
    if name not in ALGORITHMS:
        raise ValueError(f"unknown checksum algorithm {name!r}")
    found: Update | None = _zlib_crc32 if name == "crc32" else None
    for module_name, adapt in _candidates(name):
        try:
            fn = adapt(importlib.import_module(module_name))
            if fn(0, memoryview(_CHECK)) == _CHECK_VALUES[name]:
                found = fn
                break
        except Exception:  # noqa: S112 - an absent or broken module: try the next
            continue
    _FOUND[name] = found
    return found


def decode_checksum(name: str, value: str) -> int:
    """The integer CRC from S3's base64 text; ValueError when it is not one."""
    width = ALGORITHMS[name][1] // 8
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name}: {value!r} is not base64") from None
    if len(raw) != width:
        raise ValueError(f"{name}: {value!r} is not a {width}-byte value")
    return int.from_bytes(raw, "big")


def encode_checksum(name: str, crc: int) -> str:
    """S3's text form of a CRC (big-endian bytes in base64)."""
    width = ALGORITHMS[name][1] // 8
    return base64.b64encode(crc.to_bytes(width, "big")).decode("ascii")


class CrcChecksummer:
    """A `Checksummer` for one S3 CRC with the store's whole-object value as `expected`."""

    __slots__ = ("_combiner", "_update", "expected", "name")

    def __init__(self, name: str, expected: int, update: Update) -> None:
        self.name = name
        self.expected = expected
        self._update = update
        combiner = _COMBINERS.get(name)
        if combiner is None:
            combiner = _COMBINERS[name] = CrcCombiner(*ALGORITHMS[name])
        self._combiner = combiner

    def update(self, crc: int, data: memoryview, /) -> int:
        return self._update(crc, data)

    def combine(self, crc_a: int, crc_b: int, len_b: int, /) -> int:
        return self._combiner.combine(crc_a, crc_b, len_b)

    def text(self) -> str:
        """`expected` as S3 sends it (base64)."""
        return encode_checksum(self.name, self.expected)

    def __repr__(self) -> str:
        return f"CrcChecksummer({self.name}, expected={encode_checksum(self.name, self.expected)})"
