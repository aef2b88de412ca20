"""Each stream's read buffer: the streams of one download share a budget of twice `buffer_size`
(1 MiB each for up to two streams, 512 KiB for four, 256 KiB for eight or more), looked
up before every read, so a download's memory stays flat as streams are added (issue 16); the
buffer is an anonymous mapping whose pages beyond a shrunk share are given back."""

import mmap
import random
import threading

import objget
from objget._config import MIN_SHARE, SHARE_STEP, stream_share
from objget.engine._buffers import StreamBuffer
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
KiB = 1024


def test_the_streams_share_twice_the_buffer_size():
    cfg = objget.DownloadConfig()
    assert cfg.buffer_size == MiB
    shares = {n: stream_share(cfg, n) for n in (1, 2, 3, 4, 5, 8, 16, 32, 256)}
    assert shares == {1: MiB, 2: MiB, 3: 640 * KiB, 4: 512 * KiB, 5: 384 * KiB,
                      8: 256 * KiB, 16: 256 * KiB, 32: 256 * KiB, 256: 256 * KiB}  # fmt: skip
    for n in range(1, 64):  # the budget holds down to the floor
        assert n * stream_share(cfg, n) <= 2 * MiB or stream_share(cfg, n) == MIN_SHARE


def test_a_share_below_the_buffer_size_is_a_whole_number_of_pages():
    for size in (16 * KiB, 100 * KiB, 1000 * KiB, 3 * MiB + 7):
        cfg = objget.DownloadConfig(buffer_size=size)
        for n in range(1, 40):
            share = stream_share(cfg, n)
            assert share <= size
            assert share == size or share % SHARE_STEP == 0 == SHARE_STEP % mmap.PAGESIZE


def _resident(buf: StreamBuffer) -> int:
    """Bytes of the buffer resident now (mincore: one byte per page, bit 0 = resident)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    start = ctypes.addressof(ctypes.c_char.from_buffer(buf.view))
    pages = len(buf.view) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert libc.mincore(start, len(buf.view), vec) == 0, ctypes.get_errno()
    return sum(v & 1 for v in vec) * mmap.PAGESIZE


def test_a_buffer_is_resident_only_where_reads_wrote_and_gives_back_a_shrunk_share():
    share = [MiB]
    buf = StreamBuffer(MiB, lambda: share[0])
    try:
        assert _resident(buf) == 0  # not zero-filled when made (a bytearray would be)
        n = buf.limit()
        buf.view[:n] = b"\x01" * n  # a read filling its share
        assert _resident(buf) == MiB
        share[0] = 256 * KiB  # more streams now
        assert buf.limit() == 256 * KiB
        assert _resident(buf) == 256 * KiB  # the tail's pages went back
        assert bytes(buf.view[: 256 * KiB]) == b"\x01" * (256 * KiB)  # the share's kept
    finally:
        buf.close()


class _Recording(MemoryBackend):
    """Answers no request until `streams` threads have asked (at most 10 s), so that every
    stream runs; records the size of every read."""

    def __init__(self, streams: int, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self._streams, self._askers, self._open = streams, set[int](), threading.Event()
        self.reads: list[int] = []

    def get_range(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._lock:
            self._askers.add(threading.get_ident())
            if len(self._askers) >= self._streams:
                self._open.set()
        self._open.wait(10)
        body = super().get_range(*args, **kwargs)
        inner = body.readinto

        def readinto(view):  # type: ignore[no-untyped-def]
            with self._lock:
                self.reads.append(len(view))
            return inner(view)

        body.readinto = readinto
        return body


def test_the_engines_workers_read_at_most_their_share(tmp_path):
    data = random.Random(3).randbytes(24 * MiB)
    backend = _Recording(6, {"k": data})
    cfg = objget.DownloadConfig(retry=no_wait_retry(), part_size=MiB, min_workers=6, max_workers=6)
    with objget.Downloader(config=cfg) as dl:
        result = dl.download_object(backend, "k", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert result.workers == 6
    assert backend.reads and max(backend.reads) <= stream_share(cfg, 6) == 320 * KiB


def test_a_rate_limit_is_charged_for_the_bytes_read_not_for_a_whole_buffer(tmp_path, monkeypatch):
    """With a limit, a read asks the limiter for its size first: that size is the stream's
    share, so 8 streams reading 256 KiB each are charged 256 KiB per read, not the limiter's
    chunk of 1 MiB (which would slow the download to a quarter of its limit)."""
    from objget.engine import _throttle

    taken: list[int] = []
    real_take = _throttle.RateLimiter.take

    def take(self, n, cancelled=lambda: False, wait=None):  # type: ignore[no-untyped-def]
        taken.append(n)
        return real_take(self, n, cancelled, wait)

    monkeypatch.setattr(_throttle.RateLimiter, "take", take)
    data = random.Random(5).randbytes(24 * MiB)
    backend = _Recording(8, {"k": data})
    cfg = objget.DownloadConfig(
        retry=no_wait_retry(), part_size=MiB, min_workers=8, max_workers=8,
        limit_rate=4 * 1024 * MiB,  # chunk 1 MiB; fast enough to wait for nothing here
    )  # fmt: skip
    with objget.Downloader(config=cfg) as dl:
        result = dl.download_object(backend, "k", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert result.workers == 8
    assert max(backend.reads) <= stream_share(cfg, 8) == 256 * KiB
    assert sum(taken) == len(data)  # what was charged is what was read
