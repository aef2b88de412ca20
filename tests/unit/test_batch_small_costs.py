"""What the batch's small-object path costs per object and per chunk, and that the cheaper
ways keep the guards: DEST's lock handed on by one rename that never replaces (a hard link
and an unlink where there is none), kept by a worker from chunk to chunk, the directory not
asked again after a successful object in it, the source's display name not made again."""

from __future__ import annotations

import os
import stat

import pytest

from objget.engine import _checkpoint as ck
from objget.engine import _small_group
from objget.many._batch_journal import Journal, Row
from objget.many._batch_sources import Planned

from .test_batch_small_guards import HookedStore, run_batch


def test_rename_noreplace_moves_a_name_and_never_replaces(tmp_path):
    from objget.engine._noreplace import rename_noreplace

    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            rename_noreplace("a", "b", dir_fd=fd)
        assert (tmp_path / "a").read_bytes() == b"a" and (tmp_path / "b").read_bytes() == b"b"
        rename_noreplace("a", "c", dir_fd=fd)
        with pytest.raises(FileNotFoundError):
            rename_noreplace("a", "d", dir_fd=fd)
    finally:
        os.close(fd)
    rename_noreplace(str(tmp_path / "c"), str(tmp_path / "e"), dir_fd=None)
    assert sorted(os.listdir(tmp_path)) == ["b", "e"]


def test_without_a_rename_that_never_replaces_the_lock_is_handed_on_by_a_hard_link(
    tmp_path, monkeypatch
):
    """Where renameat2 is missing or the filesystem refuses RENAME_NOREPLACE, the hand-over
    is a hard link and an unlink: still one lock file for the run, none left behind."""
    from objget.engine._noreplace import Unsupported

    def unsupported(*args, **kwargs):
        raise Unsupported("not here")

    links: list[str] = []
    real_link = os.link

    def counting_link(src, dst, **kw):
        links.append(dst)
        return real_link(src, dst, **kw)

    monkeypatch.setattr(ck, "rename_noreplace", unsupported)
    monkeypatch.setattr(ck.os, "link", counting_link)
    monkeypatch.setattr(_small_group, "SYNC_MOST", 1)  # one lock per worker: handed on each time
    objs = {f"d/o{i}": bytes([i]) * 100 for i in range(4)}
    by, _ = run_batch(tmp_path, HookedStore(objs), objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert links == [f"o{i}.objget-lock" for i in range(1, 4)]
    assert sorted(os.listdir(tmp_path / "d")) == [f"o{i}" for i in range(4)]


def test_a_lock_name_that_is_no_longer_the_held_file_is_put_back_not_taken(tmp_path):
    """The held lock's old name now names another file (removed and made again behind the
    run's back): the hand-over renames it back and reports failure; the other file keeps
    its name and contents."""
    lock = ck.DestLock(str(tmp_path / "a.objget-lock"), dest="a")
    lock.acquire()
    try:
        os.unlink(tmp_path / "a.objget-lock")
        (tmp_path / "a.objget-lock").write_bytes(b"someone else's")
        assert not lock.move(str(tmp_path / "b.objget-lock"), dest="b")
        assert sorted(os.listdir(tmp_path)) == ["a.objget-lock"]
        assert (tmp_path / "a.objget-lock").read_bytes() == b"someone else's"
    finally:
        lock.release(remove=False)


def test_the_directory_is_asked_again_when_the_object_before_failed(tmp_path, monkeypatch):
    """The hand-over trusts the directory descriptor without an fstat only right after a
    successful object in the same directory; after a failure (or in another directory) it
    asks the descriptor which directory it is."""
    import objget.engine._single as single

    monkeypatch.setattr(_small_group, "SYNC_MOST", 1)  # one lock, handed from each to the next
    objs = {"d/a": b"a" * 10, "d/b": b"b" * 10, "d/c": b"c" * 10, "e/x": b"x", "d/z": b"z"}
    store = HookedStore(objs)
    store.hooks["d/b"] = lambda: (_ for _ in ()).throw(OSError(5, "EIO"))
    calls: list[int] = []
    real = single.os.fstat

    def counting(fd):
        st = real(fd)
        if stat.S_ISDIR(st.st_mode):
            calls.append(fd)
        return st

    monkeypatch.setattr(single.os, "fstat", counting)
    by, _ = run_batch(tmp_path, store, objs)
    assert [by[k].status for k in objs] == ["downloaded", "failed", "downloaded"] + [
        "downloaded"
    ] * 2
    # d/a: a new lock (an fstat of its own descriptor); d/b: the same directory, trusted;
    # d/c after the failure: asked; e/x and d/z: asked, then a new lock each
    assert len(calls) == 1 + 0 + 1 + 2 + 2


def test_a_worker_keeps_its_lock_file_from_chunk_to_chunk(tmp_path, monkeypatch):
    """Each worker makes its lock files for a directory once (one per object it holds
    unsynced at a time, SYNC_MOST), not per chunk: the chunks of a 100-object batch on two
    connections take a lock anew at most SYNC_MOST times per worker; every lock file is gone
    when the run ends."""
    acquired: list[str] = []
    real = ck.DestLock.acquire

    def counting(self):
        if self._name.endswith(".objget-lock"):  # not the journal's lock
            acquired.append(self._name)
        return real(self)

    monkeypatch.setattr(ck.DestLock, "acquire", counting)
    objs = {f"d/o{i:03d}": bytes([i]) * 100 for i in range(100)}
    by, rows = run_batch(tmp_path, HookedStore(objs), objs, budget=2)
    assert all(r.status == "downloaded" for r in by.values())
    assert all(r.state == "done" for r in rows.values())
    assert 1 <= len(acquired) <= 2 * _small_group.SYNC_MOST, acquired
    assert sorted(os.listdir(tmp_path / "d")) == sorted(k.removeprefix("d/") for k in objs)


def test_a_lock_a_killed_run_left_beside_a_done_object_is_removed_by_the_next(tmp_path):
    """A worker's lock names the last object it fetched until the run ends: a run killed
    after journaling that object leaves the lock file beside it; the next run, which skips
    the object, removes the lock (not one another run holds)."""
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
