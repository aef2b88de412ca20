"""The DEST lock a batch's worker holds from one small object to the next (`HeldLock`): handed
over by renaming its file to the next destination's lock name, so no lock file is created per
object (creating a file while other threads fsync is what a lock costs on a busy disk).
"""

from __future__ import annotations

import os

from . import _checkpoint as ck

__all__ = ["HeldLock"]


class HeldLock:
    """The DEST lock a worker holds from one small object to the next: handed over to the
    next destination in the same directory (`DestLock.move`: the lock file renamed to the
    next name — no file created per object; creating a file while other threads fsync is
    what a lock costs), taken anew otherwise or when the next name is there already.
    `release()` lets go of it (its file removed). One thread only.

    Whether the next object's directory is the lock's is asked of the directory itself
    (`fstat`), unless the caller says it is the very descriptor the lock was last handed
    on in and that descriptor was not closed since (`same_dir=True`)."""

    def __init__(self) -> None:
        self._lock: ck.DestLock | None = None
        self._dir: tuple[int, int] | None = None  # (device, inode) of the lock's directory
        self._fd: int | None = None  # the lock's own descriptor of that directory

    def take(self, dir_fd: int, paths: ck.Paths, display: str, *, same_dir: bool = False) -> None:
        """Hold DEST's lock of `paths` (in the open directory `dir_fd`); LockedError when
        another run holds it. `same_dir`: `dir_fd` is still open as it was at the last
        `take`, so it is the lock's directory (no `fstat` needed)."""
        if self._lock is not None:
            here = same_dir
            if not here:
                st = os.fstat(dir_fd)
                here = self._dir == (st.st_dev, st.st_ino)
            if here and self._lock.move(paths.lock, dest=paths.dest, source=display):
                return
            self.release()
        fd = os.dup(dir_fd)
        try:
            lock = ck.DestLock(paths.lock, dest=paths.dest, source=display, dir_fd=fd)
            lock.acquire()
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._lock, self._fd, self._dir = lock, fd, (st.st_dev, st.st_ino)

    def release(self) -> None:
        lock, fd = self._lock, self._fd
        self._lock = self._fd = self._dir = None
        try:
            if lock is not None:
                lock.release(remove=True)
        finally:
            if fd is not None:
                os.close(fd)
