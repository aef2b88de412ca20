"""Sync-like re-runs: a destination's modification time is its object's Last-Modified.

After every download objget gives the file the object's Last-Modified as its mtime (as
`aws s3 sync`, rclone and `wget -N` do), on the temp file before the durable rename: the rename
is the commit, so a destination never exists with the download's own time, and a crash before
the rename leaves no destination at all. `up_to_date` is the one rule `skip_existing` uses, for
single downloads and batches alike: the destination is a regular file with the object's size and
an mtime equal, to the second, to the object's Last-Modified (HTTP dates have whole seconds).
"""

from __future__ import annotations

import os
import stat
import time

from .._config import DownloadConfig
from .._log import log
from .._models import DownloadResult, ObjectMeta

__all__ = ["file_sha256", "remote_seconds", "skip_existing", "stamp", "up_to_date"]

_DAYS = ("Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_NS = 1_000_000_000


def remote_seconds(last_modified: str | None) -> int | None:
    """Epoch seconds of a Last-Modified value: an HTTP date (IMF-fixdate, RFC 850 or asctime,
    as HEAD answers) or ISO 8601 (as S3/OSS listings write it). None when absent or unreadable."""
    if not last_modified or not last_modified.strip():
        return None
    text = last_modified.strip()
    if fields := _fixdate(text):  # what servers send: no `datetime`, no `email`, no regex
        return _utc_seconds(*fields)
    from datetime import datetime, timezone  # ISO 8601 (listings) and the older HTTP forms

    try:
        if text[:4].isdigit() and "-" in text[:8]:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        else:
            from email.utils import parsedate_to_datetime  # RFC 850, asctime and the like

            when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; asctime carries no zone
        when = when.replace(tzinfo=timezone.utc)
    try:
        return int(when.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def _fixdate(text: str) -> tuple[int, int, int, int, int, int] | None:
    """Year, month, day, hour, minute, second of an IMF-fixdate (RFC 9110: "Sun, 06 Nov 1994
    08:49:37 GMT", ASCII digits); None for any other text (then the other forms are tried)."""
    words = text.split(" ")
    if len(words) != 6 or words[0] not in _DAYS or words[2] not in _MONTHS or words[5] != "GMT":
        return None
    day, year, clock = words[1], words[3], words[4]
    digits = day + year + clock[0:2] + clock[3:5] + clock[6:]
    if len(day) != 2 or len(year) != 4 or len(clock) != 8 or clock[2::3] != "::":
        return None
    if not (digits.isascii() and digits.isdigit()):
        return None
    month = _MONTHS.index(words[2]) + 1
    return int(year), month, int(day), int(clock[0:2]), int(clock[3:5]), int(clock[6:])


def _utc_seconds(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> int | None:
    """Epoch seconds of a UTC date and time; None for one that `datetime` would refuse (year
    0, the 30th of February, 24:00, a leap second). Days from the civil date as in H.
    Hinnant's `days_from_civil`: years counted from March, so the leap day ends a year."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days_in = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    if year < 1 or not 1 <= day <= days_in or hh > 23 or mm > 59 or ss > 59:
        return None
    y = year - (month <= 2)
    era, yoe = divmod(y, 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + hh) * 60 + mm) * 60 + ss


def stamp(fd: int, last_modified: str | None) -> bool:
    """Set the open file's mtime to `last_modified` (its atime to now); False when there is no
    usable Last-Modified, or the filesystem refuses to set times (then the mtime stays the
    download's own and a later `skip_existing` downloads again: the time is a convenience,
    never a reason to fail a verified download). The caller's fsync makes it durable."""
    secs = remote_seconds(last_modified)
    if secs is None:
        return False
    try:
        os.utime(fd, ns=(time.time_ns(), secs * _NS))
    except OSError as exc:
        log.warning("could not set the file's time to the object's Last-Modified: %s", exc)
        return False
    return True


def up_to_date(
    dest: str, *, size: int | None, last_modified: str | None, sha256: str | None = None
) -> bool:
    """True when `dest` already holds the object as far as a sync can tell without reading
    it: a regular file (a symlink is not followed) with the object's size and, to the second,
    its Last-Modified as mtime. An object of unknown size or date is never up to date. With
    `sha256` (hex: `--checksum`, a manifest's sha256) the file is also read and must match:
    a skip never weakens a check that was asked for."""
    secs = remote_seconds(last_modified)
    if size is None or secs is None:
        return False
    try:
        st = os.lstat(dest)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    same = st.st_size == size and st.st_mtime_ns // _NS == secs
    if not same:
        log.debug(
            "%s exists but differs (size %d vs %d, mtime %d vs %d): downloading",
            dest, st.st_size, size, st.st_mtime_ns // _NS, secs,
        )  # fmt: skip
        return False
    if sha256 is not None and _readable_sha256(dest) != sha256.lower():
        log.info("%s has the object's size and date but not its SHA-256: downloading", dest)
        return False
    return True


def file_sha256(path: str) -> str:
    """The SHA-256 (hex) of the file at `path`, read without following a symlink (OSError when
    it cannot be read): what a skipped file is checked against when a checksum was asked for."""
    import hashlib  # here, not at import: OpenSSL loads only when a skip is checked

    digest = hashlib.sha256()
    buf = memoryview(bytearray(1024 * 1024))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(buf[:n])
    return digest.hexdigest()


def _readable_sha256(path: str) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def skip_existing(
    dest: str, source: str, meta: ObjectMeta, started: float, config: DownloadConfig
) -> DownloadResult | None:
    """With `config.skip_existing`, the result of a download found already done (nothing is
    fetched); None when `dest` must be downloaded. `started` is the download's
    `time.monotonic()` start; the config's `checksum` is checked on the existing file too."""
    if not config.skip_existing:
        return None
    sha256 = config.checksum.partition(":")[2] if config.checksum else None
    if not up_to_date(dest, size=meta.size, last_modified=meta.last_modified, sha256=sha256):
        return None
    log.info("%s: %s is up to date (same size and Last-Modified): skipped", source, dest)
    return DownloadResult(
        path=dest,
        source=source,
        size=meta.size or 0,
        etag=meta.etag,
        version_id=meta.version_id,
        verified=("sha256",) if sha256 else (),
        checksums={"sha256": sha256.lower()} if sha256 else {},
        bytes_fetched=0,
        bytes_resumed=0,
        elapsed=time.monotonic() - started,
        retries=0,
        resumable=meta.accept_ranges,
        workers=0,
        skipped=True,
    )
