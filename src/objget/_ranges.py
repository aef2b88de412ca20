"""PURE: the text forms of byte ranges, and the check of a ranged answer.

Inside objget ranges are half-open `[start, stop)`; this is the only module that writes the
inclusive `bytes=a-b` form or reads `Content-Range`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._models import ByteRange

__all__ = [
    "ContentRange",
    "RangeCheck",
    "check_range_answer",
    "parse_content_range",
    "range_header",
]

# what a Content-Range may look like; `bytes a-b/total` as servers write it is read without it
# (`_plain_parts`), so the pattern compiles (~1 M instructions) only for another spelling
_CONTENT_RANGE = r"^\s*bytes\s+(\d{1,19})-(\d{1,19})/(\d{1,19}|\*)\s*$"
_MAX = 2**63 - 1


def range_header(rng: ByteRange) -> str:
    """`Range` header value for a non-empty half-open range."""
    if len(rng) == 0:
        raise ValueError("cannot request an empty range")
    return f"bytes={rng.start}-{rng.stop - 1}"


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class ContentRange:
    """A parsed `Content-Range: bytes a-b/total` as a half-open range; total None for `*`."""

    range: ByteRange
    total: int | None


def parse_content_range(value: str | None) -> ContentRange | None:
    """Parse a `Content-Range` value; None when absent or malformed (never raises)."""
    if value is None:
        return None
    parts = _plain_parts(value)
    if parts is None:
        m = re.match(_CONTENT_RANGE, value, re.ASCII)
        if m is None:
            return None
        parts = (m.group(1), m.group(2), m.group(3))
    first, last = int(parts[0]), int(parts[1])
    total = None if parts[2] == "*" else int(parts[2])
    if last < first or last >= _MAX or (total is not None and (total > _MAX or last >= total)):
        return None
    return ContentRange(range=ByteRange(first, last + 1), total=total)


def _plain_parts(value: str) -> tuple[str, str, str] | None:
    """The three numbers of `bytes a-b/total` (or `/*`) written with one space and nothing
    else, as the pattern's groups would be; None for any other spelling."""
    if not value.startswith("bytes "):
        return None
    first, dash, rest = value[6:].partition("-")
    last, slash, total = rest.partition("/")
    if dash and slash and _digits(first) and _digits(last) and (total == "*" or _digits(total)):
        return first, last, total
    return None


def _digits(text: str) -> bool:
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit()


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class RangeCheck:
    """Why a ranged answer is unusable; `ok` when it is exactly what was asked."""

    ok: bool
    reason: str = ""


def check_range_answer(
    *,
    asked: ByteRange,
    size: int,
    status: int,
    content_range: str | None,
    content_length: int | None,
) -> RangeCheck:
    """Is this answer to `Range: asked` exactly those bytes of an object of `size` bytes?

    Requires 206, a `Content-Range` naming exactly `asked` with total `size` (or `*`), and a
    `Content-Length` (when sent) equal to the range's length.
    """
    if status != 206:
        return RangeCheck(ok=False, reason=f"status {status} to a Range request (expected 206)")
    parsed = parse_content_range(content_range)
    if parsed is None:
        return RangeCheck(ok=False, reason=f"missing or malformed Content-Range {content_range!r}")
    if parsed.range != asked:
        return RangeCheck(
            ok=False,
            reason=f"Content-Range {content_range!r} does not match the requested "
            f"bytes {asked.start}-{asked.stop - 1}",
        )
    if parsed.total is not None and parsed.total != size:
        return RangeCheck(
            ok=False, reason=f"Content-Range total {parsed.total} differs from object size {size}"
        )
    if content_length is not None and content_length != len(asked):
        return RangeCheck(
            ok=False,
            reason=f"Content-Length {content_length} differs from the range length {len(asked)}",
        )
    return RangeCheck(ok=True)
