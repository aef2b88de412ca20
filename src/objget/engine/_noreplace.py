"""A rename that never replaces: `renameat2(..., RENAME_NOREPLACE)` through libc.

What a lock handed from one name to the next needs (`_checkpoint.DestLock.move`): the file
gets its new name in one step, or nothing changes when the new name exists — one system call
where a hard link and an unlink of the old name take two, each under the directory's lock.
Python's `os.rename` has no flags, so libc's `renameat2` (glibc 2.28+) is called through
ctypes, loaded on first use. Where there is none (not Linux, an older libc) or the filesystem
refuses the flag (EINVAL: some network and FUSE filesystems), `rename_noreplace` says so and
the caller takes its portable path.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from ._fileio import libc_function

__all__ = ["Unsupported", "rename_noreplace"]

_NOREPLACE = 1  # <linux/fs.h> RENAME_NOREPLACE
_AT_FDCWD = -100

_Raw = Callable[[int, bytes, int, bytes, int], int]


class Unsupported(Exception):
    """No rename-without-replace here (no `renameat2`, or the filesystem refuses the flag)."""


def _load() -> _Raw | None:
    """libc's renameat2 (glibc 2.28+, musl 1.2.4+), once per process; None where there is none."""
    fn: _Raw | None = libc_function(
        "renameat2", ("c_int", "c_char_p", "c_int", "c_char_p", "c_uint")
    )
    return fn


def rename_noreplace(old: str, new: str, *, dir_fd: int | None) -> None:
    """Rename `old` to `new` (names in the open directory `dir_fd`, or paths when None)
    unless `new` exists: FileExistsError then, and nothing changed. Unsupported where this
    cannot be done; any other OSError as the system call reports it."""
    fn = _load()
    if fn is None:
        raise Unsupported("renameat2 is not available")
    fd = _AT_FDCWD if dir_fd is None else dir_fd
    if fn(fd, os.fsencode(old), fd, os.fsencode(new), _NOREPLACE) == 0:
        return
    import ctypes

    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        raise Unsupported(os.strerror(code))
    raise OSError(code, os.strerror(code), new)
