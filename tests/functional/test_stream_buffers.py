"""Each stream's read buffer: the whole `buffer_size` (1 MiB by default) for the first few
streams, where a larger buffer costs less CPU per byte, at most 256 KiB for the others, so
that many capped streams do not multiply memory (issue 16)."""

import random
import threading

import objget
from objget._config import BIG_BUFFER_STREAMS, small_buffer, stream_buffer
from objget.engine import _engine
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
KiB = 1024


def test_the_default_buffer_is_one_mib_for_the_first_streams_only():
    cfg = objget.DownloadConfig()
    assert cfg.buffer_size == MiB
    assert [stream_buffer(cfg, i) for i in range(6)] == [MiB] * 4 + [256 * KiB] * 2
    assert small_buffer(cfg) == 256 * KiB


def test_a_smaller_buffer_is_every_streams_buffer():
    cfg = objget.DownloadConfig(buffer_size=64 * KiB)
    assert {stream_buffer(cfg, i) for i in range(32)} == {64 * KiB} == {small_buffer(cfg)}


class _AllStreamsOpen(MemoryBackend):
    """Answers no request until `streams` threads have asked (at most 10 s): from memory the
    first four streams could fetch everything before the engine starts the fifth."""

    def __init__(self, streams: int, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self._streams, self._askers, self._open = streams, set[int](), threading.Event()

    def get_range(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._lock:
            self._askers.add(threading.get_ident())
            if len(self._askers) >= self._streams:
                self._open.set()
        self._open.wait(10)
        return super().get_range(*args, **kwargs)


def test_the_engines_workers_read_into_their_streams_buffer(tmp_path, monkeypatch):
    sizes: dict[int, int] = {}
    lock = threading.Lock()

    def recording(config, index):
        size = stream_buffer(config, index)
        with lock:
            sizes[index] = size
        return size

    monkeypatch.setattr(_engine, "stream_buffer", recording)
    data = random.Random(3).randbytes(24 * MiB)
    cfg = objget.DownloadConfig(retry=no_wait_retry(), part_size=MiB, min_workers=6, max_workers=6)
    with objget.Downloader(config=cfg) as dl:
        dl.download_object(_AllStreamsOpen(6, {"k": data}), "k", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert sizes and all(
        size == (MiB if i < BIG_BUFFER_STREAMS else 256 * KiB) for i, size in sizes.items()
    )
    assert max(sizes) >= BIG_BUFFER_STREAMS  # streams beyond the first few ran too
