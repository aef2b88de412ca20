"""The engine feeds the stream controller the process's CPU time with each observation, and
the controller knows the cores this process may use (issue 16, HTTPS: a CPU-bound path)."""

import os
import random
import time

import objget
from objget.engine import _engine
from objget.engine._concurrency import StreamController
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024


def test_every_observation_carries_the_process_cpu_time(tmp_path, monkeypatch):
    seen: list[tuple[float | None, float]] = []
    cores: list[float] = []

    class Recording(StreamController):
        def __init__(self, settings, *, now):
            cores.append(settings.cores)
            super().__init__(settings, now=now)

        def observe(self, now, total_bytes, cpu=None):
            seen.append((cpu, time.process_time()))
            return super().observe(now, total_bytes, cpu)

    monkeypatch.setattr(_engine, "StreamController", Recording)
    data = random.Random(5).randbytes(8 * MiB)
    cfg = objget.DownloadConfig(retry=no_wait_retry(), part_size=MiB)
    with objget.Downloader(config=cfg) as dl:
        dl.download_object(MemoryBackend({"k": data}), "k", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert cores == [getattr(os, "process_cpu_count", os.cpu_count)()]
    assert seen
    fed = [cpu for cpu, _ in seen]
    assert all(cpu is not None and 0 < cpu <= after for cpu, after in seen)
    assert fed == sorted(fed)  # type: ignore[type-var]
