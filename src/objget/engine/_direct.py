"""A small object's bytes written with O_DIRECT: from the worker's page-aligned read buffer
straight to the disk, not copied into the page cache to be written back later.

Onto a disk filesystem, the batch makes each group of small files durable with one `syncfs`
(`_syncfs`), which then waits for the kernel's write-back of every page the group dirtied:
CPU of the kernel's flusher threads that the process's own figures do not show, plus the
buffered `pwrite`'s copy and page accounting. With O_DIRECT the `pwrite` itself puts the bytes
on the device and the sync has only the inodes (size, extents) and the device's cache flush
left. Measured in docs/batch.md ("Small objects written with O_DIRECT").

The durability contract is unchanged: an O_DIRECT write may still sit in the device's volatile
cache and the file's size and extents are not on the disk yet, so the file is still synced
(`syncfs` or `fsync`: the inode written, the cache flushed) before its rename, and the directory
fsynced before the journal says done.

Where: only onto local disk filesystems that take it (ext2/3/4, XFS, Btrfs, F2FS; tmpfs has no
write-back to spare, a network or FUSE filesystem may make each O_DIRECT write a round trip),
from a buffer whose address and length are multiples of ALIGN. A filesystem that refuses it
(EINVAL at the open or at a write) is remembered (`refuse`, by its kind: statfs `f_type`, known
without a system call more) and written buffered from
then on; the refused object is written buffered, never failed. A size that is not a multiple
of ALIGN has its tail (under ALIGN bytes) written buffered after O_DIRECT is cleared on the
descriptor (`fcntl F_SETFL`); the sync covers it as before.
"""

from __future__ import annotations

import errno
import mmap
import os

from ._fileio import pwrite_all
from ._syncfs import fs_type

__all__ = [
    "ALIGN",
    "O_DIRECT",
    "aligned_buffer",
    "direct_kind",
    "drop_direct",
    "is_aligned",
    "refuse",
    "usable",
    "write_at",
]

ALIGN = 4096  # the logical block size O_DIRECT needs, at most, on the disks it is used for
O_DIRECT: int = getattr(os, "O_DIRECT", 0)

# statfs f_type of the local disk filesystems whose files are written with O_DIRECT
_DISK = frozenset({
    0xEF53,  # ext2/3/4
    0x58465342,  # XFS
    0x9123683E,  # Btrfs
    0xF2F52010,  # F2FS
})  # fmt: skip

_refused: set[int] = set()  # f_type of the filesystems that refused O_DIRECT (any thread)


def aligned_buffer(size: int) -> memoryview:
    """A zeroed buffer of `size` bytes (rounded up to ALIGN) at a page boundary: an anonymous
    mapping, resident only where it was written."""
    return memoryview(mmap.mmap(-1, max(ALIGN, -(-size // ALIGN) * ALIGN)))


def is_aligned(buf: memoryview) -> bool:
    """Whether O_DIRECT may write from `buf`: its address and length multiples of ALIGN."""
    if not O_DIRECT or buf.readonly or not buf.c_contiguous or len(buf) % ALIGN:
        return False
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(buf)) % ALIGN == 0


def direct_kind(dir_fd: int) -> int | None:
    """The kind (statfs `f_type`) of the open directory `dir_fd`'s filesystem when the files
    made in it are written with O_DIRECT (a local disk filesystem of a kind that has not
    refused it), else None."""
    kind = fs_type(dir_fd) if O_DIRECT else None
    return kind if kind in _DISK and kind not in _refused else None


def usable(kind: int | None) -> bool:
    """Whether `kind` (from `direct_kind`) still takes O_DIRECT."""
    return kind is not None and kind not in _refused


def refuse(kind: int) -> None:
    """A filesystem of `kind` refused O_DIRECT: files are written buffered there from now on."""
    _refused.add(kind)


def drop_direct(fd: int) -> None:
    """Clear O_DIRECT on `fd`: the writes and reads after it go through the page cache. (The
    temp file is opened with no other flag that F_SETFL changes.)"""
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, 0)


def write_at(fd: int, data: memoryview, offset: int, kind: int | None) -> int | None:
    """Write `data` at `offset` to `fd`: buffered when `kind` is None, else with O_DIRECT
    (`fd` opened with it on a filesystem of `kind`, `data` in an aligned buffer, `offset`
    aligned): the whole blocks direct, a tail of under ALIGN bytes buffered after O_DIRECT is
    cleared; a direct write refused with EINVAL is made buffered instead (and `kind`
    remembered). Returns `kind` while `fd` is still O_DIRECT, else None."""
    if kind is None:
        pwrite_all(fd, data, offset)
        return None
    head = len(data) - len(data) % ALIGN
    if head:
        try:
            pwrite_all(fd, data[:head], offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            refuse(kind)
            head = 0  # all of it again, buffered (pwrite is positional: nothing to undo)
    if head == len(data):
        return kind
    drop_direct(fd)
    pwrite_all(fd, data[head:], offset + head)
    return None
