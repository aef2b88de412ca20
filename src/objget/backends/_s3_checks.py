"""S3's checksums as the store sends them, translated for `objget.integrity`:

- `checksums_from_headers`: the `x-amz-checksum-*` values of a HEAD or whole-object GET answer.
  A COMPOSITE value (`B64-N`: a checksum of the part checksums) keeps its `-N`; a value without
  one is the full object's, unless the answer says `x-amz-checksum-type: COMPOSITE`.
- `parse_object_parts`: the pure reader of GetObjectAttributes' `ObjectParts` XML, the part
  layout a COMPOSITE check needs.

Which of them objget verifies, and how, is integrity's (`objget.integrity.build`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..integrity.checks import SUMS

__all__ = ["PartsPage", "checksums_from_headers", "parse_object_parts"]

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
