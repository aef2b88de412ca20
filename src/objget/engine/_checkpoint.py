"""The durable checkpoint's files: their paths, framing, atomic save and tolerant load, and the
lock. What a checkpoint records, and its codec, are `_checkpoint_record`, loaded at the first
save or load of one (a download that ends before its first save never builds it). Any
checkpoint that cannot be decoded exactly (truncated, bit-flipped, other version, foreign) is
reported and ignored: the download restarts, it never crashes.

`DEST.objget-ckpt` is written after an fdatasync of the data, atomically, fsynced; it
survives a power cut. It is saved about once a second (an fdatasync is not cheap); what a
killed process wrote after its last save is in the live record (`_live`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import zlib
from dataclasses import dataclass

from .._exceptions import LockedError
from ._fileio import atomic_write, unlink_at
from ._plan import Span

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._checkpoint_record import Checkpoint

__all__ = [
    "CheckpointInvalid",
    "DestLock",
    "Paths",
    "frame",
    "int_field",
    "load",
    "parse_spans",
    "read_record",
    "save",
    "take_flock",
    "unframe",
]

MAX_BYTES = 64 * 1024 * 1024
_MAX_INT = 2**63 - 1
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Paths:
    """Where one destination's temp data, checkpoint and lock live."""

    dest: str
    part: str
    checkpoint: str
    lock: str

    @property
    def live(self) -> str:
        return f"{self.checkpoint}-live"

    @classmethod
    def beside(cls, dest: str) -> Paths:
        return cls(
            dest=dest,
            part=f"{dest}.objget-part",
            checkpoint=f"{dest}.objget-ckpt",
            lock=f"{dest}.objget-lock",
        )


class CheckpointInvalid(ValueError):
    """The bytes are not a usable checkpoint; the message says why."""


def frame(body: dict[str, object]) -> bytes:
    """One JSON line and the CRC-32 of its text: a record that is exactly right or rejected.
    (json is imported here: a download that ends before its first save never needs it.)"""
    import json

    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return f"{text}\n{zlib.crc32(text.encode()):08x}\n".encode()


def unframe(data: bytes, fmt: str, version: int) -> dict[str, object]:
    """The body `frame` wrote for format `fmt` at `version`; CheckpointInvalid otherwise."""
    if len(data) > MAX_BYTES:
        raise CheckpointInvalid("checkpoint too large")
    try:
        text, crc_line, tail = data.decode("utf-8").split("\n")
    except (UnicodeDecodeError, ValueError):
        raise CheckpointInvalid("not an objget checkpoint (bad framing)") from None
    if tail != "" or crc_line != f"{zlib.crc32(text.encode()):08x}":
        raise CheckpointInvalid("checksum mismatch (truncated or corrupted)")
    import json

    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise CheckpointInvalid("not JSON") from None
    if not isinstance(body, dict) or body.get("format") != fmt:
        raise CheckpointInvalid(f"not an {fmt} record")
    if body.get("version") != version:
        raise CheckpointInvalid(f"unsupported {fmt} version {body.get('version')!r}")
    return body


def int_field(v: object, what: str, limit: int = _MAX_INT) -> int:
    """`v` when it is an int in [0, limit] (not a bool); CheckpointInvalid naming `what`."""
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
        raise CheckpointInvalid(f"bad {what}")
    return v


def parse_spans(
    raw: object, limit: int, what: str, *, touch: bool = False, crc: bool = False
) -> tuple[Span, ...]:
    """Sorted, non-empty, in-bounds spans that do not overlap (nor touch, unless `touch`);
    with `crc`, each must carry one."""
    if not isinstance(raw, list):
        raise CheckpointInvalid(f"bad {what}")
    spans: list[Span] = []
    prev_stop = -1
    for item in raw:
        if not isinstance(item, list) or len(item) != 3:
            raise CheckpointInvalid("bad span")
        start, stop = int_field(item[0], "span start"), int_field(item[1], "span stop")
        value = None if item[2] is None and not crc else int_field(item[2], "span crc", 2**64 - 1)
        if start < prev_stop or (start == prev_stop and not touch) or start >= stop:
            raise CheckpointInvalid(f"{what} overlap, touch or are unsorted")
        if stop > limit:
            raise CheckpointInvalid(f"{what} exceed the size")
        spans.append(Span(start, stop, value))
        prev_stop = stop
    return tuple(spans)


def save(path: str, ckpt: Checkpoint) -> None:
    """Atomically replace the checkpoint (temp → fsync → replace → fsync dir), mode 0600.
    The caller has fdatasync'ed the data file first."""
    from ._checkpoint_record import encode

    atomic_write(path, encode(ckpt), mode=0o600)


def load(path: str) -> Checkpoint | None:
    """The checkpoint at `path`, None when there is none; CheckpointInvalid when unusable."""
    data = read_record(path)
    if data is None:
        return None
    from ._checkpoint_record import decode

    return decode(data)


def read_record(path: str) -> bytes | None:
    """The bytes of the small record file at `path` (None: no file); CheckpointInvalid for a
    symlink or anything but a regular file there (a FIFO does not hang the open)."""
    try:  # O_NONBLOCK: a FIFO planted at the path must not hang the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointInvalid("checkpoint path is a symlink; not followed") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointInvalid("checkpoint path is not a regular file")
        return os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)


def take_flock(fd: int, *, path: str, dest: str, source: str | None) -> None:
    """An exclusive `flock` on the lock file open as `fd` (`path`: what messages say), not
    waiting: LockedError when another run holds it; `fd` is closed on any failure."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise LockedError(
                f"another objget run is downloading to {dest} (it holds the lock "
                f"{path}); wait for it to finish or stop it, then run again",
                source=source,
                dest=dest,
            ) from exc
        raise


class DestLock:
    """An exclusive, non-blocking lock on one destination (flock on `<dest>.objget-lock`).

    The lock file is removed on release; a lock taken on a file that another run unlinked in
    the meantime, or renamed onto its destination (a batch's small object is written in its
    lock file: `_lock_temp`), is detected (inode check) and taken again on a new file. A lock
    file a killed run left (with a batch's partial object in it) is truncated. With `dir_fd`, the
    lock file is the name `basename(path)` in that open directory (no path is resolved again,
    so a parent swapped for a symlink is not followed); `path` is then only what messages say.
    """

    def __init__(
        self, path: str, *, dest: str, source: str | None = None, dir_fd: int | None = None
    ) -> None:
        self._path = path
        self._name = path if dir_fd is None else os.path.basename(path)
        self._dir_fd = dir_fd
        self._dest = dest
        self._source = source
        self._fd: int | None = None

    def acquire(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | _O_CLOEXEC
        for _ in range(10):
            fd = os.open(self._name, flags, 0o600, dir_fd=self._dir_fd)
            take_flock(fd, path=self._path, dest=self._dest, source=self._source)
            try:
                now = os.stat(self._name, dir_fd=self._dir_fd, follow_symlinks=False)
                ino = os.fstat(fd).st_ino
                same = ino == now.st_ino
            except FileNotFoundError:
                same = False
            if same:
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                except OSError as exc:  # a full disk: say which file, and let go of it
                    os.close(fd)
                    raise OSError(exc.errno, exc.strerror, self._path) from exc
                self._fd = fd
                return
            os.close(fd)
        raise LockedError(f"could not take the lock {self._path}", dest=self._dest)

    def release(self, *, remove: bool) -> None:
        if self._fd is None:
            return
        if remove:
            unlink_at(self._dir_fd, self._name)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DestLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release(remove=True)
