"""The live record: what a run wrote since its last durable checkpoint, exact after a kill.

`DEST.objget-ckpt-live` is rewritten a few dozen times a second with one `pwrite`, no fsync.
A killed process leaves its written bytes in the kernel's page cache, so this record is exact
after a crash of the process, not after one of the machine. It holds *segments*: byte ranges
of the data file written since the durable checkpoint's snapshot, each with the CRC of its
bytes as they were written (computed by the worker on the buffer it wrote, so no pass over the
data is added; the store's CRC when it has one, else CRC-64/XZ or CRC-32). A segment never
grows past `SEGMENT` bytes, so checking one costs little and a lost one costs little.

A record is read only against the data file and durable checkpoint it was written for (its
`LiveTag`): the same run (a random nonce the durable checkpoint also carries; a fresh run
makes a new one), the same data file (device and inode number), the same boot of the kernel,
the same CRC. Then each segment is read back and kept only when its CRC matches, byte for byte
(`_recover`). A record of another format or version is ignored.

The writer (`LiveRecord`) writes nothing until a durable checkpoint naming the run is on
disk (`arm`), and nothing once closed; its write and close hold one lock, so the saver thread
closing it can never make the loop thread write to a closed, or reused, descriptor.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from ._checkpoint import CheckpointInvalid, frame, parse_spans, read_record, unframe
from ._fileio import pwrite_all, remove_quietly
from ._plan import Span

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ..backends._base import Checksummer

__all__ = [
    "SEGMENT",
    "Live",
    "LiveRecord",
    "LiveTag",
    "Update",
    "boot_id",
    "decode_live",
    "encode_live",
    "load_live",
    "new_run",
    "segment_crc",
    "tag_for",
]

FORMAT = "objget-live"
VERSION = 2  # version 1 was the durable checkpoint's format with `boot` and `pending` fields
SEGMENT = 4 * 1024 * 1024  # a worker starts a new segment after this many bytes
_MAX_INT = 2**63 - 1
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

Update = Callable[[int, memoryview], int]


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveTag:
    """What one live record is valid for (see the module doc)."""

    run: str
    boot: str
    device: int
    inode: int
    crc: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Live:
    tag: LiveTag
    segments: tuple[Span, ...]  # sorted, may touch, never overlap; each with its CRC


def new_run() -> str:
    """A fresh run id: 128 random bits."""
    return os.urandom(16).hex()  # secrets.token_hex(16), without importing hmac and OpenSSL


def boot_id() -> str | None:
    """This boot of the kernel (Linux's boot id); None where there is none. (Read as bytes:
    a text file's "ascii" codec is one more module to import at start.)"""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip().decode("ascii") or None
    except OSError:
        return None


def tag_for(fd: int, *, run: str, crc: str) -> LiveTag | None:
    """The tag of the data file open at `fd` in this boot; None without a boot id."""
    boot = boot_id()
    if boot is None:
        return None
    st = os.fstat(fd)
    return LiveTag(run=run, boot=boot, device=st.st_dev, inode=st.st_ino, crc=crc)


def _zlib_crc32(crc: int, data: memoryview) -> int:
    return zlib.crc32(data, crc)


def segment_crc(checksummer: Checksummer | None) -> tuple[str, Update]:
    """The CRC of live segments, named: the store's own when it has one (the engine computes it
    anyway), else CRC-64/XZ when fastcrc is installed (about 7 GB/s), else zlib's CRC-32."""
    if checksummer is not None:
        return checksummer.name, checksummer.update
    try:
        from fastcrc import crc64
    except ImportError:
        return "crc32", _zlib_crc32
    xz: Callable[[memoryview, int], int] = crc64.xz

    def _xz(crc: int, data: memoryview) -> int:
        return xz(data, crc)

    return "crc64xz", _xz


def encode_live(live: Live) -> bytes:
    t = live.tag
    return frame(
        {
            "format": FORMAT,
            "version": VERSION,
            "run": t.run,
            "boot": t.boot,
            "device": t.device,
            "inode": t.inode,
            "crc": t.crc,
            "segments": [[s.start, s.stop, s.crc] for s in live.segments],
        }
    )


def _str(v: object, what: str) -> str:
    if not isinstance(v, str) or not v:
        raise CheckpointInvalid(f"bad {what}")
    return v


def _int(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _MAX_INT:
        raise CheckpointInvalid(f"bad {what}")
    return v


def decode_live(data: bytes) -> Live:
    """Decode and validate a live record; CheckpointInvalid for anything not exactly right
    (an older objget's record included)."""
    body = unframe(data, FORMAT, VERSION)
    tag = LiveTag(
        run=_str(body.get("run"), "run"),
        boot=_str(body.get("boot"), "boot"),
        device=_int(body.get("device"), "device"),
        inode=_int(body.get("inode"), "inode"),
        crc=_str(body.get("crc"), "crc"),
    )
    segments = parse_spans(body.get("segments"), _MAX_INT, "segments", touch=True, crc=True)
    return Live(tag=tag, segments=segments)


def load_live(path: str) -> Live | None:
    """The live record at `path`; None when there is none; CheckpointInvalid when unusable."""
    data = read_record(path)
    return None if data is None else decode_live(data)


class LiveRecord:
    """Writes the live record of one run: one pwrite per save, no fsync. The caller holds the
    destination's lock, so it is the only writer; `write` (loop thread) and `close` (any
    thread, e.g. the saver after a failed fdatasync) are serialised by one lock, and nothing
    is written after `close`. Without a tag (no boot id) nothing is ever written."""

    def __init__(self, path: str, tag: LiveTag | None) -> None:
        self._path = path
        self._tag = tag
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._armed = False
        self._closed = tag is None

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self) -> None:
        """A durable checkpoint naming this run is on disk: records may be written now."""
        with self._lock:
            self._armed = True

    def write(self, segments: tuple[Span, ...]) -> None:
        with self._lock:
            if self._closed or not self._armed or self._tag is None:
                return
            data = encode_live(Live(tag=self._tag, segments=segments))
            if self._fd is None:
                remove_quietly(self._path)  # an old record, or a planted symlink (not followed)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
                self._fd = os.open(self._path, flags, 0o600)
            pwrite_all(self._fd, memoryview(data), 0)
            if len(data) < self._size:  # a kill right before this leaves an undecodable record
                os.ftruncate(self._fd, len(data))
            self._size = len(data)

    def close(self, *, remove: bool) -> None:
        """Stop for good (later writes do nothing); `remove` deletes the record."""
        with self._lock:
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            if remove:
                remove_quietly(self._path)
