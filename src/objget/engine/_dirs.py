"""Directories below a root, walked and made one component at a time relative to an open
directory descriptor with `O_NOFOLLOW`: a symlink or a file where a directory must be is refused
(UnsafePath), never followed — not one planted inside the root, not a directory swapped for a
symlink after it was checked. The disk layer of writing many objects into one tree: a batch
makes its destinations' parents with `ParentMaker`, and the single-request mode writes each
small object relative to the directory descriptor it gets from there (`OpenDirs`).
"""

from __future__ import annotations

import errno
import os
import stat
import threading

from .._exceptions import LockedError, UnsafePath
from ._checkpoint import DestLock, Paths

__all__ = ["OpenDirs", "ParentMaker", "drop_stale_lock"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ParentMaker:
    """Creates the parent directories of destination paths under `root`, component by
    component with `O_NOFOLLOW`, and remembers what each directory held when it was first
    looked at (`names`, or the first `path` into it; nothing, when it made it): a name that
    was not there needs no `lstat`, and no leftover temp file of it needs removing. A
    directory of more than `most` entries is not kept (its names are looked at one by one).
    Thread-safe."""

    def __init__(self, root: str, *, most: int = 65536) -> None:
        self.root = os.path.realpath(root)
        self._most = most
        self._names: dict[str, frozenset[str] | None] = {}  # None: more than `most`
        self._made: set[str] = set()  # the parents walked (and made where missing)
        self._lock = threading.Lock()

    def path(self, rel: str) -> str:
        """The absolute destination of `rel`, its parents made; UnsafePath when a component
        is a symlink or a file, or when a directory stands where the file must go."""
        parent, _, name = rel.rpartition("/")
        with self._lock:  # (once per object: one acquisition when the parent was walked)
            walked, known = parent in self._made, parent in self._names
            names = self._names.get(parent)
        if not walked:
            seen = self._visit(parent, listing=not known)
            with self._lock:
                self._made.add(parent)
                names = self._names.setdefault(parent, seen)
        dest = os.path.join(self.root, rel)
        if names is not None and name not in names:
            return dest  # the batch's own keys never make a directory of this name
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            return dest
        if stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"a directory already exists at {dest}")
        return dest

    def listed(self, rel: str) -> frozenset[str] | None:
        """The names in `rel`'s directory when it was first looked at; None before that (or
        when it held more than `most`)."""
        with self._lock:
            return self._names.get(rel.rpartition("/")[0])

    def names(self, rel: str) -> frozenset[str] | None:
        """`listed(rel)`, the directory listed now (not made: a missing one holds nothing)
        when it was not looked at yet."""
        parent = rel.rpartition("/")[0]
        with self._lock:
            if parent in self._names:
                return self._names[parent]
        seen = self._list(os.path.join(self.root, parent))
        with self._lock:
            return self._names.setdefault(parent, seen)

    def open_dir(self, parent: str) -> int:
        """A new descriptor of the directory `parent` (relative to the root; "" is the root),
        walked one component at a time with `O_NOFOLLOW`: a component that is (now) a symlink
        or a file is refused with UnsafePath, never followed. The caller closes it."""
        return self._walk(parent, make=False)[0]

    def _visit(self, parent: str, *, listing: bool) -> frozenset[str] | None:
        fd, made = self._walk(parent, make=True)
        try:
            return frozenset() if made else self._list(fd) if listing else None
        finally:
            os.close(fd)

    def _list(self, where: int | str) -> frozenset[str] | None:
        names: list[str] = []
        try:
            with os.scandir(where) as entries:
                for entry in entries:
                    if len(names) == self._most:
                        return None
                    names.append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return frozenset()
        except OSError:
            return None
        return frozenset(names)

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
    """The directories a worker writes small objects into, each opened once with
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


def drop_stale_lock(root: str, rel: str) -> None:
    """Remove the lock file a run killed between its rename and the lock's removal left
    beside a destination it committed: taken first (left alone while another run holds it),
    relative to the directory opened without following symlinks (left alone when a parent
    is not a plain directory)."""
    dest = os.path.join(root, rel)
    lock = Paths.beside(dest).lock
    if not os.path.lexists(lock):
        return
    try:
        fd = ParentMaker(root).open_dir(rel.rpartition("/")[0])
    except (UnsafePath, OSError):
        return
    try:
        with DestLock(lock, dest=dest, dir_fd=fd):
            pass
    except (LockedError, OSError):
        pass
    finally:
        os.close(fd)
