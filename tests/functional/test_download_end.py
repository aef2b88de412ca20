"""The end of a download waits for nothing it does not need.

- No durable checkpoint is started when the rest of the download is due sooner than the save
  would take: a save in progress when the last byte lands is waited for before the commit's
  fsync (its fdatasync, checkpoint write and directory fsync), and the commit makes it all
  durable moments later anyway (`Engine._ending`).
- The engine's loop ends as soon as its last worker has taken its last step, not a tick later
  when the thread is found dead (a worker wakes the loop just before its thread ends).
"""

from __future__ import annotations

import time

import pytest

import objget
from objget.engine import _checkpoint, _engine
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
SIZE = 32 * MiB
LAST = MiB // 2  # the last 512 KiB come after a pause
PAUSE = 0.6


class PausedBackend(MemoryBackend):
    """Serves the object at memory speed, but the read that reaches its last `last` bytes first
    waits PAUSE seconds (the loop ticks, and a save falls due, while only `last` bytes are left)."""

    def __init__(self, objects, last: int = LAST) -> None:
        super().__init__(objects)
        self.last = last

    def get_range(self, key, rng, *, meta):
        body = super().get_range(key, rng, meta=meta)
        start = rng.start if rng is not None else 0
        return _Paused(body, start, self.last)


class _Paused:
    def __init__(self, body, start: int, last: int) -> None:
        self._body, self._pos, self._paused, self._last = body, start, False, last
        self.status = body.status
        self.content_range = body.content_range
        self.content_length = body.content_length

    def readinto(self, buf: memoryview) -> int:
        if not self._paused and self._pos + len(buf) > SIZE - self._last:
            want = SIZE - self._last - self._pos
            if want > 0:
                n = self._body.readinto(buf[:want])
                self._pos += n
                return n
            self._paused = True
            time.sleep(PAUSE)
        n = self._body.readinto(buf)
        self._pos += n
        return n

    def close(self) -> None:
        self._body.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("last", [LAST, SIZE // 2], ids=["512KiB-left", "half-left"])
def test_no_durable_save_is_started_when_the_rest_is_due_sooner(tmp_path, monkeypatch, last):
    """With 512 KiB left, every save falling due in the pause is skipped, so none holds the
    bytes before the pause; with half the object left, the same pause gets its saves (the hook
    does see them)."""
    saved: list[int] = []
    real = _checkpoint.save

    def save(path, record):
        saved.append(sum(s.stop - s.start for s in record.spans))
        real(path, record)

    monkeypatch.setattr(_checkpoint, "save", save)
    data = bytes(range(256)) * (SIZE // 256)
    config = objget.DownloadConfig(
        retry=no_wait_retry(),
        max_workers=1,
        checkpoint_interval=0.2,  # a save falls due every 0.2 s, in the pause too
        checkpoint_bytes=8 * MiB,
    )
    dest = tmp_path / "out"
    with objget.Downloader(config=config) as dl:
        dl.download_object(PausedBackend({"k": data}, last), "k", dest)
    assert dest.read_bytes() == data
    if last == LAST:
        # A slow machine may tick, and save, in the fast part before the pause (by bytes or
        # by interval): those saves are fine. None may hold the pause's 31.5 MiB.
        late = [s for s in saved if s >= SIZE - LAST]
        assert late == [], f"saves with only the last {LAST} bytes left: {saved}"
    else:
        assert SIZE - last in saved, saved  # saved in the pause


@pytest.mark.timeout(60)
def test_the_loop_ends_when_its_last_worker_has_ended_not_when_its_thread_is_dead(
    tmp_path, monkeypatch
):
    """Each worker thread lingers 0.2 s after its last step, and the loop's tick is 5 s: the
    download still ends in well under a tick (the join waits for the linger only)."""
    monkeypatch.setattr(_engine, "TICK", 5.0)
    real = _engine.Engine._worker

    def worker(self, index):
        real(self, index)
        time.sleep(0.2)  # alive, but past its last step (the loop was woken by now)

    monkeypatch.setattr(_engine.Engine, "_worker", worker)
    data = bytes(range(256)) * (4 * MiB // 256)
    config = objget.DownloadConfig(retry=no_wait_retry(), max_workers=1)
    dest = tmp_path / "out"
    t0 = time.monotonic()
    with objget.Downloader(config=config) as dl:
        dl.download_object(MemoryBackend({"k": data}), "k", dest)
    assert dest.read_bytes() == data
    assert time.monotonic() - t0 < 2.5, "the loop waited a whole tick after the last worker"
