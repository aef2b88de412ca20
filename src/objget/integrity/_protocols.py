"""PURE: the checker Protocols: `Checksummer` (a CRC computed per range) and `FileCheck` (a check
of the finished file). Their own module: a Protocol class needs `typing` (~11 M instructions
to import), which nothing else on a plain download's path does; objget's own modules name them
for the type checker only, and `objget.integrity` / `objget.backends` / `integrity.checks`
give them to a user on first access.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Checksummer", "FileCheck", "HasText"]


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


@runtime_checkable
class HasText(Protocol):
    """A checksummer that writes its expected value as the store does (S3's base64)."""

    def text(self) -> str: ...
