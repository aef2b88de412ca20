"""Object keys → file paths under the destination directory, refusing anything unsafe.

The pure part (`relative_path`, `relative_to_prefix`, `refuse_collisions`) decides per object;
the I/O part (`ParentMaker`) creates parent directories one component at a time relative to
an open directory descriptor, never following a symlink, and opens a destination's directory
the same way (`open_dir`) so the files of a download are made relative to that descriptor: no
key can make objget write outside the destination directory — not through `..`, not through
an absolute path, not through a symlink planted inside the directory, not through a directory
swapped for a symlink after it was checked.

objget's side files all carry one marker, `.objget-` (`MARKER`): `DEST.objget-part`,
`DEST.objget-ckpt` (and `.objget-ckpt.tmp`, `.objget-ckpt-live`), `DEST.objget-lock`, a Ray
range's `DEST.objget-r<N>.ckpt` / `.lock`, the batch's `.objget-batch.db` (`-wal`, `-shm`,
`-journal`) and `.objget-batch.lock`. A key with a path component that contains the marker (in
any letter case) is refused: its file would be taken for, removed or overwritten as the side
file of another object, and a directory of such a name would stand where one must be created.
The rule (`carries_marker`) is the engine's: a single download refuses such a DEST name too.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterable

from ._batch_models import UnsafePath
from ._downloader import MARKER, carries_marker  # the one rule: a single DEST is held to it too

__all__ = [
    "JOURNAL_NAMES",
    "LOCK_NAME",
    "MARKER",
    "OpenDirs",
    "ParentMaker",
    "carries_marker",
    "is_directory_marker",
    "refuse_collisions",
    "relative_path",
    "relative_to_prefix",
]

JOURNAL_NAMES = (".objget-batch.db", ".objget-batch.db-wal", ".objget-batch.db-shm")
LOCK_NAME = ".objget-batch.lock"
_NAME_MAX = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


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


def refuse_collisions(rels: Iterable[str]) -> dict[str, str]:
    """Paths that cannot all be written: `{rel: reason}` for a file that another key needs
    as a directory (`a` when `a/b` exists) and for a repeated destination (all but the first).
    """
    seen: set[str] = set()
    dirs: dict[str, str] = {}
    ordered = list(rels)
    refused: dict[str, str] = {}
    for rel in ordered:
        if rel in seen:
            refused[rel] = "another object in this batch has the same destination"
            continue
        seen.add(rel)
        parts = rel.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), rel)
    for rel in seen:
        if rel in dirs:
            refused[rel] = f"it collides with a directory that {dirs[rel]!r} needs"
    return refused


class ParentMaker:
    """Creates the parent directories of destination paths under `root`, component by
    component with `O_NOFOLLOW`, and remembers what each directory held when it first
    visited it (nothing, when it made it): a name that was not there needs no `lstat`, and
    no leftover temp file of it needs removing. Thread-safe."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._names: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def path(self, rel: str) -> str:
        """The absolute destination of `rel`, its parents made; UnsafePath when a component
        is a symlink or a file, or when a directory stands where the file must go."""
        parent, _, name = rel.rpartition("/")
        with self._lock:
            names = self._names.get(parent)
        if names is None:
            names = self._visit(parent)
            with self._lock:
                names = self._names.setdefault(parent, names)
        dest = os.path.join(self.root, rel)
        if name not in names:
            return dest  # the batch's own keys never make a directory of this name
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            return dest
        if stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"a directory already exists at {dest}")
        return dest

    def listed(self, rel: str) -> frozenset[str] | None:
        """The names in `rel`'s directory when it was first visited; None before that."""
        with self._lock:
            return self._names.get(rel.rpartition("/")[0])

    def open_dir(self, parent: str) -> int:
        """A new descriptor of the directory `parent` (relative to the root; "" is the root),
        walked one component at a time with `O_NOFOLLOW`: a component that is (now) a symlink
        or a file is refused with UnsafePath, never followed. The caller closes it."""
        return self._walk(parent, make=False)[0]

    def _visit(self, parent: str) -> frozenset[str]:
        fd, made = self._walk(parent, make=True)
        try:
            return frozenset() if made else frozenset(os.listdir(fd))
        finally:
            os.close(fd)

    def _walk(self, parent: str, *, make: bool) -> tuple[int, bool]:
        """(descriptor of `parent`, whether its last component was made here)."""
        fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        walked = ""
        made = False
        try:
            for name in parent.split("/") if parent else ():
                walked = f"{walked}/{name}" if walked else name
                made = False
                if make:
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                        made = True
                    except FileExistsError:
                        pass
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafePath(
                            f"{os.path.join(self.root, walked)} is a file or a symlink, not a "
                            "directory; refusing to write through it"
                        ) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd, made


def _fsync_dir(fd: int, parent: str) -> None:
    """fsync the directory `fd` (`parent`, relative to the root: for tests to fail it)."""
    os.fsync(fd)


class OpenDirs:
    """The directories one chunk of small objects is written into, each opened once with
    `ParentMaker.open_dir` and fsynced (when something was renamed into it) before it is
    closed: at most `most` are held, the least recently used one is fsynced and closed to
    make room. `close()` fsyncs and closes the rest and returns the directories whose fsync
    failed. One thread only."""

    def __init__(self, maker: ParentMaker, most: int = 8) -> None:
        self._maker = maker
        self._most = most
        self._fds: dict[str, int] = {}  # insertion order: least recently used first
        self._renamed: set[str] = set()
        self._failed: dict[str, OSError] = {}

    def fd(self, parent: str) -> int:
        """The open directory `parent` (relative to the root)."""
        fd = self._fds.pop(parent, None)
        if fd is None:
            if len(self._fds) >= self._most:
                self._close(next(iter(self._fds)))
            fd = self._maker.open_dir(parent)
        self._fds[parent] = fd
        return fd

    def renamed(self, parent: str) -> None:
        """A file was renamed into `parent`: fsync it before closing."""
        self._renamed.add(parent)

    def _close(self, parent: str) -> None:
        fd = self._fds.pop(parent)
        try:
            if parent in self._renamed:
                self._renamed.discard(parent)
                _fsync_dir(fd, parent)
        except OSError as exc:
            self._failed[parent] = exc
        finally:
            os.close(fd)

    def close(self) -> dict[str, OSError]:
        for parent in list(self._fds):
            self._close(parent)
        return self._failed
