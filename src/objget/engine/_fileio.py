"""Local file operations for crash safety: temp data file, preallocation, full pwrite, fsync,
atomic replace with a directory fsync. Symlinks at our own paths are never followed.

The guards every destination gets, single download and batch alike: a name carrying objget's
side-file marker is refused (`carries_marker`, `check_dest`), and a temp file is renamed onto
its destination only while it is still the file objget wrote (`check_same_file`, `commit_part`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from .._exceptions import CheckpointError, UnsafePath

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MARKER",
    "atomic_write",
    "carries_marker",
    "check_dest",
    "check_free_space",
    "check_same_file",
    "commit_part",
    "disk_full",
    "file_id",
    "file_state",
    "fsync_dir",
    "libc_function",
    "open_part",
    "preallocate",
    "pwrite_all",
    "remove_quietly",
    "remove_stale_temps",
    "replace_durably",
    "unlink_at",
]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# every side file of a destination carries it: `DEST.objget-part`, `.objget-ckpt`, `.objget-lock`,
# a Ray range's `.objget-r<N>.ckpt`, the batch's `.objget-batch.db` (see docs/batch.md)
MARKER = ".objget-"


def carries_marker(name: str) -> bool:
    """True when the file or directory name `name` contains objget's side-file marker
    (`.objget-`, in any letter case): the one rule for the names objget refuses to write,
    a single download's DEST (`check_dest`) and every path component of a batch's keys."""
    return MARKER in name.lower()


def _fmt(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def remove_quietly(path: str) -> None:
    """Unlink `path` (a symlink itself, never its target); a missing file is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def unlink_at(dir_fd: int | None, name: str) -> None:
    """Unlink `name` in the open directory `dir_fd` (None: `name` is a path) — a symlink
    itself, never its target; a missing file is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


def open_part(path: str, *, fresh: bool) -> int:
    """Open the temp data file. `fresh` discards whatever is at `path` (a planted symlink is
    removed, not followed) and creates a new file with O_EXCL; otherwise the existing regular
    file is opened without following symlinks."""
    flags = os.O_RDWR | _O_NOFOLLOW | _O_CLOEXEC
    if fresh:
        remove_quietly(path)
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    else:
        fd = os.open(path, flags)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def check_dest(dest: str) -> None:
    """Refuse, before any request, a destination the final rename cannot replace: an existing
    directory (IsADirectoryError, EISDIR, naming `dest`). A symlink there is fine: the rename
    replaces the link itself, never what it points to. A file name carrying the side-file
    marker (`x.objget-part`) is refused with UnsafePath: its rename would replace a side file
    of another download (the temp data of a running download of `x`)."""
    name = os.path.basename(dest)
    if carries_marker(name):
        raise UnsafePath(
            f"refusing the destination {dest}: the name {name!r} contains {MARKER!r}, the "
            "marker of objget's own side files (temp data, checkpoints, locks); writing it "
            "could replace another download's file. Choose another name",
            dest=dest,
        )
    try:
        mode = os.lstat(dest).st_mode
    except OSError:
        return  # nothing there (or nothing we may see): the later steps say what is wrong
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "the destination is an existing directory", dest)


def check_free_space(directory: str, needed: int) -> None:
    """Raise ENOSPC naming the space needed when the filesystem has less than `needed` free."""
    if needed <= 0:
        return
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"not enough free space in {directory}: the download needs {_fmt(needed)} "
            f"more, {_fmt(free)} is free; free at least {_fmt(needed - free)} and run the same "
            "command again to resume",
        )


def disk_full(directory: str, needed: int) -> OSError:
    """The ENOSPC to raise when the disk filled up during a download: it names the space the
    rest of the download needs (`needed` bytes still to write, at least 1 MiB for checkpoints)."""
    needed = max(needed, 1024 * 1024)
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    todo = f"free at least {_fmt(needed - free)} and run" if needed > free else "run"
    return OSError(
        errno.ENOSPC,
        f"the disk is full in {directory}: the rest of the download needs up to "
        f"{_fmt(needed)}, {_fmt(free)} is free; {todo} the same command again to resume",
    )


def preallocate(fd: int, size: int) -> None:
    """Reserve `size` bytes where the filesystem supports it (so a full disk fails early)."""
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return
        if exc.errno == errno.ENOSPC:
            raise OSError(
                errno.ENOSPC,
                f"not enough free space to reserve {_fmt(size)} for the download; free some "
                "space and run the same command again",
            ) from exc
        raise


def pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """Write all of `data` at `offset`, looping over short writes (e.g. just below a file
    size limit, where the next write raises EFBIG)."""
    while data:
        n = os.pwrite(fd, data, offset)
        if n <= 0:
            raise OSError(errno.EIO, f"pwrite wrote {n} bytes at offset {offset}")
        data = data[n:]
        offset += n


def fsync_dir(directory: str) -> None:
    """fsync a directory so a rename in it survives a power loss."""
    fd = os.open(directory or ".", os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_id(fd: int) -> tuple[int, int]:
    """(device, inode) of the open file `fd`: what `check_same_file` compares against."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def file_state(path: str) -> tuple[int, int, int] | None:
    """(inode, mtime_ns, size) of a regular file at `path` (not following a symlink), or None."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def check_same_file(
    dir_fd: int | None, name: str, made: tuple[int, int], *, display: str, part: str, dest: str
) -> None:
    """CheckpointError unless `name` (in the open directory `dir_fd`; None: `name` is a path)
    is, without following a symlink, still the file `made` (`file_id` of the descriptor objget
    wrote through): a temp file removed or replaced by someone else while objget wrote it must
    never be renamed onto DEST. `part` and `dest` are the paths the message names."""
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != made:
        raise CheckpointError(
            f"{display}: the temp file {part} was removed or replaced by another file while "
            f"objget wrote it; it was not renamed onto {dest} (is another program writing in "
            "this directory?)",
            source=display,
            dest=dest,
        )


def commit_part(
    part: str, dest: str, made: tuple[int, int], *, display: str, dir_fd: int | None = None
) -> None:
    """Rename the temp file `part` onto `dest` only while it is the file `made`
    (`check_same_file`), then fsync the directory. By path, like every file of the ranged
    engine: the rename stays the one `rename` call the crash-point tests stop at. With
    `dir_fd` (the open directory of both, as the single-request mode writes), the check and
    the rename are relative to it and the directory's fsync is the caller's (once for many)."""
    if dir_fd is None:
        check_same_file(None, part, made, display=display, part=part, dest=dest)
        replace_durably(part, dest)
        return
    name = os.path.basename(part)
    check_same_file(dir_fd, name, made, display=display, part=part, dest=dest)
    os.replace(name, os.path.basename(dest), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def replace_durably(src: str, dst: str) -> None:
    """`os.replace` followed by an fsync of the destination's directory."""
    os.replace(src, dst)
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


def remove_stale_temps(path: str) -> None:
    """Remove the temp file `atomic_write(path, ...)` leaves when the process dies between
    creating and renaming it (the caller holds the lock that makes it stale). One fixed name:
    no directory scan, so a batch of many files into one directory stays linear."""
    remove_quietly(f"{path}.tmp")


def atomic_write(path: str, data: bytes, *, mode: int = 0o600) -> None:
    """Write a small file atomically: temp file (O_EXCL, no symlink follow) → fsync →
    replace → fsync directory. Readers see the old or the new content, never a mix.
    The temp name is fixed (`PATH.tmp`): callers hold the lock of `path`, so one writer."""
    tmp = f"{path}.tmp"
    remove_quietly(tmp)  # a crashed writer's leftover, or a planted symlink (never followed)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode)
    try:
        try:
            pwrite_all(fd, memoryview(data), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        replace_durably(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


_bound: dict[str, Any] = {}  # libc's functions by name, once bound (None: there is none)


def libc_function(name: str, argtypes: tuple[str, ...], restype: str = "c_int") -> Any:
    """libc's `name` (`_libc.libc_function`, imported at the first call: a download under
    2 MiB binds nothing), kept here once bound: a batch asks for `syncfs` and `fstatfs` with
    every group of small objects, and an import statement each time cost more than the system
    call's own wrapper."""
    fn = _bound.get(name, _bound)
    if fn is _bound:
        from ._libc import libc_function as bind

        fn = _bound[name] = bind(name, argtypes, restype)
    return fn
