"""The engine's single-request mode: a small object (< SMALL) in one GET, no checkpoint.

For an object whose size and ETag are known (a listing described it), the ranged mode costs a
HEAD, a checkpoint written atomically (two fsyncs) and an engine thread — more than the
transfer itself when objects are 64 KiB. Here: one GET of `[0, size)` pinned with `If-Match`,
validated as the engine validates a part (`_ranges`: 206, `Content-Range`, length), streamed
into `DEST.objget-part`, checked, fsynced and renamed into place. After a crash such an object
is fetched again from byte 0. A batch sends its small objects through here.

The same guards as the ranged mode, through the same code: DEST's lock (`DestLock`) from before
the temp file is made until after the rename (`HeldLock` hands it from one object to the next
without creating a file); the checks of `objget.integrity.check_all` — size, the store's CRC
computed on the byte path (OSS `x-oss-hash-crc64ecma` comes with any GET answer), the file
checks (`_verify.file_checks_of`, a manifest's SHA-256) reading the file back from the page
cache; the inode-checked rename (`_fileio.commit_part`). S3 sends an object's checksums only
with a whole-object answer, so for S3 the GET asks for the whole object (`x-amz-checksum-mode`)
and the answer must be 200 with a Content-Length of the listed size.

Every file operation is relative to `dir_fd`, the destination's directory opened without
following symlinks (`_dirs.ParentMaker.open_dir`): a parent swapped for a symlink after that
open is never followed. What a batch of many small objects relies on: per object the lock, one
create, one write (the bytes that came with the answer's head, written straight from the
connection's buffer when they are the whole object, else copied into the caller's reused `buf`
ahead of the rest), one fsync, one close, one `lstat` and one rename; the caller may fsync the
directory once for many objects (`sync_dir=False`), may make several objects' files durable
with one sync and rename them itself (`defer`: `Pending`), and `listed` (the directory's names
when the caller first visited it) spares the unlinks of leftovers that were not there.
"""

from __future__ import annotations

import contextlib
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
from ._fileio import commit_part, file_id, pwrite_all, unlink_at
from ._held_lock import HeldLock
from ._sync import stamp
from ._throttle import BoundLimiter
from ._verify import checksummer_of, file_checks_of

__all__ = ["SMALL", "NotSmall", "Pending", "fetch_small"]

SMALL = 8 * 1024 * 1024
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # RDWR: read back
_OSS_CRC = "x-oss-hash-crc64ecma"
_RANGED_SIDES = (".objget-ckpt", ".objget-ckpt-live", ".objget-ckpt.tmp")  # its checkpoint files


class NotSmall(Exception):
    """The answer to the GET of an object of unknown size is not a small object (SMALL or
    more, or no Content-Length): nothing was written; fetch it the usual way."""


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """A small object written, checked and stamped in its temp file, still open as `fd`,
    neither synced nor renamed (`fetch_small(defer=...)`): the caller makes it durable
    (`_syncfs.sync_files`), then renames it with `commit_part(part, dest, made, dir_fd=...)`,
    holding DEST's lock until then, and closes `fd`."""

    fd: int
    part: str
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
    held: HeldLock | None = None,
    same_dir: bool = False,
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
    `held`: take DEST's lock through it and keep it for the next object (else released
    here). The file gets the answer's Last-Modified (else `meta.last_modified`) as mtime.
    `limiter`: a rate limit shared with other downloads, taken from before each read.
    `display`: `backend.display(key)` when the caller has it already.
    `defer` (with `held`, whose lock the caller keeps until then): the temp file is neither
    fsynced nor renamed here but added to `defer` as a `Pending` for the caller to make
    durable with others and rename (see `Pending`); the result says what it will be.

    `meta.size` None (nothing told the size): one whole-object GET whose answer tells size,
    ETag and Last-Modified (200 with a Content-Length the bytes are checked against);
    NotSmall, with nothing written, when that answer is no small object."""
    started = time.monotonic()
    one = _Single(
        backend, key, dest, dir_fd=dir_fd, sha256=sha256, buf=buf, limiter=limiter,
        display=display if display is not None else backend.display(key),
    )  # fmt: skip
    lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if held is None:
        lock = ck.DestLock(one.paths.lock, dest=dest, source=one.display, dir_fd=dir_fd)
    else:
        held.take(dir_fd, one.paths, one.display, same_dir=same_dir)  # kept for the next
    assert defer is None or held is not None, "a deferred commit needs a held lock"
    with lock:
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
        self.part = self.paths.part.rpartition("/")[2]  # basename (POSIX), a call less

    def locked(
        self,
        meta: ObjectMeta,
        config: DownloadConfig,
        listed: frozenset[str] | None,
        defer: list[Pending] | None = None,
    ) -> tuple[Verified, int, ObjectMeta]:
        """Under DEST's lock: leftovers removed, the object fetched (retried under the policy),
        the temp file renamed onto DEST if it is still the one written — or, with `defer`,
        left open and unsynced there for the caller. (checks passed, retries, what the
        object was)"""
        if listed is None or listed:  # (a directory that held nothing holds no leftovers)
            name = self.paths.dest.rpartition("/")[2]
            for suffix in _RANGED_SIDES:  # a ranged run's progress is not used here
                side = name + suffix
                if listed is None or side in listed:
                    unlink_at(self.dir_fd, side)
        stale = listed is None or self.part in listed

        keep = defer is not None

        def attempt(
            attempts: Attempts,
        ) -> tuple[Verified, tuple[int, int], ObjectMeta, int | None, int]:
            return (*self.attempt(meta, stale=stale, keep=keep), attempts.retries)

        verified, made, got, fd, retries = run_with_retry(attempt, policy=config.retry)
        if defer is not None:
            assert fd is not None
            defer.append(Pending(fd, self.paths.part, self.paths.dest, made, self.display))
            return verified, retries, got
        commit_part(
            self.paths.part, self.paths.dest, made, display=self.display, dir_fd=self.dir_fd
        )
        return verified, retries, got

    def attempt(
        self, meta: ObjectMeta, *, stale: bool, keep: bool = False
    ) -> tuple[Verified, tuple[int, int], ObjectMeta, int | None]:
        """One GET into a new temp file: (checks passed, the temp file's (device, inode), the
        object's meta — learned from the answer when `meta.size` was None, the temp file's
        descriptor or None). `keep`: not fsynced, and left open for the caller."""
        fd = _create(self.dir_fd, self.part, stale=stale)
        try:
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
                discard=lambda: None,  # the temp file goes below, with any other failure
            )  # fmt: skip
            if not keep:
                os.fsync(fd)
            made = file_id(fd)
        except BaseException:
            os.close(fd)
            unlink_at(self.dir_fd, self.part)
            raise
        if keep:
            return verified, made, meta, fd
        os.close(fd)
        return verified, made, meta, None

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
