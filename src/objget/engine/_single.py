"""The engine's single-request mode: a small object (< SMALL) in one GET, no checkpoint.

For an object whose size and ETag are known (a listing described it), the ranged mode costs a
HEAD, a checkpoint written atomically (two fsyncs) and an engine thread — more than the
transfer itself when objects are 64 KiB. Here: one GET of `[0, size)` pinned with `If-Match`,
validated as the engine validates a part (`_ranges`: 206, `Content-Range`, length), streamed
into DEST's lock file `DEST.objget-lock` (`_lock_temp`: made with O_EXCL and flocked, it is the
temp file), checked, fsynced and renamed into place, which takes the lock's name with it. After
a crash such an object is fetched again from byte 0. A batch sends its small objects through
here.

The same guards as the ranged mode, through the same code: DEST's lock (its flock held from
before the first byte is written until after the rename; LockedError while another run holds
it); the checks of `objget.integrity.check_all` — size, the store's CRC
computed on the byte path (OSS `x-oss-hash-crc64ecma` comes with any GET answer), the file
checks (`_verify.file_checks_of`, a manifest's SHA-256) reading the file back from the page
cache; the inode-checked rename (`_fileio.commit_part`). S3 sends an object's checksums only
with a whole-object answer, so for S3 the GET asks for the whole object (`x-amz-checksum-mode`)
and the answer must be 200 with a Content-Length of the listed size.

Every file operation is relative to `dir_fd`, the destination's directory opened without
following symlinks (`_dirs.ParentMaker.open_dir`): a parent swapped for a symlink after that
open is never followed. What a batch of many small objects relies on: per object one create
(the lock file), its flock and `fstat`, one write (the bytes that came with the answer's head,
written straight from the connection's buffer when they are the whole object, else copied into
the caller's reused `buf` ahead of the rest), one fsync, one `lstat`, one rename and one close
(which lets go of the lock); the caller may fsync the
directory once for many objects (`sync_dir=False`), may make several objects' files durable
with one sync and rename them itself (`defer`: `Pending`), and `listed` (the directory's names
when the caller first visited it) spares the unlinks of leftovers that were not there.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Protocol, cast, runtime_checkable

from .._config import DownloadConfig
from .._exceptions import RangeNotSupported, TransportError
from .._models import ByteRange, DownloadResult, ObjectMeta
from .._ranges import check_range_answer
from ..backends._base import Backend, Checksummer, RangeBody, answer_checksums_of
from ..integrity import DigestCheck, FileCheck, Verified, check_all
from . import _checkpoint as ck
from ._attempts import Attempts, run_with_retry
from ._fileio import pwrite_all, unlink_at
from ._lock_temp import commit_lock_temp, create_locked, give_up
from ._sync import stamp
from ._throttle import BoundLimiter
from ._verify import checksummer_of, file_checks_of

__all__ = ["SMALL", "NotSmall", "Pending", "fetch_small"]

SMALL = 8 * 1024 * 1024
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # RDWR: read back
_OSS_CRC = "x-oss-hash-crc64ecma"
# a ranged run's files (its temp data and checkpoint), removed under the lock
_RANGED_SIDES = (".objget-part", ".objget-ckpt", ".objget-ckpt-live", ".objget-ckpt.tmp")


class NotSmall(Exception):
    """The answer to the GET of an object of unknown size is not a small object (SMALL or
    more, or no Content-Length): nothing was written; fetch it the usual way."""


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """A small object written, checked and stamped in DEST's lock file `lock`, still open (and
    flocked) as `fd`, neither synced nor renamed (`fetch_small(defer=...)`): the caller makes
    it durable (`_syncfs.sync_files`), then renames it onto DEST and closes `fd`
    (`commit_lock_temp`), or unlinks it and closes `fd` to give it up."""

    fd: int
    lock: str
    dest: str
    made: tuple[int, int]
    display: str


def fetch_small(
    backend: Backend,
    key: str,
    dest: str,
    *,
    dir_fd: int,
    meta: ObjectMeta,
    sha256: str | None,
    config: DownloadConfig,
    buf: memoryview,
    listed: frozenset[str] | None = None,
    sync_dir: bool = True,
    limiter: BoundLimiter | None = None,
    display: str | None = None,
    defer: list[Pending] | None = None,
) -> DownloadResult:
    """Download the small object `key` (size and ETag from `meta`) to `dest`, the name
    `basename(dest)` in the open directory `dir_fd` (`dest` is what results and messages
    say); a retryable failure starts the object over under the config's retry policy.

    `buf`: the read buffer (reused by the caller). `listed`: the names in the directory
    before the caller wrote there (None: unknown, leftovers are removed blindly).
    `sync_dir=False` leaves the directory fsync that makes the rename durable to the caller.
    The file gets the answer's Last-Modified (else `meta.last_modified`) as mtime.
    `limiter`: a rate limit shared with other downloads, taken from before each read.
    `display`: `backend.display(key)` when the caller has it already.
    `defer`: the lock file is neither fsynced nor renamed here but added, still flocked, to
    `defer` as a `Pending` for the caller to make durable with others and rename (see
    `Pending`); the result says what it will be.

    `meta.size` None (nothing told the size): one whole-object GET whose answer tells size,
    ETag and Last-Modified (200 with a Content-Length the bytes are checked against);
    NotSmall, with nothing written and DEST's lock let go of, when that answer is no small
    object."""
    started = time.monotonic()
    one = _Single(
        backend, key, dest, dir_fd=dir_fd, sha256=sha256, buf=buf, limiter=limiter,
        display=display if display is not None else backend.display(key),
    )  # fmt: skip
    checked, retries, meta = one.locked(meta, config, listed, defer)
    if sync_dir and defer is None:
        os.fsync(dir_fd)
    size = meta.size or 0
    return DownloadResult(
        path=dest, source=one.display, size=size, etag=meta.etag, version_id=meta.version_id,
        verified=checked.names, checksums=checked.values, bytes_fetched=size, bytes_resumed=0,
        elapsed=time.monotonic() - started, retries=retries, workers=1,
    )  # fmt: skip


class _Single:
    """One object's single request: what every attempt shares."""

    def __init__(
        self,
        backend: Backend,
        key: str,
        dest: str,
        *,
        dir_fd: int,
        sha256: str | None,
        buf: memoryview,
        limiter: BoundLimiter | None,
        display: str,
    ) -> None:
        self.backend, self.key, self.dir_fd, self.sha256 = backend, key, dir_fd, sha256
        self.buf, self.limiter = buf, limiter
        self.display = display
        self.paths = ck.Paths.beside(dest)
        self.lock = self.paths.lock.rpartition("/")[2]  # basename (POSIX), a call less

    def locked(
        self,
        meta: ObjectMeta,
        config: DownloadConfig,
        listed: frozenset[str] | None,
        defer: list[Pending] | None = None,
    ) -> tuple[Verified, int, ObjectMeta]:
        """DEST's lock file made (it is the temp file), leftovers removed, the object fetched
        into it (retried under the policy), the file renamed onto DEST if it is still the one
        written — or, with `defer`, left open, flocked and unsynced for the caller. (checks
        passed, retries, what the object was)"""
        fd, made = self._take()
        try:
            if listed is None or listed:  # (a directory that held nothing holds no leftovers)
                name = self.paths.dest.rpartition("/")[2]
                for suffix in _RANGED_SIDES:  # a ranged run's progress is not used here
                    side = name + suffix
                    if listed is None or side in listed:
                        unlink_at(self.dir_fd, side)
            keep = defer is not None

            def attempt(attempts: Attempts) -> tuple[Verified, ObjectMeta, int]:
                again = attempts.retries > 0  # a retry starts the object over
                return (*self.attempt(fd, meta, again=again, keep=keep), attempts.retries)

            verified, got, retries = run_with_retry(attempt, policy=config.retry)
        except BaseException:
            give_up(self.dir_fd, self.lock, fd)
            raise
        if defer is not None:
            defer.append(Pending(fd, self.paths.lock, self.paths.dest, made, self.display))
            return verified, retries, got
        commit_lock_temp(
            fd, self.paths.lock, self.paths.dest, made, display=self.display, dir_fd=self.dir_fd
        )
        return verified, retries, got

    def _take(self) -> tuple[int, tuple[int, int]]:
        """DEST's lock file, made new and flocked: (its descriptor, its identity)."""
        return create_locked(
            self.dir_fd, self.lock, _CREATE,
            path=self.paths.lock, dest=self.paths.dest, source=self.display,
        )  # fmt: skip

    def attempt(
        self, fd: int, meta: ObjectMeta, *, again: bool, keep: bool = False
    ) -> tuple[Verified, ObjectMeta]:
        """One GET into the lock file `fd` (`again`: emptied first, a retry starts over):
        (checks passed, the object's meta — learned from the answer when `meta.size` was
        None). `keep`: not fsynced (the caller syncs it with others)."""
        if again:
            os.ftruncate(fd, 0)
        summer: Checksummer | None = None
        crc = 0
        checks: list[FileCheck] = [DigestCheck("sha256", self.sha256)] if self.sha256 else []
        size = meta.size
        if size is None or size > 0:
            # S3 sends an object's checksums only with a whole-object answer: ask for that
            answer = answer_checksums_of(self.backend)
            rng = ByteRange(0, size) if size is not None and answer is None else None
            body = self.backend.get_range(self.key, rng, meta=meta)
            try:
                headers = body.headers
                if size is None:
                    meta = _learn(body, headers, meta, self.display)
                    size = meta.size or 0
                _check_answer(body, rng, size, self.display)
                sums = answer.answer_checksums(headers) if answer else _oss_sums(headers)
                if sums:
                    described = ObjectMeta(
                        size=size, etag=meta.etag, version_id=meta.version_id, checksums=sums
                    )
                    summer = checksummer_of(self.backend, described)
                    checks.extend(file_checks_of(self.backend, self.key, described, size=size))
                crc = self._write(body, fd, size, summer)
            finally:
                body.close()
            stamp(fd, headers.get("Last-Modified") or meta.last_modified)
        else:
            stamp(fd, meta.last_modified)
        # the same comparison as every download; the file checks read back what was written
        verified = check_all(
            fd, size=size, checksummer=summer, crc=crc, checks=checks, display=self.display,
            discard=lambda: None,  # the lock file goes with any other failure (`locked`)
        )  # fmt: skip
        if not keep:
            os.fsync(fd)
        return verified, meta

    def _write(self, body: RangeBody, fd: int, size: int, summer: Checksummer | None) -> int:
        """The body's `size` bytes written to `fd` (gathered in `buf`, written when it is full
        and at the end); the CRC of `summer` over them (0 without one)."""
        buf, limiter, crc = self.buf, self.limiter, 0
        first = _buffered_head(body, size)
        if first:
            if limiter is not None:
                limiter.take(len(first))  # arrived already: counted all the same
            if summer is not None:
                crc = summer.update(crc, first)
        pos = held = len(first)  # `held` bytes at the front of buf, not written yet
        if held == size or held > len(buf):
            pwrite_all(fd, first, 0)  # all of it (or more than buf holds): no copy
            held = 0
        elif held:
            buf[:held] = first  # the rest follows it in buf: one write for the object
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
                    f"{self.display}: connection closed after {pos} of {size} bytes",
                    source=self.display,
                )
            if summer is not None:
                crc = summer.update(crc, buf[held : held + n])
            held += n
            pos += n
        pwrite_all(fd, buf[:held], size - held)
        return crc


@runtime_checkable
class _Buffered(Protocol):
    """A body that can hand over the bytes that arrived with its head without a copy."""

    def take_buffered(self, limit: int) -> memoryview: ...


_BUFFERED: dict[type, bool] = {}


def _buffered_head(body: RangeBody, size: int) -> memoryview:
    """The bytes (at most `size`) that came with the answer's head, as a view of the
    connection's buffer, consumed (valid until the next call on `body`); empty when the body
    cannot hand them over — then `readinto` reads them."""
    cls = type(body)
    found = _BUFFERED.get(cls)
    if found is None:
        found = _BUFFERED[cls] = isinstance(body, _Buffered)
    return cast(_Buffered, body).take_buffered(size) if found else memoryview(b"")


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
