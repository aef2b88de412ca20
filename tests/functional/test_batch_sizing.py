"""The batch runner sizes how many small objects it fetches at once by measurement: a store
where each request waits (a latency-bound path) gets the whole budget, one that answers at
once (loopback) a few workers. Against the in-memory store, real threads and time."""

from __future__ import annotations

import threading
import time

from objget import DownloadConfig, Downloader
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

KiB = 1024


class WatchedStore(MemoryBackend):
    """Records (seconds since the first GET, requests open) at each GET, and the worker
    threads that asked."""

    def __init__(self, objects, **kw):
        super().__init__(objects, **kw)
        self.open = 0
        self.seen: list[tuple[float, int]] = []
        self.threads: set[int] = set()
        self._start: float | None = None
        self._watch = threading.Lock()

    def get_range(self, key, rng, *, meta):
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
        results = Runner(dl, str(tmp_path), jr).run(plan, {}, skipped=0)
    assert [r.status for r in results] == ["downloaded"] * len(objects)
    for key, data in objects.items():
        assert (tmp_path / key).read_bytes() == data


def test_a_latency_bound_batch_starts_low_and_climbs_to_the_budget(tmp_path):
    objects = {f"o{i:04d}": bytes([i % 251]) * KiB for i in range(1000)}
    store = WatchedStore(objects, read_delay=0.1)  # every request waits 100 ms
    run_batch(tmp_path, store, objects)
    assert max(n for t, n in store.seen if t < 0.2) <= 8  # it started with a few
    assert max(n for _, n in store.seen) == 32  # and climbed to the plateau
    later = sorted(n for t, n in store.seen if 1.0 < t < 2.5)
    assert later[len(later) // 2] >= 28  # where it stayed


def test_a_batch_the_cores_limit_stays_at_a_few_workers(tmp_path):
    objects = {f"o{i:04d}": bytes([i % 251]) * (64 * KiB) for i in range(1500)}
    store = WatchedStore(objects)  # answers at once: the 2 cores are the limit
    run_batch(tmp_path, store, objects)
    assert len(store.threads) <= 16  # 8, and double that tried; not the budget of 32
