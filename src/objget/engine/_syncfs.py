"""Many small files made durable in one call: `syncfs` of their filesystem instead of one
`fsync` each, where that is as strong and no slower.

Each `fsync` of a new small file writes its inode on its own (on ext4 without a journal
synchronously, with its directory) and flushes the disk's cache: 2,000 files, 2,000 inode
writes and cache flushes. A batch's worker instead writes several files, then asks once for
the whole filesystem (`syncfs`): their inodes share inode-table blocks, written together, and
one cache flush covers them all. The order a crash needs stays: every file's data and inode are
on the disk before any of them is renamed onto its destination (`sync_files` returns only
then), and the renames are made durable by the directory fsync that follows, before the
journal says done.

`syncfs` is used only where it is known to be as strong as the `fsync`s it replaces
(`group_sync_ok`), else the files are fsynced one by one:

- Linux 5.8 or later: older kernels return success from `syncfs` even when the write-back
  failed; since 5.8 an error since the descriptor was opened is reported, as `fsync` reports it.
- a local filesystem whose `syncfs` writes everything (ext2/3/4, XFS, Btrfs, F2FS; tmpfs has
  nothing to write): a FUSE or network filesystem may do less for `syncfs` than for `fsync`.
- little dirty data in the whole system (`/proc/meminfo` Dirty + Writeback under DIRTY_MOST):
  `syncfs` also waits for other programs' unwritten data on that filesystem — a large copy
  running beside the batch would make every group wait for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._fileio import libc_function

__all__ = ["DIRTY_MOST", "group_sync_ok", "sync_files"]

DIRTY_MOST = 64 * 1024 * 1024  # bytes dirty or under write-back system-wide, at most

# statfs f_type of local filesystems whose syncfs writes every dirty inode and flushes the disk
_LOCAL = frozenset({
    0xEF53,  # ext2/3/4
    0x58465342,  # XFS
    0x9123683E,  # Btrfs
    0xF2F52010,  # F2FS
    0x01021994,  # tmpfs (nothing to write)
})  # fmt: skip

_kernel: list[bool] = []
_buf: list[Any] = []  # the statfs buffer, made once


def _kernel_reports_errors() -> bool:
    """True on Linux 5.8 and later (syncfs returns write-back errors)."""
    if not _kernel:
        ok = False
        if sys.platform.startswith("linux"):
            try:
                major, minor = (int(x) for x in os.uname().release.split(".")[:2])
                ok = (major, minor) >= (5, 8)
            except ValueError:
                ok = False
        _kernel.append(ok)
    return _kernel[0]


def _fs_type(fd: int) -> int | None:
    """The statfs `f_type` of `fd`'s filesystem (one system call: asked at every group, as
    cheap as a cache keyed by an fstat); None when it cannot be told."""
    fstatfs: Any = libc_function("fstatfs", ("c_int", "c_void_p"))
    if fstatfs is None:
        return None
    import ctypes

    if not _buf:
        # struct statfs: f_type (a long) comes first; 120 bytes on 64-bit Linux
        _buf.append(ctypes.create_string_buffer(256))
    if fstatfs(fd, _buf[0]) != 0:
        return None
    return int(ctypes.c_long.from_buffer(_buf[0]).value) & 0xFFFFFFFF


def _dirty_bytes() -> int | None:
    """Dirty + Writeback of /proc/meminfo in bytes; None when it cannot be read."""
    try:
        fd = os.open("/proc/meminfo", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.read(fd, 8192)  # Dirty and Writeback come in the first 1 KiB
    except OSError:
        return None
    finally:
        os.close(fd)
    total = 0
    found = 0
    for line in text.splitlines():
        if line.startswith((b"Dirty:", b"Writeback:")):
            total += int(line.split()[1]) * 1024
            found += 1
            if found == 2:
                return total
    return None


def _syncfs() -> Callable[[int], int] | None:
    """libc's syncfs (Python's `os` has none); None where there is none."""
    fn: Callable[[int], int] | None = libc_function("syncfs", ("c_int",))
    return fn


def group_sync_ok(fd: int) -> bool:
    """Whether one `syncfs` of `fd`'s filesystem may stand for an fsync of each of the files
    just written there (the conditions in the module's docstring)."""
    if not _kernel_reports_errors() or _syncfs() is None or _fs_type(fd) not in _LOCAL:
        return False
    dirty = _dirty_bytes()
    return dirty is not None and dirty < DIRTY_MOST


def sync_files(dir_fd: int, fds: Sequence[int]) -> bool:
    """Make the files `fds` (all created in the directory `dir_fd`) durable, data and inode:
    one `syncfs` where `group_sync_ok` (then True), else an `fsync` of each (False). OSError
    (the write-back's error) when that fails: then none of them is known to be durable."""
    if len(fds) > 1 and group_sync_ok(dir_fd):
        fn = _syncfs()
        assert fn is not None
        if fn(dir_fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return True
    for fd in fds:
        os.fsync(fd)
    return False
