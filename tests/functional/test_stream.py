"""Streaming to a descriptor (the CLI's `-`) against the in-memory store: order, faults,
verification, and nothing written beside anything."""

import os
import random
import threading
import time

import pytest

import objget
from objget.engine._stream import StreamDownload
from objget.integrity.crc64 import Crc64, crc64
from objget.testing import Fault, MemoryBackend, no_wait_retry

MiB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


class Pipe:
    """A pipe whose read end is drained by a thread (slowly with `pause`)."""

    def __init__(self, pause: float = 0.0):
        self.r, self.w = os.pipe()
        self.data = bytearray()
        self._pause = pause
        self._t = threading.Thread(target=self._run)
        self._t.start()

    def _run(self):
        while chunk := os.read(self.r, 1 << 16):
            self.data += chunk
            if self._pause:
                time.sleep(self._pause)
        os.close(self.r)

    def close(self) -> bytes:
        os.close(self.w)
        self._t.join(timeout=60)
        return bytes(self.data)


def stream(backend, *, key="k", window=2 * MiB, **cfg):
    cfg.setdefault("retry", no_wait_retry())
    cfg.setdefault("part_size", 256 * 1024)
    cfg.setdefault("buffer_size", 64 * 1024)
    cfg.setdefault("min_workers", 4)
    cfg.setdefault("max_workers", 8)
    pipe = Pipe(pause=cfg.pop("pause", 0.0))
    with objget.Downloader(config=objget.DownloadConfig(**cfg)) as dl:
        job = StreamDownload(dl, pipe.w, window=window)
        try:
            result = job.run_object(backend, key)
        finally:
            out = pipe.close()
    return result, out, job


@pytest.mark.parametrize("size", [0, 1, 65_537, 5 * MiB + 3])
def test_sizes_in_order_with_the_crc(tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)
    data = payload(size)
    be = MemoryBackend({"k": data}, checksummer=Crc64(expected=crc64(data)))
    res, out, job = stream(be)
    assert out == data
    assert res.path == "-" and res.size == size and res.bytes_fetched == size
    assert res.verified == (("size", "crc64ecma") if size else ("size",))
    assert job.peak_buffered <= 2 * MiB
    assert os.listdir(tmp_path) == []


def test_many_streams_and_a_slow_reader_stay_in_the_window():
    data = payload(12 * MiB)
    be = MemoryBackend({"k": data})
    res, out, job = stream(be, window=1 * MiB, min_workers=8, pause=0.0005)
    assert out == data
    assert res.workers > 1
    assert 0 < job.peak_buffered <= 1 * MiB


def test_resets_and_errors_are_retried_without_a_byte_twice():
    data = payload(3 * MiB)
    faults = [
        Fault.reset_after(1000),
        Fault.status_error(503, retry_after=0.01),
        Fault.short_body(70_000),
        Fault.reset_after(0),
    ]
    be = MemoryBackend({"k": data}, faults=faults, checksummer=Crc64(expected=crc64(data)))
    res, out, _ = stream(be)
    assert out == data
    assert res.retries >= 4


def test_a_server_without_ranges_restarts_from_zero_and_sends_nothing_twice():
    data = payload(2 * MiB)
    be = MemoryBackend({"k": data}, ranges=False, faults=[Fault.reset_after(300_000)])
    res, out, _ = stream(be)
    assert out == data
    assert res.retries == 1 and res.workers == 1


def test_a_crc_mismatch_says_the_sent_bytes_are_bad():
    data = payload(1 * MiB)
    be = MemoryBackend({"k": data}, checksummer=Crc64(expected=crc64(data) ^ 1))
    with pytest.raises(objget.IntegrityError, match=r"1048576 bytes already written to stdout"):
        stream(be)


def test_a_sha256_mismatch_is_found_in_stream_order():
    data = payload(1 * MiB + 5)
    be = MemoryBackend({"k": data})
    with pytest.raises(objget.IntegrityError) as info:
        stream(be, checksum="sha256:" + "0" * 64)
    assert info.value.algorithm == "sha256"
    import hashlib

    res, out, _ = stream(be, checksum="sha256:" + hashlib.sha256(data).hexdigest())
    assert out == data and res.verified == ("size", "sha256")


def test_an_object_changed_midway_fails_and_reports_what_was_sent():
    data = payload(4 * MiB)
    be = MemoryBackend({"k": data})
    pipe = Pipe(pause=0.005)  # a slow reader: the window fills, the rest waits
    config = objget.DownloadConfig(
        retry=no_wait_retry(), part_size=256 * 1024, buffer_size=16 * 1024, max_workers=2
    )
    with objget.Downloader(config=config) as dl:
        job = StreamDownload(dl, pipe.w, window=1 * MiB)
        timer = threading.Timer(0.1, be.replace, args=("k", payload(4 * MiB, seed=2)))
        timer.start()
        try:
            with pytest.raises(objget.ObjectChanged):
                job.run_object(be, "k")
        finally:
            timer.cancel()
            out = pipe.close()
    assert 0 < job.sent < len(data)
    assert out == data[: job.sent]


def test_a_sha256_is_checked_on_an_empty_object_too():
    be = MemoryBackend({"k": b""})
    with pytest.raises(objget.IntegrityError):
        stream(be, checksum="sha256:" + "0" * 64)
    import hashlib

    res, out, _ = stream(be, checksum="sha256:" + hashlib.sha256(b"").hexdigest())
    assert out == b"" and res.verified == ("size", "sha256")
