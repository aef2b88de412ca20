"""DEST's lock file as the single-request mode's temp file: a small object is written into
`DEST.objget-lock` itself, and that file renamed onto DEST.

The lock file is made with `O_EXCL` (so it is a new, empty file of this run) and `flock`ed;
the object is written into it, synced, and the file renamed onto DEST while the flock is
still held; the descriptor is closed after the rename. The rename takes the lock's name away
with it: there is no lock file to hand on or remove afterwards, and no second file per object.

Why two runs never write one DEST at once. The flock is what is held, the name what it is
held on: a run holds DEST's lock while its descriptor holds the flock of the file DEST's lock
name stands for. Whoever takes the flock of a file this run made before this run did (a
single download's `DestLock`, a batch dropping what it takes for a stale lock) either keeps
it — this run's flock fails: LockedError — or unlinks the file when it lets go: the file's
link count is 0 when this run gets the flock, and it makes a new one. Only the file's maker
renames it, and only onto DEST under its flock (`commit_lock_temp`), so a flocked file with a
link is still the lock file: its link count, from the `fstat` that also gives its identity for
the rename's check, is the whole inode check. A `DestLock` that takes the flock of a file a
batch has renamed onto DEST finds that name gone or another file's (its inode check) and
never touches it.

A lock file that is there already when this run makes its own (`FileExistsError`) is a
killed run's, with the bytes of a partial object, or another run's: its flock is taken
(LockedError when it is held), it is checked to still be the name's file, unlinked, and a new
one made. So a killed run leaves at most `DEST.objget-lock` beside DEST, never anything a
re-run takes for a finished object, and the re-run (batch or single download) clears it.
"""

from __future__ import annotations

import contextlib
import os

from .._exceptions import LockedError
from ._checkpoint import take_flock
from ._fileio import commit_part, unlink_at

__all__ = ["commit_lock_temp", "create_locked", "give_up"]

_OPEN = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def create_locked(
    dir_fd: int, name: str, flags: int, *, path: str, dest: str, source: str | None
) -> tuple[int, tuple[int, int]]:
    """DEST's lock file `name` in the open directory `dir_fd`, made new (`flags`: the temp
    file's, with `O_CREAT | O_EXCL`) and flocked: (its descriptor, its (device, inode)).
    A file left at `name` is dropped first when no one holds it; LockedError when a run does
    (`path`, `dest` and `source`: what messages say)."""
    for _ in range(10):
        try:
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            drop_if_stale(dir_fd, name, path=path, dest=dest, source=source)
            continue
        take_flock(fd, path=path, dest=dest, source=source)
        st = os.fstat(fd)
        if st.st_nlink:  # not unlinked by a run that took its flock before this one
            return fd, (st.st_dev, st.st_ino)
        os.close(fd)
    raise LockedError(f"could not take the lock {path}", source=source, dest=dest)


def drop_if_stale(dir_fd: int, name: str, *, path: str, dest: str, source: str | None) -> None:
    """Unlink the lock file at `name` unless a run holds it (LockedError then): a killed
    run's, perhaps with a partial object in it. Gone meanwhile: nothing to do."""
    try:
        fd = os.open(name, _OPEN, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    take_flock(fd, path=path, dest=dest, source=source)
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if now.st_ino == os.fstat(fd).st_ino:  # still the name's file: ours to remove
            unlink_at(dir_fd, name)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def give_up(dir_fd: int, name: str, fd: int) -> None:
    """The lock file `name` (open and flocked as `fd`) removed — while its flock is held it is
    still ours; one that cannot be removed is a stale lock for the next run — then let go of."""
    with contextlib.suppress(OSError):
        unlink_at(dir_fd, name)
    os.close(fd)


def commit_lock_temp(
    fd: int, lock: str, dest: str, made: tuple[int, int], *, display: str, dir_fd: int
) -> None:
    """Rename the lock file `lock` (written, checked and synced through `fd`) onto `dest` if
    it is still the file `made` (`commit_part`; the directory's fsync is the caller's), then
    close `fd`, which lets go of the lock. A rename that fails leaves no lock file behind;
    one that is not the file `made` any more is not ours and is left alone."""
    try:
        commit_part(lock, dest, made, display=display, dir_fd=dir_fd)
    except OSError:  # the check passed, the rename failed: the name is still our file
        with contextlib.suppress(OSError):  # (else a stale lock for the next run)
            unlink_at(dir_fd, os.path.basename(lock))
        raise
    finally:
        os.close(fd)
