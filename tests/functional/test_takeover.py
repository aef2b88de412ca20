"""A stream that got its first bytes and then went silent (a capped server pacing a request in
lumps, or a stall) does not hold the end of a download: an idle worker takes its remainder over
whole once nothing is left to split, and the silent read is broken so its worker moves on."""

from __future__ import annotations

import os
import threading
import time

import pytest

import objget
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
DATA = os.urandom(8 * MiB)
PAUSE = 20.0  # how long the paced read waits when nothing breaks it

pytestmark = pytest.mark.timeout(60)


class PacedBody:
    """Serves one read at once, then its next read waits (like nginx `limit_rate` between two
    lumps) until `abort()` breaks it (then it returns 0, as a socket shut for reading does),
    or PAUSE seconds pass (then it serves the rest)."""

    def __init__(self, inner):
        self.status, self.content_range = inner.status, inner.content_range
        self.content_length = inner.content_length
        self._inner, self._reads = inner, 0
        self.broken = threading.Event()

    def readinto(self, buf, /):
        self._reads += 1
        if self._reads == 2 and self.broken.wait(PAUSE):
            return 0
        return self._inner.readinto(buf)

    def abort(self):
        self.broken.set()

    def close(self):
        self._inner.close()


class PacedStore(MemoryBackend):
    """The first GET is paced; every later one is served at once."""

    def __init__(self):
        super().__init__({"k": DATA})
        self.paced: list[PacedBody] = []

    def get_range(self, key, rng, *, meta):
        body = super().get_range(key, rng, meta=meta)
        if self.paced:
            return body
        self.paced.append(PacedBody(body))
        return self.paced[0]


def test_a_silent_stream_is_taken_over_and_the_download_ends_without_it(tmp_path):
    store = PacedStore()
    config = objget.DownloadConfig(
        retry=no_wait_retry(), buffer_size=256 * 1024, min_workers=2, max_workers=2
    )
    dest = tmp_path / "out"
    started = time.monotonic()
    with objget.Downloader(config=config) as dl:
        result = dl.download_object(store, "k", dest)
    took = time.monotonic() - started
    assert dest.read_bytes() == DATA
    assert took < PAUSE / 4, f"the download waited {took:.1f} s for the paced stream"
    assert store.paced[0].broken.is_set()  # its read was broken, not left to end on its own
    assert result.retries == 0  # a takeover is no failure
    assert result.bytes_fetched == len(DATA)  # no byte was fetched twice into the file
    assert not [t for t in threading.enumerate() if t.name.startswith("objget-")]


@pytest.mark.parametrize("limit", [None, 64 * MiB])
def test_no_takeover_under_a_rate_limit(tmp_path, monkeypatch, limit):
    """Streams waiting for the rate limiter's tokens are silent by design, not stalled."""
    import objget.engine._scheduler as scheduler_mod

    made = []
    real_init = scheduler_mod.Scheduler.__init__

    def init(self, *args, **kw):
        real_init(self, *args, **kw)
        made.append(self)

    monkeypatch.setattr(scheduler_mod.Scheduler, "__init__", init)
    config = objget.DownloadConfig(retry=no_wait_retry(), limit_rate=limit)
    with objget.Downloader(config=config) as dl:
        dl.download_object(MemoryBackend({"k": DATA}), "k", tmp_path / "o")
    assert [s.stale for s in made] == [float("inf") if limit else 0.1]
