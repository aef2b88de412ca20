"""PURE: combining reflected CRCs in GF(2) — the CRC of `A + B` from `crc(A)`, `crc(B)`, `len(B)`.

For a reflected CRC whose initial value equals its final XOR (CRC-32, CRC-32C, CRC-64/NVME,
CRC-64/XZ, ...), `crc(A + B) = crc(A) · x^(8·len(B)) mod P  ⊕  crc(B)`. The power of x is built
from a table of `x^(2^k) mod P` in O(log len(B)) multiplications, each O(width) bit steps, so
one combine costs well under a millisecond in pure Python and is independent of the data size.
"""

from __future__ import annotations

__all__ = ["CrcCombiner"]

_MAX_BITS = 64  # lengths below 2**64 bytes


class CrcCombiner:
    """`combine(crc_a, crc_b, len_b)` for one reflected polynomial `poly` of `width` bits.

    `poly` is the reflected (LSB-first) form, e.g. 0xEDB88320 for CRC-32.

    >>> import zlib
    >>> crc32 = CrcCombiner(0xEDB88320, 32)
    >>> crc32.combine(zlib.crc32(b"abc"), zlib.crc32(b"defg"), 4) == zlib.crc32(b"abcdefg")
    True
    """

    __slots__ = ("_one", "_poly", "_powers", "width")

    def __init__(self, poly: int, width: int) -> None:
        if width < 8 or poly >> width:
            raise ValueError("poly must be a reflected polynomial of `width` bits")
        self.width = width
        self._poly = poly
        self._one = 1 << (width - 1)  # x^0 in the reflected representation
        powers = [self._one >> 1]  # x^1
        for _ in range(1, _MAX_BITS + 3):
            powers.append(self.multiply(powers[-1], powers[-1]))
        self._powers = tuple(powers)  # _powers[k] = x^(2^k) mod P

    def multiply(self, a: int, b: int) -> int:
        """`a · b mod P` (both reflected)."""
        m = self._one
        poly = self._poly
        product = 0
        while m:
            if a & m:
                product ^= b
                if not a & (m - 1):
                    break
            m >>= 1
            b = (b >> 1) ^ poly if b & 1 else b >> 1
        return product

    def x8n(self, n: int) -> int:
        """`x^(8·n) mod P`: the operator that appends n zero bytes to a CRC register."""
        if not 0 <= n < 1 << _MAX_BITS:
            raise ValueError(f"length must be in [0, 2**{_MAX_BITS})")
        p = self._one
        k = 3
        while n:
            if n & 1:
                p = self.multiply(self._powers[k], p)
            n >>= 1
            k += 1
        return p

    def combine(self, crc_a: int, crc_b: int, len_b: int, /) -> int:
        """The CRC of the concatenation `A + B`."""
        if len_b == 0:
            return crc_a
        return self.multiply(self.x8n(len_b), crc_a) ^ crc_b
