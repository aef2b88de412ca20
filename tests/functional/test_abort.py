"""The abort path (the engine's stop after a final error or a Ctrl-C): whatever the responses'
abort() does, the error that ended the download is the one raised, every worker has ended
before the data file is closed, no byte is written once the download has returned, and the
saver thread is released (no thread of objget's outlives the call)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

import objget
import objget.engine._copy as copy_mod
import objget.engine._engine as engine_mod
import objget.engine._phases as phases_mod
from objget._exceptions import AccessDenied, TransportError
from objget.engine._checkpoint import load
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
DATA = os.urandom(8 * MiB)
STUCK = 2  # bodies that hang in a read before the third request is refused

pytestmark = [pytest.mark.interrupt, pytest.mark.timeout(60)]


class StuckBody:
    """A body whose first read hangs like a stalled socket until `release` is set (or, with
    `stall`, raises the stall error a read timeout gives after that many seconds); then it
    serves its bytes. `abort()` raises `abort_error` (AttributeError: as on urllib3 < 2.3,
    whose response had no shutdown()), or with None does nothing: a read nothing can break."""

    def __init__(self, inner, *, entered, release, stall, abort_error):
        self.status, self.content_range = inner.status, inner.content_range
        self.content_length = inner.content_length
        self._inner, self._entered, self._release = inner, entered, release
        self._stall, self._abort_error = stall, abort_error
        self._first = True

    def readinto(self, buf, /):
        if self._first:
            self._first = False
            self._entered.release()
            if not self._release.wait(self._stall):
                raise TransportError("no data (a scripted stall)")
        return self._inner.readinto(buf)

    def abort(self):
        if self._abort_error is not None:
            raise self._abort_error("'HTTPResponse' object has no attribute 'shutdown'")

    def close(self):
        self._inner.close()


class StuckStore(MemoryBackend):
    """The first STUCK requests get a StuckBody; the next one, made once they all hang in
    their read, is refused with 403 (a final error); any later one is served normally."""

    def __init__(self, *, stall: float, abort_error: type[BaseException] | None):
        super().__init__({"k": DATA})
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self._stall, self._abort_error = stall, abort_error
        self._count = 0
        self._count_lock = threading.Lock()

    def get_range(self, key, rng, *, meta):
        with self._count_lock:
            self._count += 1
            n = self._count
        if n == STUCK + 1:
            for _ in range(STUCK):
                assert self.entered.acquire(timeout=10), "the stuck reads never started"
            raise AccessDenied("memory://k: denied (HTTP 403, scripted)", status=403)
        body = super().get_range(key, rng, meta=meta)
        if n > STUCK:
            return body
        return StuckBody(
            body,
            entered=self.entered,
            release=self.release,
            stall=self._stall,
            abort_error=self._abort_error,
        )


def objget_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("objget-")]


@pytest.fixture
def engines(monkeypatch) -> Iterator[list[engine_mod.Engine]]:
    """The engines the test made; afterwards any thread they left is released and joined,
    so a regression fails the test instead of hanging the interpreter's exit."""
    made: list[engine_mod.Engine] = []
    real_init = engine_mod.Engine.__init__

    def init(self, **kw):
        real_init(self, **kw)
        made.append(self)

    monkeypatch.setattr(engine_mod.Engine, "__init__", init)
    yield made
    for eng in made:
        eng._cancel.set()
        eng._saver._due.set()
    for t in threading.enumerate():
        if t.name.startswith("objget-"):
            t.join(timeout=15)


@pytest.fixture
def part_fd_closes(monkeypatch) -> list[list[str]]:
    """For each close of the data file's descriptor: objget's threads alive at that moment."""
    fds: list[int] = []
    seen: list[list[str]] = []
    real_open, real_close = phases_mod.open_part, os.close

    def open_part(path, *, fresh):
        fds.append(real_open(path, fresh=fresh))
        return fds[-1]

    def close(fd):
        if fd in fds:
            fds.remove(fd)
            seen.append([n for n in objget_threads() if n.startswith("objget-worker")])
        real_close(fd)

    monkeypatch.setattr(phases_mod, "open_part", open_part)
    monkeypatch.setattr(os, "close", close)
    return seen


def download(store, dest, **cfg):
    config = objget.DownloadConfig(
        retry=no_wait_retry(),
        part_size=1 * MiB,
        buffer_size=64 * 1024,
        min_workers=STUCK + 1,
        max_workers=STUCK + 1,
        timeouts=objget.Timeouts(read=cfg.pop("read", 1.0)),
        **cfg,
    )
    with objget.Downloader(config=config) as dl:
        return dl.download_object(store, "k", dest)


def test_an_abort_that_raises_masks_nothing_and_every_worker_ends_first(
    tmp_path, engines, part_fd_closes, caplog
):
    store = StuckStore(stall=1.0, abort_error=AttributeError)
    with pytest.raises(AccessDenied, match="403"):
        download(store, tmp_path / "out")
    assert any("could not abort 2 response(s)" in r.getMessage() for r in caplog.records)
    assert part_fd_closes == [[]], "the data file was closed while workers were still running"
    assert objget_threads() == [], "a worker or the saver outlived the download"
    ckpt = load(str(tmp_path / "out.objget-ckpt"))
    assert ckpt is not None and ckpt.spans == ()  # the stuck reads wrote nothing
    assert not (tmp_path / "out").exists()


def test_a_worker_that_outlives_the_stop_writes_nothing(tmp_path, engines, monkeypatch):
    """A read neither the abort nor a timeout ends: the stop gives up waiting for it after
    read timeout + STOP_GRACE, and once the download has returned that worker, when its read
    finally returns, writes no byte (the descriptor may belong to another file by then)."""
    monkeypatch.setattr(engine_mod.Engine, "STOP_GRACE", 0.5, raising=False)
    late: list[int] = []
    returned = threading.Event()
    real_pwrite = copy_mod.pwrite_all

    def pwrite_all(fd, data, offset):
        if returned.is_set():
            late.append(offset)
        real_pwrite(fd, data, offset)

    monkeypatch.setattr(copy_mod, "pwrite_all", pwrite_all)
    store = StuckStore(stall=30.0, abort_error=None)
    with pytest.raises(AccessDenied, match="403"):
        download(store, tmp_path / "out", read=0.5)
    returned.set()
    assert objget_threads().count("objget-saver") == 0, "the saver outlived the download"
    store.release.set()  # the stuck reads return their bytes now
    for t in threading.enumerate():
        if t.name.startswith("objget-worker"):
            t.join(timeout=10)
    assert late == [], f"bytes written after the download returned, at offsets {late}"
    assert objget_threads() == []


def test_a_second_ctrl_c_during_the_stop_still_bars_writes_and_saves(
    tmp_path, engines, monkeypatch
):
    """A KeyboardInterrupt while the stop aborts the responses (a second Ctrl-C) ends the
    wait for the workers, but the write gate still closes, the saver is still released, the
    checkpoint is still saved, and the KeyboardInterrupt is what the caller gets."""
    late: list[int] = []
    returned = threading.Event()
    real_pwrite = copy_mod.pwrite_all

    def pwrite_all(fd, data, offset):
        if returned.is_set():
            late.append(offset)
        real_pwrite(fd, data, offset)

    monkeypatch.setattr(copy_mod, "pwrite_all", pwrite_all)
    store = StuckStore(stall=30.0, abort_error=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        download(store, tmp_path / "out")
    returned.set()
    assert objget_threads().count("objget-saver") == 0, "the saver outlived the download"
    ckpt = load(str(tmp_path / "out.objget-ckpt"))
    assert ckpt is not None and ckpt.spans == ()
    store.release.set()
    for t in threading.enumerate():
        if t.name.startswith("objget-worker"):
            t.join(timeout=10)
    assert late == [], f"bytes written after the download returned, at offsets {late}"
    assert objget_threads() == []
