"""Object keys → file paths under the destination directory, refusing anything unsafe: no key
can make objget write outside it — not through `..`, not through an absolute path (and, on
the disk, not through a symlink: the engine's `ParentMaker` walks every parent with
`O_NOFOLLOW`).

objget's side files all carry one marker, `.objget-` (`MARKER`): `DEST.objget-part`,
`DEST.objget-ckpt` (and `.objget-ckpt.tmp`, `.objget-ckpt-live`), `DEST.objget-lock`, a Ray
range's `DEST.objget-r<N>.ckpt` / `.lock`, the batch's `.objget-batch.db` (`-wal`, `-shm`,
`-journal`) and `.objget-batch.lock`. A key with a path component that contains the marker (in
any letter case) is refused: its file would be taken for, removed or overwritten as the side
file of another object, and a directory of such a name would stand where one must be created.
The rule (`carries_marker`) is the engine's: a single download refuses such a DEST name too.
"""

from __future__ import annotations

from .._exceptions import UnsafePath
from ..engine._downloader import (  # the one rule: a single DEST is held to it too
    MARKER,
    carries_marker,
)

__all__ = [
    "JOURNAL_NAMES",
    "LOCK_NAME",
    "MARKER",
    "carries_marker",
    "is_directory_marker",
    "relative_path",
    "relative_to_prefix",
]

JOURNAL_NAMES = (".objget-batch.db", ".objget-batch.db-wal", ".objget-batch.db-shm")
LOCK_NAME = ".objget-batch.lock"
_NAME_MAX = 255


def is_directory_marker(key: str, size: int | None) -> bool:
    """An empty object whose key ends in `/`: a console-made "folder", nothing to write."""
    return key.endswith("/") and size == 0


def relative_to_prefix(key: str, prefix: str) -> str:
    """The part of `key` below the last `/` of `prefix` (`p/a/` + `p/a/x/y` → `x/y`;
    `p/da` + `p/data/x` → `data/x`). UnsafePath when the store listed a key outside it."""
    if not key.startswith(prefix):
        raise UnsafePath(f"the store listed {key!r}, which is not under the prefix {prefix!r}")
    base = prefix[: prefix.rfind("/") + 1]
    return key[len(base) :]


def relative_path(rel: str) -> str:
    """`rel` itself when it is a safe relative file path; UnsafePath saying why otherwise."""
    if not rel:
        raise UnsafePath("the key gives an empty file name")
    if "\x00" in rel:
        raise UnsafePath("the key contains a NUL character")
    if rel.startswith("/"):
        raise UnsafePath("the key maps to an absolute path")
    if rel.endswith("/"):
        raise UnsafePath("the key ends in '/' but the object is not empty")
    parts = rel.split("/")
    for part in parts:
        if part == "..":
            raise UnsafePath("the key contains a '..' path component (outside the directory)")
        if part in ("", "."):
            raise UnsafePath("the key contains an empty or '.' path component")
        if len(part.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            raise UnsafePath(f"a path component is longer than {_NAME_MAX} bytes")
        if carries_marker(part):
            raise UnsafePath(
                f"the name {part!r} contains {MARKER!r}, the marker of objget's own side files "
                "(temp data, checkpoints, locks, the batch journal)"
            )
    return rel
