"""The batch runner sizes how many small objects it fetches at once by measurement: a store
where each request waits (a latency-bound path) gets the whole budget, one that serves a
fixed number of requests a second however many ask (a saturated path) a few workers. Against
the in-memory store, real threads and time.

What the machine itself manages must not decide the outcome (these tests run beside others
on two busy cores): the latency-bound store makes each request wait 100 ms (10 objects a
second a worker, far under the leap's 50, however slow the machine), and the saturated store
is a token bucket of 150 requests a second, which a loaded machine still exceeds; its leap
threshold is scaled to it (5 a worker, 150 / 16 = 9 at the start: no leap). fsync is a
no-op here: the disk, shared with every other process, would otherwise be what is measured.
The exact paths of the decisions are the controller's unit test (tests/unit/
test_batch_sizing.py, a model clock); here, what the runner does with them, wide margins."""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import pytest

from objget import DownloadConfig, Downloader
from objget.many import _batch_chunks
from objget.many._batch_chunks import START
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

KiB = 1024
CHANGE = re.compile(r"small objects at once (\d+) -> (\d+)")


class WatchedStore(MemoryBackend):
    """Records (time, requests open) at each GET and the worker threads that asked;
    `per_second`: serves at most that many GETs a second, however many ask."""

    def __init__(self, objects, *, per_second: float = 0.0, **kw):
        super().__init__(objects, **kw)
        self.gap = 1 / per_second if per_second else 0.0  # GETs are paced this far apart
        self._next = 0.0  # ... the next one may start then
        self._one = threading.Lock()
        self.open = 0
        self.seen: list[tuple[float, int]] = []  # (time.time(), requests open)
        self.threads: set[int] = set()
        self._watch = threading.Lock()

    def get_range(self, key, rng, *, meta):
        if self.gap:  # a token bucket without burst: at most 1 / gap GETs a second
            with self._one:
                now = time.monotonic()
                at = self._next = max(now, self._next) + self.gap
            time.sleep(max(0.0, at - self.gap - now))
        body = super().get_range(key, rng, meta=meta)
        with self._watch:
            self.open += 1
            self.seen.append((time.time(), self.open))
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


@pytest.fixture(autouse=True)
def no_disk_wait(monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)


def changes(caplog) -> list[tuple[float, int]]:
    """(time, new count) of each change of the count of small objects at once."""
    found = [(r.created, CHANGE.match(r.getMessage())) for r in caplog.records]
    return [(t, int(m[2])) for t, m in found if m is not None]


def test_a_latency_bound_batch_starts_low_and_climbs_to_the_budget(tmp_path, caplog):
    objects = {f"o{i:04d}": bytes([i % 251]) * KiB for i in range(1000)}
    store = WatchedStore(objects, read_delay=0.1)  # every request waits 100 ms
    with caplog.at_level(logging.DEBUG, logger="objget"):
        run_batch(tmp_path, store, objects)
    steps = changes(caplog)
    assert steps and steps[0][1] == 32  # it leapt from the start to the budget
    assert max(n for t, n in store.seen if t < steps[0][0]) <= START  # half of it until then
    assert len(store.threads) >= 28 and max(n for _, n in store.seen) >= 28  # and used it
    assert min(n for _, n in steps) >= START  # never below the start: the path is slow


def test_a_saturated_batch_ends_with_a_few_workers(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(_batch_chunks, "LATENCY_BOUND", 5.0)  # scaled to the store's rate
    objects = {f"o{i:04d}": bytes([i % 251]) * KiB for i in range(800)}
    store = WatchedStore(objects, per_second=150)  # 150 GETs a second, however many ask
    with caplog.at_level(logging.DEBUG, logger="objget"):
        run_batch(tmp_path, store, objects)
    counts = [n for _, n in changes(caplog)]
    assert counts[0] == 32  # double the start tried ...
    assert counts[-1] < START  # ... and fewer than the start kept: as good (8 here)
