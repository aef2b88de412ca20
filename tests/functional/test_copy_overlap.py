"""One stream's read and write overlap (issue 16, HTTPS): the worker reads into one half of its
buffer while a writer thread `pwrite`s the other half's bytes, so decryption and the copy into
the page cache use two cores. The claim's mark (and the live record) still moves only over
bytes written, a failed write surfaces in the worker, and a resume is exact."""

from __future__ import annotations

import errno
import random
import threading
import time
from pathlib import Path

import pytest

import objget
from objget.engine import _copy as copy_mod
from objget.engine._checkpoint import load
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024


def config(**kw: object) -> objget.DownloadConfig:
    kw.setdefault("retry", no_wait_retry())
    kw.setdefault("min_workers", 1)
    kw.setdefault("max_workers", 1)
    return objget.DownloadConfig(**kw)  # type: ignore[arg-type]


class Watch:
    """Which reads overlapped a write: a write was in progress when the read began, or one
    began while it ran. Reads and writes each take 10 ms."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writing = 0
        self.writes = 0  # writes begun
        self.overlapped: list[bool] = []


class WatchedBackend(MemoryBackend):
    def __init__(self, objects: dict[str, bytes], watch: Watch) -> None:
        super().__init__(objects)
        self.watch = watch

    def get_range(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        body = super().get_range(*args, **kwargs)
        inner, w = body.readinto, self.watch

        def readinto(view):  # type: ignore[no-untyped-def]
            with w.lock:
                busy, begun = w.writing, w.writes
            time.sleep(0.01)
            n = inner(view)
            with w.lock:
                w.overlapped.append(bool(busy) or w.writes > begun)
            return n

        body.readinto = readinto
        return body


def test_one_stream_reads_its_next_bytes_while_a_write_is_in_progress(tmp_path, monkeypatch):
    """On a copy loop that reads and writes in series (one thread) no read overlaps a write;
    here every read but the first (nothing to write yet) does."""
    data = random.Random(1).randbytes(8 * MiB)
    watch = Watch()
    real = copy_mod.pwrite_all

    def pwrite_all(fd: int, chunk: memoryview, offset: int) -> None:
        with watch.lock:
            watch.writing += 1
            watch.writes += 1
        try:
            time.sleep(0.01)
            real(fd, chunk, offset)
        finally:
            with watch.lock:
                watch.writing -= 1

    monkeypatch.setattr(copy_mod, "pwrite_all", pwrite_all)
    with objget.Downloader(config=config(part_size=8 * MiB)) as dl:
        dl.download_object(WatchedBackend({"k": data}, watch), "k", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert len(watch.overlapped) >= 8  # reads of half the 1 MiB buffer
    assert not watch.overlapped[0] and all(watch.overlapped[1:]), watch.overlapped


def test_a_failed_write_ends_the_download_and_the_record_holds_only_bytes_written(
    tmp_path, monkeypatch
):
    """The third write fails (ENOSPC) in the writer thread while the worker has read on: the
    download fails with it, the checkpoint claims only the two writes before it, and a
    second run completes the file exactly."""
    data = random.Random(2).randbytes(8 * MiB)
    backend = MemoryBackend({"k": data})
    writes: list[tuple[int, int]] = []
    real = copy_mod.pwrite_all

    def pwrite_all(fd: int, chunk: memoryview, offset: int) -> None:
        if len(writes) == 2:
            writes.append((offset, -1))
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        real(fd, chunk, offset)
        writes.append((offset, offset + len(chunk)))

    monkeypatch.setattr(copy_mod, "pwrite_all", pwrite_all)
    dest = tmp_path / "out"
    cfg = config(part_size=8 * MiB, checkpoint_interval=0.01)
    with pytest.raises(OSError) as err, objget.Downloader(config=cfg) as dl:
        dl.download_object(backend, "k", dest)
    assert err.value.errno == errno.ENOSPC or isinstance(err.value.__cause__, OSError)
    assert len(writes) == 3, writes  # nothing written after the failure
    written = writes[1][1]
    ckpt = load(f"{dest}.objget-ckpt")
    if ckpt is not None:
        assert all(span.stop <= written for span in ckpt.spans), (ckpt.spans, writes)
    monkeypatch.setattr(copy_mod, "pwrite_all", real)
    with objget.Downloader(config=config(part_size=8 * MiB)) as dl:
        dl.download_object(backend, "k", dest)
    assert Path(dest).read_bytes() == data


def test_a_share_that_shrinks_mid_copy_waits_for_the_write_in_flight(tmp_path, monkeypatch):
    """The stream's share alternates between 1 MiB and 256 KiB (as when the controller adds
    and drops streams): a shrink gives back the pages beyond the new share, so it must wait
    for the write in flight, whose bytes may lie there (they would be written as zeros)."""
    from objget.engine import _buffers, _engine

    data = random.Random(3).randbytes(8 * MiB)
    calls = [0]

    def stream_share(cfg, n):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return MiB if calls[0] % 4 < 2 else 256 * 1024

    real_limit = _buffers.StreamBuffer.limit
    shrinks: list[int] = []

    def limit(self):  # type: ignore[no-untyped-def]
        high = self._high
        n = real_limit(self)
        if n < high:
            shrinks.append(n)
        return n

    real = copy_mod.pwrite_all

    def pwrite_all(fd: int, chunk: memoryview, offset: int) -> None:
        time.sleep(0.005)  # the worker reads on, and may change its share meanwhile
        real(fd, chunk, offset)

    monkeypatch.setattr(_engine, "stream_share", stream_share)
    monkeypatch.setattr(_buffers.StreamBuffer, "limit", limit)
    monkeypatch.setattr(copy_mod, "pwrite_all", pwrite_all)
    with objget.Downloader(config=config(part_size=8 * MiB)) as dl:
        dl.download_object(MemoryBackend({"k": data}), "k", tmp_path / "out")
    assert shrinks, "no share shrank"
    assert (tmp_path / "out").read_bytes() == data
