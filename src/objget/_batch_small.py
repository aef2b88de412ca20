"""Small listed objects (< 8 MiB, one part) in one request each, without the per-object
machinery that only pays off for large ones.

For an object the listing already described (size + ETag), the full Downloader flow costs a
HEAD, a lock file, a checkpoint written atomically (two fsyncs) and an engine thread — more
than the transfer itself when objects are 64 KiB. Here: one ranged GET of `[0, size)` pinned
with `If-Match` (validated exactly like the engine validates a part: 206, `Content-Range`,
length), streamed into `DEST.objget-part`, checked (size; the store's CRC when the GET answer
carries one, e.g. OSS `x-oss-hash-crc64ecma`; the manifest's SHA-256), fsynced and renamed
into place. No checkpoint: after a crash such an object is fetched again from byte 0.

The same guards as a single download: the destination's lock (`DEST.objget-lock`, the
`DestLock` the engine takes) is held from before the temp file is made until after the rename,
so a single download of the same DEST started meanwhile is refused (exit 7), and this object
fails as `locked` while one runs. Every file operation is relative to `dir_fd`, the
destination's directory opened without following symlinks (`ParentMaker.open_dir`): a parent
swapped for a symlink after that open is never followed. The temp file's inode is checked
before the rename, so a temp file swapped by someone else is never renamed onto DEST.

Per object that is the lock, one create, one or two writes (the bytes that came with the
answer's head straight from the connection's buffer, the rest gathered in `buf` first), one
fsync, one close, one `lstat` and one rename: the runner fsyncs the directory once for a group
of objects before it journals them done (`sync_dir=False`), and `listed` — the directory's
names when the batch first visited it — spares the unlinks of temp files that were not there.
"""

from __future__ import annotations

import hashlib
import os
import random
import time

from . import _checkpoint as ck
from ._batch_answer import AnswerBody
from ._config import DownloadConfig
from ._exceptions import CheckpointError, IntegrityError, RangeNotSupported, TransportError
from ._fileio import pwrite_all, unlink_at
from ._models import ByteRange, DownloadResult, ObjectMeta
from ._ranges import check_range_answer
from ._retry import RetryState, after_failure
from ._sync import stamp
from .backends._base import Backend

__all__ = ["SMALL", "HeldLock", "fetch_small"]

_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
SMALL = 8 * 1024 * 1024
_CHECKSUM_HEADERS = (
    ("x-oss-hash-crc64ecma", "crc64ecma"),
    ("x-amz-checksum-crc64nvme", "crc64nvme"),
    ("x-amz-checksum-crc32c", "crc32c"),
    ("x-amz-checksum-crc32", "crc32"),
)


def fetch_small(
    backend: Backend,
    key: str,
    dest: str,
    *,
    dir_fd: int,
    size: int,
    etag: str | None,
    version_id: str | None,
    sha256: str | None,
    config: DownloadConfig,
    buf: memoryview,
    listed: frozenset[str] | None = None,
    sync_dir: bool = True,
    held: HeldLock | None = None,
    last_modified: str | None = None,
) -> DownloadResult:
    """Download a small object of known size and ETag to `dest` — the name
    `basename(dest)` in the open directory `dir_fd` (`dest` is what results and messages
    say); retryable failures start the object over under the config's retry policy.

    `listed`: the names in `dest`'s directory before the batch wrote there (None: unknown,
    so leftovers of an earlier run are removed blindly). `sync_dir=False` leaves the fsync
    of the directory (which makes the rename durable) to the caller. `held`: take DEST's
    lock through it and leave it held for the next object (else it is released here). The
    file gets the answer's Last-Modified (else `last_modified`, the listing's) as mtime, as
    every download."""
    started = time.monotonic()
    display = backend.display(key)
    paths = ck.Paths.beside(dest)
    meta = ObjectMeta(
        size=size, etag=etag, version_id=version_id, accept_ranges=True, last_modified=last_modified
    )
    if held is None:
        with ck.DestLock(paths.lock, dest=dest, source=display, dir_fd=dir_fd):
            verified, retries = _locked(
                backend, key, paths, meta, display, sha256, buf, config,
                dir_fd=dir_fd, listed=listed,
            )  # fmt: skip
    else:
        held.take(dir_fd, paths, display)
        verified, retries = _locked(
            backend, key, paths, meta, display, sha256, buf, config,
            dir_fd=dir_fd, listed=listed,
        )  # fmt: skip
    if sync_dir:
        os.fsync(dir_fd)
    return DownloadResult(
        path=dest, source=display, size=size, etag=etag, version_id=version_id,
        verified=verified, bytes_fetched=size, bytes_resumed=0,
        elapsed=time.monotonic() - started, retries=retries, workers=1,
    )  # fmt: skip


def _locked(
    backend: Backend,
    key: str,
    paths: ck.Paths,
    meta: ObjectMeta,
    display: str,
    sha256: str | None,
    buf: memoryview,
    config: DownloadConfig,
    *,
    dir_fd: int,
    listed: frozenset[str] | None,
) -> tuple[tuple[str, ...], int]:
    """Under DEST's lock: leftovers removed, the object fetched (retried under the policy),
    the temp file's inode checked and renamed onto DEST. (checks passed, retries)"""
    state: RetryState | None = None  # made on the first failure only
    retries = 0
    name = os.path.basename(paths.dest)
    part = os.path.basename(paths.part)
    for side in (f"{name}.objget-ckpt", f"{name}.objget-ckpt-live", f"{name}.objget-ckpt.tmp"):
        if listed is None or side in listed:  # an engine run's progress is not used here
            unlink_at(dir_fd, side)
    stale = listed is None or part in listed
    while True:
        try:
            verified, made = _attempt(
                backend, key, paths, meta, display, sha256, buf, dir_fd=dir_fd, stale=stale
            )
            break
        except TransportError as exc:
            if state is None:
                state = RetryState(policy=config.retry)
            state, delay = after_failure(state, exc, rand=random.random())
            retries += 1
            time.sleep(delay)
    try:
        now = os.stat(part, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != made:
        raise CheckpointError(
            f"{display}: the temp file {paths.part} was removed or replaced by another "
            f"file while objget wrote it; it was not renamed onto {paths.dest} (is another "
            "program writing in this directory?)",
            source=display,
            dest=paths.dest,
        )
    os.replace(part, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    return verified, retries


class HeldLock:
    """The DEST lock a worker holds from one small object to the next: handed over to the
    next destination in the same directory (`DestLock.move`: a hard link of the lock file,
    then its old name removed — no file created per object; creating a file while other
    threads fsync is what a lock costs), taken anew otherwise or when the next name is
    there already. `release()` lets go of it (its file removed). One thread only."""

    def __init__(self) -> None:
        self._lock: ck.DestLock | None = None
        self._dir: tuple[int, int] | None = None  # (device, inode) of the lock's directory
        self._fd: int | None = None  # the lock's own descriptor of that directory

    def take(self, dir_fd: int, paths: ck.Paths, display: str) -> None:
        """Hold DEST's lock of `paths` (in the open directory `dir_fd`); LockedError when
        another run holds it."""
        if self._lock is not None:
            st = os.fstat(dir_fd)
            if self._dir == (st.st_dev, st.st_ino) and self._lock.move(
                paths.lock, dest=paths.dest, source=display
            ):
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


def _create(dir_fd: int, name: str, *, stale: bool) -> int:
    """A new temp file `name` in `dir_fd` (O_EXCL: a planted symlink is never followed); a
    leftover there is removed first when one may exist, or when the create finds one."""
    if stale:
        unlink_at(dir_fd, name)
    try:
        return os.open(name, _CREATE, 0o644, dir_fd=dir_fd)
    except FileExistsError:
        unlink_at(dir_fd, name)
        return os.open(name, _CREATE, 0o644, dir_fd=dir_fd)


def _attempt(
    backend: Backend,
    key: str,
    paths: ck.Paths,
    meta: ObjectMeta,
    display: str,
    sha256: str | None,
    buf: memoryview,
    *,
    dir_fd: int,
    stale: bool,
) -> tuple[tuple[str, ...], tuple[int, int]]:
    """One GET into a new temp file; (checks passed, the temp file's (device, inode))."""
    size = meta.size or 0
    part = os.path.basename(paths.part)
    fd = _create(dir_fd, part, stale=stale)
    try:
        verified = ["size"]
        digest = hashlib.sha256() if sha256 else None
        if size > 0:
            rng = ByteRange(0, size)
            body = backend.get_range(key, rng, meta=meta)
            try:
                check = check_range_answer(
                    asked=rng, size=size, status=body.status,
                    content_range=body.content_range, content_length=body.content_length,
                )  # fmt: skip
                if not check.ok:
                    raise RangeNotSupported(
                        f"{display}: {check.reason}; no bytes were written from this answer",
                        status=body.status,
                        source=display,
                    )
                headers = getattr(body, "headers", None) or {}
                # `in` first: a miss costs far less than Mapping.get on an HTTPHeaderDict
                given = [(h, n) for h, n in _CHECKSUM_HEADERS if h in headers]
                sums = {n: headers[h] for h, n in given if headers[h]}
                summer = (
                    backend.checksummer(ObjectMeta(size=size, etag=meta.etag, checksums=sums))
                    if sums
                    else None
                )
                crc, pos, held = 0, 0, 0  # `held` bytes at the front of buf, not written yet
                if isinstance(body, AnswerBody):
                    # the bytes that came with the head: written from the connection's
                    # buffer, not copied into `buf` first (used up before the next call)
                    first = body.take_buffered(size)
                    if first:
                        if summer is not None:
                            crc = summer.update(crc, first)
                        if digest is not None:
                            digest.update(first)
                        pwrite_all(fd, first, 0)
                        pos = len(first)
                while pos < size:
                    if held == len(buf):
                        pwrite_all(fd, buf[:held], pos - held)
                        held = 0
                    n = body.readinto(buf[held : held + min(len(buf) - held, size - pos)])
                    if n == 0:
                        raise TransportError(
                            f"{display}: connection closed after {pos} of {size} bytes",
                            source=display,
                        )
                    chunk = buf[held : held + n]
                    if summer is not None:
                        crc = summer.update(crc, chunk)
                    if digest is not None:
                        digest.update(chunk)
                    held += n
                    pos += n
            finally:
                body.close()
            pwrite_all(fd, buf[:held], size - held)
            stamp(fd, headers.get("Last-Modified") or meta.last_modified)
            if summer is not None:
                _compare(summer.name, str(summer.expected), str(crc), display, paths)
                verified.append(summer.name)
        if digest is not None and sha256 is not None:
            _compare("sha256", sha256, digest.hexdigest(), display, paths)
            verified.append("sha256")
        if size == 0:
            stamp(fd, meta.last_modified)
        os.fsync(fd)
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        unlink_at(dir_fd, part)
        raise
    os.close(fd)
    return tuple(verified), (st.st_dev, st.st_ino)


def _compare(name: str, expected: str, actual: str, display: str, paths: ck.Paths) -> None:
    if expected == actual:
        return
    raise IntegrityError(
        f"{display}: {name} mismatch (expected {expected}, got {actual}); the download was "
        "discarded and the destination was not touched",
        algorithm=name,
        expected=expected,
        actual=actual,
        source=display,
    )
