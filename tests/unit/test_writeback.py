"""Write-back started beside the download (objget.engine._writeback)."""

from __future__ import annotations

import os
import random
import sys

import pytest

import objget
from objget.engine import _writeback
from objget.engine._writeback import MIN_WINDOW, WINDOW, WriteBehind
from objget.testing import Fault, MemoryBackend, no_wait_retry

MiB = 1024 * 1024


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, int]] = []

    def __call__(self, fd: int, offset: int, length: int, flags: int) -> int:
        self.calls.append((fd, offset, length, flags))
        return 0


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(_writeback, "_load", lambda: rec)
    return rec


def download(tmp_path, data: bytes, faults=(), **cfg) -> bytes:
    cfg.setdefault("retry", no_wait_retry())
    cfg.setdefault("buffer_size", 64 * 1024)
    dest = tmp_path / "out"
    with objget.Downloader(config=objget.DownloadConfig(**cfg)) as dl:
        dl.download_object(MemoryBackend({"k": data}, faults=faults), "k", dest)
    return dest.read_bytes()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reset", [False, True], ids=["", "reset"])
@pytest.mark.parametrize("workers", [1, 4])
def test_every_byte_a_worker_writes_has_its_write_back_started_once(
    tmp_path, recorder, workers, reset
):
    """Full windows, and each claim's rest as soon as its last byte is written (or its read
    failed: the retry starts new windows): the final fsync waits for no byte whose write-back
    was never started (the last claims of a download are smaller than a window)."""
    size = 24 * MiB + 12_345
    data = random.Random(workers).randbytes(size)
    faults = [Fault.reset_after(MiB + 4321)] if reset else []
    got = download(tmp_path, data, faults, max_workers=workers, min_workers=workers)
    assert got == data
    window = max(MIN_WINDOW, min(WINDOW, size // 8))
    ranges = sorted((off, off + n) for _, off, n, _ in recorder.calls)
    assert ranges, "no write-back was started"
    assert {flags for *_, flags in recorder.calls} == {2}  # SYNC_FILE_RANGE_WRITE only
    for (_, b), (c, _) in zip(ranges, ranges[1:], strict=False):
        assert b <= c  # each byte's write-back is started at most once
    assert all(0 <= a < b <= size and b - a <= window + 64 * 1024 for a, b in ranges)
    assert sum(b - a for a, b in ranges) == size  # every byte, the last claims' too


def test_small_or_unknown_objects_and_no_libc_call_keep_the_plain_path(tmp_path, monkeypatch):
    assert WriteBehind.open(0, None) is None
    assert WriteBehind.open(0, 2 * MIN_WINDOW - 1) is None
    monkeypatch.setattr(_writeback, "_load", lambda: None)
    assert WriteBehind.open(0, 1 << 30) is None
    data = random.Random(3).randbytes(8 * MiB)
    assert download(tmp_path, data) == data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_libc_sync_file_range_is_found_and_starts_write_back(tmp_path, monkeypatch):
    from objget.engine import _libc

    monkeypatch.setattr(_libc, "_libc", {})  # loaded afresh
    sync = _writeback._load()
    assert sync is not None
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"x" * (4 * MiB), 0)
        wb = WriteBehind.open(fd, 4 * MiB)
        assert wb is not None and wb.window == MIN_WINDOW
        wb.start(0, 4 * MiB)  # returns without error on a regular file
        assert sync(fd, 0, 4 * MiB, 2) == 0
        assert sync(-1, 0, 1, 2) == -1  # a bad fd fails, and start() does not raise on it
        WriteBehind(-1, sync).start(0, 1)
    finally:
        os.close(fd)
