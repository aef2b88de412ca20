"""Verification of a finished temp file before it replaces the destination.

Always: the written spans cover exactly `[0, size)`. Then `objget.integrity.check_all`: the
combined per-range CRC against the store's value, then the file checks that need one more read
(a user's `sha256:`, S3's full-object SHA-256/SHA-1, plain-MD5 ETag or COMPOSITE part
checksums). Any mismatch discards the temp file and checkpoint and raises IntegrityError; the
destination is never touched.

The backend only describes what an object offers (`object_checks`, and `part_sizes` where a
store has it); `checksummer_of` / `file_checks_of` hand that description to integrity, which
builds the checkers.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable

from .._exceptions import DownloadError
from .._models import ObjectMeta
from ..backends._base import part_layout_of
from ..integrity import Verified, check_all, checksummer_for, file_checks_for
from ._plan import Span

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ..backends._base import Backend
    from ..integrity import Checksummer, FileCheck

__all__ = ["checksummer_of", "file_checks_of", "verify"]


def checksummer_of(backend: Backend, meta: ObjectMeta) -> Checksummer | None:
    """The per-range CRC integrity builds from what the backend says `meta`'s object offers."""
    return checksummer_for(backend.object_checks(meta))


def file_checks_of(
    backend: Backend, key: str, meta: ObjectMeta, *, size: int
) -> tuple[FileCheck, ...]:
    """The file checks integrity builds for the object (none when `size`, the downloaded
    size, is 0); the part layout of a COMPOSITE checksum is asked of the backend only when
    the object offers one."""
    if size <= 0:
        return ()
    checks = dataclasses.replace(backend.object_checks(meta), source=key)
    layout = None
    parts = part_layout_of(backend)  # isinstance(backend, PartLayout), without typing
    if parts is not None:
        layout = functools.partial(parts.part_sizes, key, meta)
    return file_checks_for(checks, size=meta.size, part_sizes=layout)


def verify(
    fd: int,
    *,
    spans: tuple[Span, ...],
    size: int,
    checksummer: Checksummer | None,
    checks: Iterable[FileCheck],
    display: str,
    discard: Callable[[], None],
) -> Verified:
    """The spans cover `[0, size)`, then `check_all` with the spans' combined CRC."""
    if size > 0 and (len(spans) != 1 or spans[0].start != 0 or spans[0].stop != size):
        raise DownloadError(
            f"{display}: internal error: downloaded spans {spans} do not cover 0-{size}; "
            "run again to resume",
            source=display,
        )
    if os.fstat(fd).st_size != size:
        os.ftruncate(fd, size)
    crc = spans[0].crc if spans else None
    return check_all(
        fd, size=size, checksummer=checksummer, crc=crc, checks=checks, display=display,
        discard=discard,
    )  # fmt: skip
