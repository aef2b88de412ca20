"""Object keys → file paths under the destination directory, refusing anything unsafe: no key
can make objget write outside it — not through `..`, not through an absolute path (and, on
the disk, not through a symlink: the engine's `ParentMaker` walks every parent with
`O_NOFOLLOW`).

A key with a path component that carries objget's side-file marker (`.objget-`, any letter
case: `_fileio.carries_marker`, the rule a single download's DEST is held to) is refused: its
file would be taken for, removed or overwritten as another object's side file (and a
directory of such a name would stand where one must be created).
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
