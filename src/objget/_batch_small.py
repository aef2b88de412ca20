"""Small listed objects (< 8 MiB, one part) in one request each, without the per-object
machinery that only pays off for large ones.

For an object the listing already described (size + ETag), the full Downloader flow costs a
HEAD, a lock file, a checkpoint written atomically (two fsyncs) and an engine thread — more
than the transfer itself when objects are 64 KiB. Here: one ranged GET of `[0, size)` pinned
with `If-Match` (validated exactly like the engine validates a part: 206, `Content-Range`,
length), streamed into `DEST.objget-part`, checked, fsynced and renamed into place.

The checks are the large path's, through the same code (`objget.integrity.check_all`): size; the
store's CRC computed on the byte path (OSS `x-oss-hash-crc64ecma` comes with any GET answer);
then the file checks — the manifest's SHA-256 and the backend's own (`_verify.file_checks_of`: S3's
full-object SHA-256/SHA-1, a COMPOSITE value) — reading the just-written file back from the
page cache. S3 sends an object's checksums only with a whole-object answer (never with a
ranged one, and a range over a multipart object may carry a part-level value), so for S3
the GET asks for the whole object with `x-amz-checksum-mode: ENABLED` instead, and the
answer must be 200 with a Content-Length of the listed size.

No checkpoint: after a crash such an object is fetched again from byte 0.

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

import contextlib
import os
import time
from collections.abc import Mapping

from . import _checkpoint as ck
from ._attempts import Attempts, run_with_retry
from ._config import DownloadConfig
from ._exceptions import RangeNotSupported, TransportError
from ._fileio import check_same_file, file_id, pwrite_all, unlink_at
from ._models import ByteRange, DownloadResult, ObjectMeta
from ._ranges import check_range_answer
from ._sync import stamp
from ._throttle import BoundLimiter
from ._verify import checksummer_of, file_checks_of
from .backends import ResponseBody
from .backends._base import Backend, Checksummer, RangeBody, answer_checksums_of
from .integrity import DigestCheck, FileCheck, Verified, check_all

__all__ = ["SMALL", "HeldLock", "NotSmall", "fetch_small"]

_CREATE = (
    os.O_RDWR  # the file checks read it back
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
SMALL = 8 * 1024 * 1024
_OSS_CRC = "x-oss-hash-crc64ecma"


class NotSmall(Exception):
    """The answer to the GET of an object of unknown size is not a small object (SMALL or
    more, or no Content-Length): nothing was written; fetch it the usual way."""


def fetch_small(
    backend: Backend,
    key: str,
    dest: str,
    *,
    dir_fd: int,
    size: int | None,
    etag: str | None,
    version_id: str | None,
    sha256: str | None,
    config: DownloadConfig,
    buf: memoryview,
    listed: frozenset[str] | None = None,
    sync_dir: bool = True,
    held: HeldLock | None = None,
    last_modified: str | None = None,
    limiter: BoundLimiter | None = None,
) -> DownloadResult:
    """Download a small object of known size and ETag to `dest` — the name
    `basename(dest)` in the open directory `dir_fd` (`dest` is what results and messages
    say); retryable failures start the object over under the config's retry policy.

    `listed`: the names in `dest`'s directory before the batch wrote there (None: unknown,
    so leftovers of an earlier run are removed blindly). `sync_dir=False` leaves the fsync
    of the directory (which makes the rename durable) to the caller. `held`: take DEST's
    lock through it and leave it held for the next object (else it is released here). The
    file gets the answer's Last-Modified (else `last_modified`, the listing's) as mtime, as
    every download. `limiter`: the batch's shared rate limit (`limit_rate`), taken from
    before each read.

    `size=None` (a manifest entry: nothing told its size): one whole-object GET, and the
    answer tells size, ETag and Last-Modified (200 with a Content-Length; the bytes are
    checked against it); NotSmall, with nothing written, when that answer is no small
    object."""
    started = time.monotonic()
    display = backend.display(key)
    paths = ck.Paths.beside(dest)
    meta = ObjectMeta(
        size=size, etag=etag, version_id=version_id, accept_ranges=True, last_modified=last_modified
    )
    lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if held is None:
        lock = ck.DestLock(paths.lock, dest=dest, source=display, dir_fd=dir_fd)
    else:
        held.take(dir_fd, paths, display)  # held on for the next object
    with lock:
        checked, retries, meta = _locked(
            backend, key, paths, meta, display, sha256, buf, config,
            dir_fd=dir_fd, listed=listed, limiter=limiter,
        )  # fmt: skip
    if sync_dir:
        os.fsync(dir_fd)
    size = meta.size or 0
    return DownloadResult(
        path=dest, source=display, size=size, etag=meta.etag, version_id=meta.version_id,
        verified=checked.names, checksums=checked.values, bytes_fetched=size, bytes_resumed=0,
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
    limiter: BoundLimiter | None = None,
) -> tuple[Verified, int, ObjectMeta]:
    """Under DEST's lock: leftovers removed, the object fetched (retried under the policy),
    the temp file's inode checked and renamed onto DEST. (checks passed, retries, what the
    object was)"""
    name = os.path.basename(paths.dest)
    part = os.path.basename(paths.part)
    for side in (f"{name}.objget-ckpt", f"{name}.objget-ckpt-live", f"{name}.objget-ckpt.tmp"):
        if listed is None or side in listed:  # an engine run's progress is not used here
            unlink_at(dir_fd, side)
    stale = listed is None or part in listed

    def attempt(attempts: Attempts) -> tuple[Verified, tuple[int, int], ObjectMeta, int]:
        verified, made, got = _attempt(
            backend, key, paths, meta, display, sha256, buf,
            dir_fd=dir_fd, stale=stale, limiter=limiter,
        )  # fmt: skip
        return verified, made, got, attempts.retries  # the failed attempts before this one

    verified, made, got, retries = run_with_retry(attempt, policy=config.retry)
    check_same_file(dir_fd, part, made, display=display, part=paths.part, dest=paths.dest)
    os.replace(part, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    return verified, retries, got


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
    limiter: BoundLimiter | None = None,
) -> tuple[Verified, tuple[int, int], ObjectMeta]:
    """One GET into a new temp file; (checks passed, the temp file's (device, inode), the
    object's meta — learned from the answer when `meta.size` was None)."""
    size = meta.size
    part = os.path.basename(paths.part)
    fd = _create(dir_fd, part, stale=stale)
    try:
        summer: Checksummer | None = None
        crc = 0
        checks: list[FileCheck] = [DigestCheck("sha256", sha256)] if sha256 else []
        if size is None or size > 0:
            # S3 sends an object's checksums only with a whole-object answer: ask for that
            answer = answer_checksums_of(backend)
            whole = answer is not None or size is None
            rng = ByteRange(0, size) if size is not None and not whole else None
            body = backend.get_range(key, rng, meta=meta)
            try:
                headers = body.headers
                if size is None:
                    meta = _learn(body, headers, meta, display)
                    size = meta.size or 0
                _check_answer(body, rng, size, display)
                sums = answer.answer_checksums(headers) if answer else _oss_sums(headers)
                if sums:
                    described = ObjectMeta(
                        size=size, etag=meta.etag, version_id=meta.version_id, checksums=sums
                    )
                    summer = checksummer_of(backend, described)
                    checks.extend(file_checks_of(backend, key, described, size=size))
                pos, held = 0, 0  # `held` bytes at the front of buf, not written yet
                if isinstance(body, ResponseBody):
                    # the bytes that came with the head: written from the connection's
                    # buffer, not copied into `buf` first (used up before the next call)
                    first = body.take_buffered(size)
                    if first and limiter is not None:
                        limiter.take(len(first))  # arrived already: counted all the same
                    if first:
                        if summer is not None:
                            crc = summer.update(crc, first)
                        pwrite_all(fd, first, 0)
                        pos = len(first)
                while pos < size:
                    if held == len(buf):
                        pwrite_all(fd, buf[:held], pos - held)
                        held = 0
                    want = min(len(buf) - held, size - pos)
                    if limiter is not None:
                        want = min(want, limiter.chunk)
                        limiter.take(want)
                    n = body.readinto(buf[held : held + want])
                    if n == 0:
                        raise TransportError(
                            f"{display}: connection closed after {pos} of {size} bytes",
                            source=display,
                        )
                    if summer is not None:
                        crc = summer.update(crc, buf[held : held + n])
                    held += n
                    pos += n
            finally:
                body.close()
            pwrite_all(fd, buf[:held], size - held)
            stamp(fd, headers.get("Last-Modified") or meta.last_modified)
        else:
            stamp(fd, meta.last_modified)
        assert size is not None
        # the same comparison as every download; the file checks read back what was written
        verified = check_all(
            fd, size=size, checksummer=summer, crc=crc, checks=checks, display=display,
            discard=lambda: None,  # the temp file goes below, with any other failure
        )  # fmt: skip
        os.fsync(fd)
        made = file_id(fd)
    except BaseException:
        os.close(fd)
        unlink_at(dir_fd, part)
        raise
    os.close(fd)
    return verified, made, meta


def _learn(
    body: RangeBody, headers: Mapping[str, str], meta: ObjectMeta, display: str
) -> ObjectMeta:
    """What the whole-object answer says of an object nothing described before; NotSmall
    when it is no small object (the body is closed by the caller)."""
    length = body.content_length
    if body.status != 200 or length is None or length >= SMALL:
        raise NotSmall(f"{display}: status {body.status}, Content-Length {length}")
    return ObjectMeta(
        size=length,
        etag=headers.get("ETag"),
        version_id=meta.version_id
        or headers.get("x-amz-version-id")
        or headers.get("x-oss-version-id"),
        accept_ranges=True,
        last_modified=headers.get("Last-Modified") or meta.last_modified,
    )


def _check_answer(body: RangeBody, rng: ByteRange | None, size: int, display: str) -> None:
    """A ranged answer must be exactly `rng` (as the engine checks a part); a whole-object
    answer (`rng` None) 200 with a Content-Length of `size`."""
    if rng is None:
        ok = body.status == 200 and body.content_length == size
        reason = (
            f"status {body.status} with Content-Length {body.content_length} to a whole-object "
            f"GET (expected 200 and {size})"
        )
    else:
        check = check_range_answer(
            asked=rng, size=size, status=body.status,
            content_range=body.content_range, content_length=body.content_length,
        )  # fmt: skip
        ok, reason = check.ok, check.reason
    if not ok:
        raise RangeNotSupported(
            f"{display}: {reason}; no bytes were written from this answer",
            status=body.status,
            source=display,
        )


def _oss_sums(headers: Mapping[str, str]) -> dict[str, str]:
    # `in` first: a miss costs far less than Mapping.get on an HTTPHeaderDict
    if _OSS_CRC not in headers:
        return {}
    value = headers[_OSS_CRC]
    return {"crc64ecma": value} if value else {}
