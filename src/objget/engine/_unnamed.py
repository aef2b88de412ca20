"""Unnamed temp files: a small object written into a file that has no name until it is complete
and durable, then given DEST's name in one step (Linux `O_TMPFILE`, then `linkat`).

What a named temp file costs per object and this spares: the temp name's directory entry
(added at create, removed again by the rename: two changes of the directory under its lock),
and the identity checks that make the rename safe (`fstat` of the open file and `lstat` of the
temp name before the rename: a temp file swapped by another program must never be renamed onto
DEST). An unnamed file cannot be swapped or touched by anyone; nothing of it is left after a
crash (the kernel frees an unnamed inode with its last descriptor, or at the next mount).

`linkat` never replaces: where DEST exists already (or the link is refused), `link_unnamed`
says so (False) and the caller copies the bytes into a named temp file (`copy_named`) and
renames that over DEST (the checked rename of `_fileio`) — rare: a batch asks for an unnamed
file only where its listing of the directory found nothing at DEST.
Where the filesystem or the system has no unnamed files (not Linux, `O_TMPFILE` refused, no
`/proc` to link through), `open_unnamed` says None for the rest of the process and the caller
keeps its named temp file.
"""

from __future__ import annotations

import contextlib
import errno
import os

__all__ = ["copy_named", "link_unnamed", "open_unnamed", "unnamed_usable"]

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_FLAGS = _O_TMPFILE | os.O_RDWR | os.O_CLOEXEC  # RDWR: the file checks read it back
_REFUSED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS})
_state = {"usable": bool(_O_TMPFILE)}  # False once this process found it does not work


def unnamed_usable() -> bool:
    """Whether unnamed files are tried (no: not Linux, or this process found them refused)."""
    return _state["usable"]


def _off() -> None:
    _state["usable"] = False


def open_unnamed(dir_fd: int, mode: int = 0o644) -> int | None:
    """A new unnamed file on the filesystem of the open directory `dir_fd`, or None where
    there are none (from then on for the whole process)."""
    if not _state["usable"]:
        return None
    if _state.get("proc") is None:
        _state["proc"] = os.path.isdir("/proc/self/fd")  # what `link_unnamed` links through
        if not _state["proc"]:
            _off()
            return None
    try:
        return os.open(".", _FLAGS, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _REFUSED:
            _off()
            return None
        raise


def link_unnamed(fd: int, dir_fd: int, name: str) -> bool:
    """Give the unnamed file `fd` the name `name` in the open directory `dir_fd` (never
    following a symlink there, never replacing): True, or False when that cannot be done —
    `name` exists, or the link is refused (then unnamed files are not used again in this
    process: no hard links here, say)."""
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
    except FileExistsError:
        return False
    except OSError:
        _off()
        return False
    return True


def copy_named(fd: int, size: int, dir_fd: int, name: str, buf: memoryview) -> tuple[int, int]:
    """Where the unnamed file `fd` (`size` bytes, its mtime set) cannot be linked onto its
    destination: a new file `name` in `dir_fd` (O_EXCL, a leftover removed first) with the
    same bytes and times, fsynced; its (device, inode), for the checked rename. `buf`: the
    caller's buffer, for the copy."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
    out = os.open(name, flags, 0o644, dir_fd=dir_fd)
    try:
        pos = 0
        while pos < size:
            n = os.preadv(fd, [buf[: min(len(buf), size - pos)]], pos)
            if n <= 0:
                raise OSError(errno.EIO, f"the temp file ended at {pos} of {size} bytes")
            view = buf[:n]
            while view:
                view = view[os.pwrite(out, view, pos + n - len(view)) :]
            pos += n
        st = os.fstat(fd)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.fsync(out)
        st = os.fstat(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(out)
    return st.st_dev, st.st_ino
