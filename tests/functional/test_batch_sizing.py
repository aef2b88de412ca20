"""The batch runner sizes how many small objects it fetches at once by measurement: a store
where each request waits (a latency-bound path) gets the whole budget, one that serves a
fixed number of requests a second however many ask (a saturated path, as loopback on two
busy cores) a few workers. Against the in-memory store, real threads and time."""

from __future__ import annotations

import logging
import re
import threading
import time

from objget import DownloadConfig, Downloader
from objget.many._batch_chunks import START
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

KiB = 1024
CHANGE = re.compile(r"small objects at once (\d+) -> (\d+)")


class WatchedStore(MemoryBackend):
    """Records (seconds since the first GET, requests open) at each GET, and the worker
    threads that asked."""

    def __init__(self, objects, *, serial: float = 0.0, **kw):
        super().__init__(objects, **kw)
        self.serial = serial  # each GET holds the store this long, one at a time
        self._one = threading.Lock()
        self.open = 0
        self.seen: list[tuple[float, int]] = []
        self.threads: set[int] = set()
        self._start: float | None = None
        self._watch = threading.Lock()

    def get_range(self, key, rng, *, meta):
        if self.serial:
            with self._one:
                time.sleep(self.serial)
        body = super().get_range(key, rng, meta=meta)
        with self._watch:
            now = time.monotonic()
            self._start = now if self._start is None else self._start
            self.open += 1
            self.seen.append((now - self._start, self.open))
            self.threads.add(threading.get_ident())
        close = body.close

        def closed():
            with self._watch:
                self.open -= 1
            close()

        body.close = closed
        return body


def run_batch(tmp_path, store, objects):
    plan = [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                etag=store._etags[k])
        for k, v in objects.items()
    ]  # fmt: skip
    cfg = DownloadConfig(max_workers=32, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        results = Runner(dl, str(tmp_path), jr).run(plan, {})
    assert [r.status for r in results] == ["downloaded"] * len(objects)
    for key, data in objects.items():
        assert (tmp_path / key).read_bytes() == data


def test_a_latency_bound_batch_starts_low_and_climbs_to_the_budget(tmp_path):
    objects = {f"o{i:04d}": bytes([i % 251]) * KiB for i in range(1000)}
    store = WatchedStore(objects, read_delay=0.1)  # every request waits 100 ms
    run_batch(tmp_path, store, objects)
    assert max(n for t, n in store.seen if t < 0.2) <= 16  # it started with half
    assert max(n for _, n in store.seen) == 32  # and climbed to the plateau
    later = sorted(n for t, n in store.seen if 1.0 < t < 2.5)
    assert later[len(later) // 2] >= 28  # where it stayed


def test_a_saturated_batch_ends_with_a_few_workers(tmp_path, caplog):
    objects = {f"o{i:04d}": bytes([i % 251]) * KiB for i in range(2000)}
    store = WatchedStore(objects, serial=0.001)  # 1,000 GETs a second, however many ask
    with caplog.at_level(logging.DEBUG, logger="objget"):
        run_batch(tmp_path, store, objects)
    counts = [int(m[2]) for r in caplog.records if (m := CHANGE.match(r.getMessage()))]
    assert counts[0] == 32  # double the start tried ...
    # ... and fewer than the start kept: as good, as the store serves no more however many ask
    # (8 on a quiet machine; the exact count moves with other load, 12 seen with two busy cores)
    assert counts[-1] < START
