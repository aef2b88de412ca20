"""What the batch's small-object path costs per object and per chunk, and that the cheaper
ways keep the guards: DEST's lock file is the temp file (one file made per object, no lock
handed on or removed besides), the source's display name not made again."""

from __future__ import annotations

import os

import pytest

from objget.engine import _checkpoint as ck
from objget.engine import _lock_temp
from objget.many._batch_journal import Journal, Row
from objget.many._batch_sources import Planned

from .test_batch_small_guards import HookedStore, run_batch


def test_one_file_is_made_per_small_object_and_no_lock_is_taken_besides(tmp_path, monkeypatch):
    """Each small object makes one file, its DEST.objget-lock, which is renamed onto DEST;
    no `DestLock` is taken and no `.objget-part` made, and nothing is left after the run."""
    made: list[str] = []
    real_create = _lock_temp.create_locked

    def counting_create(dir_fd, name, flags, **kw):
        made.append(name)
        return real_create(dir_fd, name, flags, **kw)

    acquired: list[str] = []
    real_acquire = ck.DestLock.acquire

    def counting_acquire(self):
        if self._name.endswith(".objget-lock"):  # not the journal's lock
            acquired.append(self._name)
        return real_acquire(self)

    import objget.engine._single as single

    monkeypatch.setattr(single, "create_locked", counting_create)
    monkeypatch.setattr(ck.DestLock, "acquire", counting_acquire)
    objs = {f"d/o{i:03d}": bytes([i]) * 100 for i in range(40)}
    by, rows = run_batch(tmp_path, HookedStore(objs), objs, budget=2)
    assert all(r.status == "downloaded" for r in by.values())
    assert all(r.state == "done" for r in rows.values())
    assert sorted(made) == [f"{k.removeprefix('d/')}.objget-lock" for k in sorted(objs)]
    assert acquired == []
    assert sorted(os.listdir(tmp_path / "d")) == sorted(k.removeprefix("d/") for k in objs)


def test_a_lock_a_killed_run_left_beside_a_done_object_is_removed_by_the_next(tmp_path):
    """A lock file beside an object journaled done (a killed single download's, or what a
    batch before the lock file was the temp file left): the next run, which skips the
    object, removes the lock (not one another run holds)."""
    from objget.engine._dirs import ParentMaker
    from objget.many._batch_skip import classify

    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "b").write_bytes(b"abc")
    (tmp_path / "a.objget-lock").write_bytes(b"123\n")
    other = ck.DestLock(str(tmp_path / "b.objget-lock"), dest="b")
    other.acquire()
    try:
        with Journal(str(tmp_path)) as jr:
            for rel in ("a", "b"):
                jr.put([Row(dest=rel, source=f"mem://{rel}", state="done", size=3, etag='"e"')])
            plan = [
                Planned(source=f"mem://{rel}", rel=rel, backend=None, key=rel, size=3,  # type: ignore[arg-type]
                        etag='"e"')
                for rel in ("a", "b")
            ]  # fmt: skip
            todo, skipped = classify(plan, jr.rows(), str(tmp_path), jr, ParentMaker(str(tmp_path)))
        assert todo == [] and len(skipped) == 2
        assert not (tmp_path / "a.objget-lock").exists()
        assert (tmp_path / "b.objget-lock").exists()  # held by the other run: left alone
    finally:
        other.release(remove=True)


def test_the_small_path_does_not_make_the_display_name_again(tmp_path, monkeypatch):
    """The listing made each object's display name (`Planned.source`); the single-request
    mode uses it instead of asking the backend per object (for HTTP a URL parse)."""
    objs = {f"d/o{i}": bytes([i]) * 100 for i in range(6)}
    store = HookedStore(objs)
    asked: list[str] = []
    real = type(store).display

    def counting(self, key):
        asked.append(key)
        return real(self, key)

    monkeypatch.setattr(type(store), "display", counting)
    by, _ = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert all(r.result is not None and r.result.source == f"mem://{k}" for k, r in by.items())
    assert asked == []


class _HeadFirst:
    """A body whose first `head` bytes came with the answer's head (`take_buffered`, as
    objget's HTTP client hands them over), the rest read from the 'socket'."""

    def __init__(self, body, head: int) -> None:
        self._body = body
        self._first = bytearray(head)
        self._first_len = body.readinto(memoryview(self._first))

    def __getattr__(self, name):
        return getattr(self._body, name)

    def take_buffered(self, limit: int) -> memoryview:
        n, self._first_len = min(limit, self._first_len), 0
        return memoryview(self._first)[:n]

    def readinto(self, buf, /):
        return self._body.readinto(buf)


@pytest.mark.parametrize(
    ("size", "head", "writes"),
    [(65536, 3696, 1), (65536, 65536, 1), (5000, 5000, 1), (600_000, 3696, 3)],
    ids=["head-then-rest", "all-with-the-head", "tiny", "larger-than-buf"],
)
def test_a_small_object_is_written_in_as_few_writes_as_its_buffer_allows(
    tmp_path, monkeypatch, size, head, writes
):
    """The bytes that came with the answer's head and the rest of the object go to the
    file in one write when they fit the read buffer (256 KiB): not one write for the head's
    bytes and another for the rest, as before."""
    from objget import DownloadConfig
    from objget._models import ObjectMeta
    from objget.engine._single import fetch_small
    from objget.testing import MemoryBackend, no_wait_retry

    data = os.urandom(size)

    class Store(MemoryBackend):
        def get_range(self, key, rng, *, meta):
            return _HeadFirst(super().get_range(key, rng, meta=meta), head)

    store = Store({"k": data})
    seen: list[tuple[int, int]] = []
    real = os.pwrite

    def counting(fd, buf, offset):
        seen.append((offset, len(buf)))
        return real(fd, buf, offset)

    monkeypatch.setattr(os, "pwrite", counting)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fetch_small(
            store, "k", str(tmp_path / "k"), dir_fd=fd,
            meta=ObjectMeta(size=size, etag=store._etags["k"]), sha256=None,
            config=DownloadConfig(retry=no_wait_retry()), buf=memoryview(bytearray(256 * 1024)),
        )  # fmt: skip
    finally:
        os.close(fd)
    assert (tmp_path / "k").read_bytes() == data
    assert len(seen) == writes, seen
    assert sum(n for _, n in seen) == size
