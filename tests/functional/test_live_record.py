"""The live record against real runs of the Downloader: after a kill, what the killed run wrote
is kept, and nothing else is (issue 14 item 5).

A "kill" here is a frozen run: the backend serves `allow` bytes, then every read waits. The
files beside DEST at that moment are what a SIGKILL leaves (a kill keeps the page cache, and
reading a file reads the page cache). The test copies them, lets the frozen run die, and puts
the copies back, the data file in place (same inode), before the next run.
"""

from __future__ import annotations

import os
import random
import threading
import time
import zlib
from pathlib import Path

import pytest

import objget
from objget.engine._checkpoint import Paths, load
from objget.integrity._gf2 import CrcCombiner
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
SIZE = MiB
WRITTEN = 300_000  # bytes the first run writes before it is killed (not page aligned)
PAGE = 4096


class Killed(Exception):
    """The frozen run is ended (as if by SIGKILL)."""


class Crc32:
    """A store CRC (zlib's CRC-32) with combine, like S3's `x-amz-checksum-crc32`."""

    name = "crc32"
    _combiner = CrcCombiner(0xEDB88320, 32)

    def __init__(self, expected: int) -> None:
        self.expected = expected

    def update(self, crc: int, data: memoryview) -> int:
        return zlib.crc32(data, crc)

    def combine(self, a: int, b: int, len_b: int) -> int:
        return self._combiner.combine(a, b, len_b)


class FrozenBackend(MemoryBackend):
    """Serves nothing until the run's first checkpoint is on disk (so the durable record claims
    no byte), then `allow` bytes in all; then every read waits until `kill()` and fails."""

    def __init__(self, objects, *, allow: int, checkpoint: str, **kw) -> None:
        super().__init__(objects, **kw)
        self._left = allow
        self._checkpoint = checkpoint
        self._budget = threading.Lock()
        self.frozen = threading.Event()
        self.killed = threading.Event()

    def get_range(self, key, rng, *, meta):
        return _FrozenBody(super().get_range(key, rng, meta=meta), self)

    def take(self, n: int) -> int:
        deadline = time.monotonic() + 10
        while not os.path.exists(self._checkpoint) and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._budget:
            n = min(n, self._left)
            self._left -= n
            return n

    def give_back(self, n: int) -> None:
        with self._budget:
            self._left += n


class _FrozenBody:
    def __init__(self, body, gate: FrozenBackend) -> None:
        self._body = body
        self._gate = gate
        self.status = body.status
        self.content_range = body.content_range
        self.content_length = body.content_length

    def readinto(self, buf: memoryview) -> int:
        n = self._gate.take(len(buf))
        if n == 0:
            self._gate.frozen.set()
            self._gate.killed.wait(30)
            raise Killed
        got = self._body.readinto(buf[:n])
        self._gate.give_back(n - got)
        return got

    def abort(self) -> None:
        self._gate.killed.set()

    def close(self) -> None:
        self._body.close()


def payload(size: int, seed: int = 7) -> bytes:
    data = bytearray(random.Random(seed).randbytes(size))
    return bytes(b or 1 for b in data)  # no zero byte: a zero on disk is never data


def config(**cfg) -> objget.DownloadConfig:
    cfg.setdefault("retry", no_wait_retry())
    cfg.setdefault("part_size", MiB)
    cfg.setdefault("buffer_size", 64 * 1024)
    cfg.setdefault("min_workers", 1)
    cfg.setdefault("max_workers", 1)
    # the first periodic save (a fresh run saves none at its start) comes before any byte
    # (FrozenBackend waits for it); `first_save_only` keeps it the only durable one
    cfg.setdefault("checkpoint_interval", 0.05)
    return objget.DownloadConfig(**cfg)


@pytest.fixture(autouse=True)
def first_save_only(monkeypatch):
    """Each run's durable saver saves once, then does nothing: the killed run's durable record
    claims no byte (as when it is killed within a second of its first save), so what it wrote
    is in the live record only."""
    from objget.engine import _phases

    class FirstSaveOnly(_phases.DurableSaver):
        __slots__ = ("_done",)

        def __call__(self) -> None:
            if not getattr(self, "_done", False):
                self._done = True
                super().__call__()

    monkeypatch.setattr(_phases, "DurableSaver", FirstSaveOnly)


def run(backend, dest: Path, **cfg) -> objget.DownloadResult:
    with objget.Downloader(config=config(**cfg)) as dl:
        return dl.download_object(backend, "k", dest)


def killed_run(
    dest: Path, data: bytes, allow: int, cfg: dict | None = None, **kw
) -> dict[str, bytes]:
    """Run until frozen after `allow` bytes; the files beside `dest` as a SIGKILL leaves them."""
    paths = Paths.beside(str(dest))
    backend = FrozenBackend({"k": data}, allow=allow, checkpoint=paths.checkpoint, **kw)
    ended: list[BaseException] = []

    def target() -> None:
        try:
            run(backend, dest, **(cfg or {}))
        except BaseException as exc:  # Killed, as planned
            ended.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        assert backend.frozen.wait(30), "the run never froze"
        deadline = time.monotonic() + 10
        wanted = (paths.checkpoint, paths.live) if allow else (paths.checkpoint,)
        while not all(os.path.exists(p) for p in wanted):
            assert time.monotonic() < deadline, f"no {wanted}"
            time.sleep(0.01)
        settle(paths.live, time.monotonic() + 10)  # caught up with the written bytes
        files = (paths.part, paths.checkpoint, paths.live)
        image = {p: Path(p).read_bytes() for p in files if os.path.exists(p)}
    finally:
        backend.killed.set()
        thread.join(30)
    assert not thread.is_alive()
    assert len(ended) == 1 and isinstance(ended[0], Killed), ended
    return image


def longest(segments):
    """The segments no other one extends: a record may also hold an entry for the first bytes
    of a segment (written when the record was opened), and its slot the rest."""
    return [
        s for s in segments if not any(o.start == s.start and o.stop > s.stop for o in segments)
    ]


def settle(path: str, deadline: float) -> None:
    """Wait until the file at `path` stays the same for ten ticks (0.2 s) of the run."""
    last = None
    while time.monotonic() < deadline:
        now = Path(path).read_bytes() if os.path.exists(path) else None
        if now == last:
            return
        last = now
        time.sleep(0.2)
    raise AssertionError(f"{path} never settled")


def restore(image: dict[str, bytes]) -> None:
    """Put the files back; the data file in place, so it keeps its inode."""
    for path, content in image.items():
        if path.endswith(".objget-part"):
            with open(path, "r+b") as f:
                f.write(content)
                f.truncate()
        else:
            Path(path).write_bytes(content)


def damage(part: str, at: int, stop: int, fill: bytes | None) -> None:
    """Zeros (`fill` None) or other bytes over `[at, stop)` of the data file."""
    with open(part, "r+b") as f:
        f.seek(at)
        old = f.read(stop - at)
        f.seek(at)
        f.write(bytes(stop - at) if fill is None else bytes(b ^ fill[0] for b in old))


def test_a_killed_run_resumes_from_its_live_record(tmp_path):
    data = payload(SIZE)
    dest = tmp_path / "out"
    restore(killed_run(dest, data, WRITTEN))
    assert load(f"{dest}.objget-ckpt").spans == ()  # the durable record has nothing
    res = run(MemoryBackend({"k": data}), dest)
    assert dest.read_bytes() == data
    assert res.bytes_resumed == WRITTEN and res.bytes_fetched == SIZE - WRITTEN


def test_the_live_record_holds_short_segments_with_the_crc_of_their_bytes(tmp_path):
    from objget.engine._live import SEGMENT, load_live

    data = payload(3 * SEGMENT)
    dest = tmp_path / "out"
    allow = 2 * SEGMENT + 12_345
    image = killed_run(
        dest, data, allow, {"part_size": 3 * SEGMENT}, checksummer=Crc32(zlib.crc32(data))
    )
    restore(image)
    live = load_live(f"{dest}.objget-ckpt-live")
    assert live is not None and live.tag.crc == "crc32"  # the store's CRC
    assert [(s.start, s.stop) for s in longest(live.segments)] == [
        (0, SEGMENT),
        (SEGMENT, 2 * SEGMENT),
        (2 * SEGMENT, allow),
    ]
    assert all(s.crc == zlib.crc32(data[s.start : s.stop]) for s in live.segments)


# Page 70 of the data file is [286720, 290816), inside what the killed run wrote.
DAMAGE = {
    "partly written page": (70 * PAGE + 100, 71 * PAGE, None),  # its first 100 bytes only
    "zero page": (70 * PAGE, 71 * PAGE, None),
    "other bytes": (70 * PAGE + 1234, 70 * PAGE + 1250, b"\xa5"),
    "one other byte, page aligned": (64 * PAGE, 64 * PAGE + 1, b"\x01"),
}


@pytest.mark.parametrize("store_crc", [False, True], ids=["no store CRC", "store CRC"])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_live_bytes_that_do_not_read_back_as_written_are_fetched_again(tmp_path, kind, store_crc):
    data = payload(SIZE)
    crc = {"checksummer": Crc32(zlib.crc32(data))} if store_crc else {}
    dest = tmp_path / "out"
    restore(killed_run(dest, data, WRITTEN, **crc))
    damage(f"{dest}.objget-part", *DAMAGE[kind])
    res = run(MemoryBackend({"k": data}, **crc), dest)
    assert dest.read_bytes() == data
    assert res.bytes_resumed + res.bytes_fetched == SIZE


def test_a_fresh_run_does_not_trust_an_earlier_runs_live_record(tmp_path):
    """Run 1 is killed (its checkpoint is lost); run 2 starts fresh on a new, preallocated data
    file, writes 100 bytes after its first checkpoint and is killed before its first live
    record; run 1's live record is still there. Run 3 must not believe it."""
    data = payload(SIZE)
    dest = tmp_path / "out"
    paths = Paths.beside(str(dest))
    first = killed_run(dest, data, WRITTEN)
    for p in (paths.part, paths.checkpoint, paths.live):
        Path(p).unlink(missing_ok=True)  # the killed run's checkpoint is lost
    second = killed_run(dest, data, 0)
    second[paths.live] = first[paths.live]
    restore(second)
    with open(paths.part, "r+b") as f:
        f.write(data[:100])  # written after run 2's checkpoint, before its live record
    res = run(MemoryBackend({"k": data}), dest)
    assert dest.read_bytes() == data
    assert res.bytes_fetched == SIZE


def test_a_fresh_start_removes_an_earlier_live_record(tmp_path):
    """A run with no checkpoint to resume from starts fresh: an earlier run's live record goes
    at once, not at this run's first live write (which a kill may prevent)."""
    data = payload(SIZE)
    dest = tmp_path / "out"
    paths = Paths.beside(str(dest))
    planted = Path(paths.live)
    planted.write_bytes(b"an earlier run's live record\n")
    image = killed_run(dest, data, 0)
    assert image.get(paths.live) != b"an earlier run's live record\n"


def test_a_fifo_planted_at_the_data_file_does_not_hang_the_resume(tmp_path):
    data = payload(SIZE)
    dest = tmp_path / "out"
    paths = Paths.beside(str(dest))
    restore(killed_run(dest, data, WRITTEN))
    os.unlink(paths.part)
    os.mkfifo(paths.part)
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(run(MemoryBackend({"k": data}), dest))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    hung = thread.is_alive()
    if hung:  # a writer arriving ends a blocked open, so the thread can end
        with open(os.open(paths.part, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
        thread.join(20)
    assert not hung, "the resume hung on the FIFO"
    assert len(outcome) == 1 and isinstance(outcome[0], objget.DownloadResult), outcome
    assert outcome[0].restarted is not None and "not a regular file" in outcome[0].restarted
    assert dest.read_bytes() == data


class SlowLastCrc32(Crc32):
    """Crc32 whose update of a short buffer (the frozen run's last read) takes 0.3 s: the
    main loop ticks (every 20 ms) between the bytes' reservation and their record."""

    def update(self, crc: int, data: memoryview) -> int:
        if len(data) % (64 * 1024):
            time.sleep(0.3)
        return super().update(crc, data)


def test_the_live_record_follows_writes_not_reservations(tmp_path):
    """A write that finishes after the tick which saw its bytes reserved is still recorded
    (on a frozen stream nothing is reserved again to trigger a later rewrite)."""
    from objget.engine._live import SEGMENT, load_live

    data = payload(3 * SEGMENT)
    dest = tmp_path / "out"
    allow = 2 * SEGMENT + 12_345
    image = killed_run(
        dest, data, allow, {"part_size": 3 * SEGMENT}, checksummer=SlowLastCrc32(zlib.crc32(data))
    )
    restore(image)
    live = load_live(f"{dest}.objget-ckpt-live")
    assert live is not None
    assert [(s.start, s.stop) for s in longest(live.segments)][-1] == (2 * SEGMENT, allow)
    assert all(s.crc == zlib.crc32(data[s.start : s.stop]) for s in live.segments)
