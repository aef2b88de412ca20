"""The live record: what a run wrote since its last durable checkpoint, exact after a kill.

`DEST.objget-ckpt-live` is written as the workers write, with small `pwrite`s and no fsync.
A killed process leaves its written bytes in the kernel's page cache, so this record is exact
after a crash of the process, not after one of the machine. It holds *segments*: byte ranges
of the data file, each with the CRC of its bytes as they were written (computed by the worker
on the buffer it wrote, so no pass over the data is added; the store's CRC when it has one,
else CRC-64/XZ or CRC-32). A segment never grows past `SEGMENT` bytes (and one read), so
checking one costs little and a lost one costs little.

The file (version 3), written only by this run:

- page 0: its tag, one framed JSON record (`LiveTag` and the number of slots), written once;
- then one 32-byte *slot* per stream: the segment its worker is writing, rewritten by the
  worker itself after each `pwrite` of data, so the record never lags the data file (a loop
  that rewrote the record every 20 ms left up to 20 ms of writes out: 12 MiB at 600 MB/s);
- then the *log*: one 32-byte entry appended per finished segment (when a worker ends one), and
  at the start the segments the scheduler held since the last durable snapshot.

A slot or an entry is `start, stop, crc` (little-endian u64s) and the CRC-32 of those 24 bytes:
a torn one (a kill inside its write) fails that check and costs only its segment; a slot is
written after the data it describes and an entry before its slot is reused, so a kill at any
instant leaves every written segment described (`test_live_record`). Entries already covered
by a later durable checkpoint are skipped on reading, so nothing is ever rewritten in place.

A record is read only against the data file and durable checkpoint it was written for (its
`LiveTag`): the same run (a random nonce the durable checkpoint also carries; a fresh run
makes a new one), the same data file (device and inode number), the same boot of the kernel,
the same CRC. Then each segment is read back and kept only when its CRC matches, byte for byte
(`_recover`). A record of another format or version is ignored.

The writer (`LiveRecord`) writes nothing until a durable checkpoint naming the run is on
disk (`arm`) and the engine has opened it (`open`), and nothing once closed; every write and
the close hold one lock, so the saver thread closing it can never make a worker write to a
closed, or reused, descriptor.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from ._checkpoint import MAX_BYTES, CheckpointInvalid, frame, read_record, unframe
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
VERSION = 3  # 2: one JSON record rewritten by the engine's loop; 1: the checkpoint's format
SEGMENT = 4 * 1024 * 1024  # a worker starts a new segment after this many bytes
PAGE = 4096  # the tag's page; slots start on the next page boundary after it
ENTRY = 32  # one slot or log entry
_BODY = struct.Struct("<QQQ")  # start, stop, crc
_CHECK = struct.Struct("<I4x")  # CRC-32 of the body, padding
_U64 = 2**64 - 1
_MAX_INT = 2**63 - 1
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

Update = Callable[[int, memoryview], int]
Mark = tuple[int, int, int]  # start, stop, crc: a claim's `mark`


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
    # sorted by (start, stop), no two alike; each with its CRC. Two may overlap: a segment's
    # entry from the start of the record and its later, longer slot begin at the same byte.
    segments: tuple[Span, ...]


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


def _entry(start: int, stop: int, crc: int) -> bytes:
    body = _BODY.pack(start, stop, crc)
    return body + _CHECK.pack(zlib.crc32(body))


def _head(tag: LiveTag, slots: int) -> bytes:
    """Page 0 (and more pages, for an odd tag): the framed tag, zero-padded to a page."""
    text = frame(
        {
            "format": FORMAT,
            "version": VERSION,
            "run": tag.run,
            "boot": tag.boot,
            "device": tag.device,
            "inode": tag.inode,
            "crc": tag.crc,
            "slots": slots,
        }
    )
    return text + bytes(-len(text) % PAGE)


def encode_live(live: Live, *, slots: tuple[Span | None, ...] = ()) -> bytes:
    """A whole record: `slots` (None: an empty one), then `live`'s segments as log entries."""
    parts = [_head(live.tag, len(slots))]
    parts += [bytes(ENTRY) if s is None else _entry(s.start, s.stop, _crc(s)) for s in slots]
    parts += [_entry(s.start, s.stop, _crc(s)) for s in live.segments]
    return b"".join(parts)


def _crc(span: Span) -> int:
    if span.crc is None:
        raise ValueError("a live segment has a CRC")
    return span.crc


def _str(v: object, what: str) -> str:
    if not isinstance(v, str) or not v:
        raise CheckpointInvalid(f"bad {what}")
    return v


def _int(v: object, what: str, limit: int = _MAX_INT) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
        raise CheckpointInvalid(f"bad {what}")
    return v


def decode_live(data: bytes) -> Live:
    """Decode a live record: CheckpointInvalid when its tag is not exactly right (an older
    objget's record included); slots and entries that fail their check are left out."""
    if len(data) > MAX_BYTES:
        raise CheckpointInvalid("live record too large")
    end = data.find(b"\n", data.find(b"\n") + 1) + 1  # the tag's frame: JSON line, CRC line
    if end <= 0:
        raise CheckpointInvalid("not an objget live record (bad framing)")
    body = unframe(data[:end], FORMAT, VERSION)
    tag = LiveTag(
        run=_str(body.get("run"), "run"),
        boot=_str(body.get("boot"), "boot"),
        device=_int(body.get("device"), "device"),
        inode=_int(body.get("inode"), "inode"),
        crc=_str(body.get("crc"), "crc"),
    )
    _int(body.get("slots"), "slots", MAX_BYTES // ENTRY)
    first = end + -end % PAGE
    found: set[Span] = set()
    for at in range(first, len(data) - ENTRY + 1, ENTRY):
        start, stop, crc = _BODY.unpack_from(data, at)
        check = _CHECK.unpack_from(data, at + _BODY.size)[0]
        if start < stop <= _MAX_INT and check == zlib.crc32(data[at : at + _BODY.size]):
            found.add(Span(start, stop, crc))
    return Live(tag=tag, segments=tuple(sorted(found, key=lambda s: (s.start, s.stop))))


def load_live(path: str) -> Live | None:
    """The live record at `path`; None when there is none; CheckpointInvalid when unusable."""
    data = read_record(path)
    return None if data is None else decode_live(data)


class LiveRecord:
    """Writes the live record of one run, no fsync. The caller holds the destination's lock,
    so it is the only writer. `open` (the engine's loop), `publish` and `append` (workers)
    and `close` (any thread, e.g. the saver after a failed fdatasync) are serialised by one
    lock, and nothing is written after `close`. Without a tag (no boot id) nothing is ever
    written."""

    def __init__(self, path: str, tag: LiveTag | None) -> None:
        self._path = path
        self._tag = tag
        self._lock = threading.Lock()  # taken by every worker write: held for one pwrite
        self._fd: int | None = None
        self._slot0 = 0  # offset of slot 0
        self._slots = 0
        self._end = 0  # where the next log entry goes
        self._armed = False
        self._closed = tag is None

    @property
    def armed(self) -> bool:
        return self._armed

    @property
    def waiting(self) -> bool:
        """Armed and not open yet: `open` would write the record now."""
        return self._armed and self._fd is None and not self._closed

    def arm(self) -> None:
        """A durable checkpoint naming this run is on disk: the record may be opened now."""
        with self._lock:
            self._armed = True

    def open(self, segments: Callable[[], tuple[Span, ...]], *, slots: int) -> None:
        """Write the record (once armed, once): its tag, `slots` empty slots, and as log
        entries what `segments()` returns then (the segments since the durable snapshot and
        the marks of claims in flight). It is called under the lock, so a segment a worker
        finishes or writes after that call is written by its `append` or `publish`."""
        with self._lock:
            if self._closed or not self._armed or self._tag is None or self._fd is not None:
                return
            head = _head(self._tag, slots)
            log = [_entry(s.start, s.stop, s.crc) for s in segments() if s.crc is not None]
            data = b"".join([head, bytes(ENTRY * slots), *log])
            remove_quietly(self._path)  # an old record, or a planted symlink (not followed)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
            fd = os.open(self._path, flags, 0o600)
            try:
                pwrite_all(fd, memoryview(data), 0)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._slot0, self._slots, self._end = fd, len(head), slots, len(data)

    def publish(self, slot: int, mark: Mark) -> None:
        """Worker `slot` wrote `mark` = (start, stop, crc): its segment, as far as written."""
        entry = _entry(*mark)
        with self._lock:
            fd = self._fd
            if fd is not None and 0 <= slot < self._slots:
                os.pwrite(fd, entry, self._slot0 + slot * ENTRY)  # 32 bytes: never short

    def append(self, mark: Mark) -> None:
        """A worker ended the segment `mark`: a log entry, so its slot may be reused."""
        if mark[1] <= mark[0]:
            return
        entry = _entry(*mark)
        with self._lock:
            if self._fd is not None:
                os.pwrite(self._fd, entry, self._end)
                self._end += ENTRY

    def close(self, *, remove: bool) -> None:
        """Stop for good (later writes do nothing); `remove` deletes the record."""
        with self._lock:
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            if remove:
                remove_quietly(self._path)
