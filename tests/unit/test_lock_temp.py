"""DEST's lock file as the small object's temp file (`_lock_temp`): the lock protocol between a
batch and a single download of one DEST, what a killed run leaves and how a re-run clears it,
a retry and an object that turns out not small. On the commit before (no `_lock_temp`: the
small path wrote a separate `DEST.objget-part`) the protocol's tests and the retry's fail; the
re-runs' clearing of data-filled lock files and the not-small object passed there too (any
stale lock file was truncated by `DestLock`) and are kept as guarantees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from objget import DownloadConfig, Downloader, LockedError, TransportError
from objget._models import ObjectMeta
from objget.engine import _checkpoint as ck
from objget.engine import _lock_temp
from objget.engine._single import SMALL, NotSmall, fetch_small
from objget.testing import MemoryBackend, no_wait_retry

from .test_batch_small_guards import HookedStore, run_batch

_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def _create(dir_fd: int, name: str = "x.objget-lock") -> tuple[int, tuple[int, int]]:
    return _lock_temp.create_locked(dir_fd, name, _CREATE, path=name, dest="x", source="s")


def test_a_single_download_that_opened_the_lock_file_before_the_rename_takes_a_new_one(
    tmp_path, monkeypatch
):
    """A single download opens DEST.objget-lock while a batch writes its object in it, and
    gets the flock only after the batch renamed that file onto DEST and let go: its inode
    check finds the lock name gone, it takes a new lock file, and DEST keeps the batch's
    bytes (not truncated, no PID written into it)."""
    d = _dir(tmp_path)
    try:
        fd, made = _create(d)
        os.pwrite(fd, b"the object", 0)
        os.fsync(fd)
        calls = []
        real = ck.take_flock

        def batch_commits_first(lock_fd, **kw):
            if not calls:  # the single download's first flock: the batch finishes just before
                _lock_temp.commit_lock_temp(fd, "x.objget-lock", "x", made, display="s", dir_fd=d)
            calls.append(os.fstat(lock_fd).st_ino)
            return real(lock_fd, **kw)

        monkeypatch.setattr(ck, "take_flock", batch_commits_first)
        lock = ck.DestLock(str(tmp_path / "x.objget-lock"), dest="x")
        lock.acquire()
        try:
            assert calls[0] == made[1]  # it opened the batch's file first
            assert len(calls) == 2 and calls[1] != made[1]  # then a new lock file
            assert (tmp_path / "x").read_bytes() == b"the object"
            assert os.stat(tmp_path / "x").st_ino == made[1]
        finally:
            lock.release(remove=True)
    finally:
        os.close(d)
    assert sorted(os.listdir(tmp_path)) == ["x"]


def test_a_lock_file_unlinked_by_a_run_that_took_its_flock_first_is_made_again(
    tmp_path, monkeypatch
):
    """Another run took the flock of the lock file just made (opening it before this run's
    flock), and removed it when it let go: this run's file has no name any more (link count
    0), so it makes a new lock file instead of writing into a file no one can find."""
    d = _dir(tmp_path)
    real = _lock_temp.take_flock
    flocked: list[int] = []

    def other_run_removes_it(fd, **kw):
        flocked.append(fd)
        if len(flocked) == 1:
            os.unlink("x.objget-lock", dir_fd=d)
        return real(fd, **kw)

    monkeypatch.setattr(_lock_temp, "take_flock", other_run_removes_it)
    try:
        fd, made = _create(d)
        try:
            assert len(flocked) == 2  # the unlinked file let go of, a new one made
            st = os.fstat(fd)
            assert st.st_nlink == 1 and (st.st_dev, st.st_ino) == made
            assert os.stat(tmp_path / "x.objget-lock").st_ino == made[1]
        finally:
            os.close(fd)
    finally:
        os.close(d)


def test_a_held_lock_file_refuses_and_a_stale_one_is_dropped(tmp_path):
    d = _dir(tmp_path)
    try:
        other = ck.DestLock(str(tmp_path / "x.objget-lock"), dest="x")
        other.acquire()
        try:
            with pytest.raises(LockedError, match="another objget run is downloading to x"):
                _create(d)
            assert (tmp_path / "x.objget-lock").read_bytes() == f"{os.getpid()}\n".encode()
        finally:
            other.release(remove=False)  # as a killed run leaves it
        (tmp_path / "x.objget-lock").write_bytes(b"half an object")
        fd, made = _create(d)
        os.close(fd)
        assert os.stat(tmp_path / "x.objget-lock").st_ino == made[1]
        assert (tmp_path / "x.objget-lock").read_bytes() == b""  # a new, empty file
    finally:
        os.close(d)


def test_a_batch_clears_the_data_filled_lock_files_a_killed_run_left(tmp_path):
    """A killed batch leaves DEST.objget-lock with part of (or all of) an object in it, and
    never DEST: the re-run takes each as a stale lock, removes it and downloads the object."""
    objs = {"d/a": b"a" * 5000, "d/b": b"b" * 70_000, "c": b"c" * 10}
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.objget-lock").write_bytes(b"a" * 2000)  # killed mid-write
    (tmp_path / "d" / "b.objget-lock").write_bytes(b"b" * 70_000)  # killed before the rename
    (tmp_path / "c.objget-lock").write_bytes(b"")  # killed right after the create
    by, rows = run_batch(tmp_path, HookedStore(objs), objs)
    assert all(r.status == "downloaded" for r in by.values()), by
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data
    assert sorted(os.listdir(tmp_path / "d")) == ["a", "b"]
    assert not list(tmp_path.rglob("*.objget-lock"))


def test_a_single_download_clears_a_data_filled_lock_file(tmp_path):
    """`objget URL DEST` after a killed batch: the lock file with a partial object in it is
    taken as a stale lock (truncated), the download runs, and the lock file is removed."""
    data = os.urandom(3000)
    store = MemoryBackend({"k": data})
    dest = tmp_path / "k"
    (tmp_path / "k.objget-lock").write_bytes(b"partial object bytes" * 50)
    with Downloader(config=DownloadConfig(retry=no_wait_retry())) as dl:
        dl.download_object(store, "k", str(dest))
    assert dest.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["k"]


def test_a_retry_starts_the_object_over_in_the_same_lock_file_still_held(tmp_path):
    """A connection lost mid-body: the next attempt empties the lock file and writes the
    object again into it, holding DEST's lock all along (a single download is refused at the
    second GET too)."""
    data = os.urandom(100_000)

    class Flaky(MemoryBackend):
        gets = 0

        def get_range(self, key, rng, *, meta):
            Flaky.gets += 1
            lock = tmp_path / "k.objget-lock"
            seen.append((os.path.getsize(lock), os.stat(lock).st_ino, _refused(lock)))
            body = super().get_range(key, rng, meta=meta)
            if Flaky.gets == 1:
                body.readinto = _cut(body.readinto)  # type: ignore[method-assign]
            return body

    seen: list[tuple[int, int, bool]] = []
    store = Flaky({"k": data})
    d = _dir(tmp_path)
    try:
        result = fetch_small(
            store, "k", str(tmp_path / "k"), dir_fd=d,
            meta=ObjectMeta(size=len(data), etag=store._etags["k"]), sha256=None,
            config=DownloadConfig(retry=no_wait_retry()), buf=memoryview(bytearray(16 * 1024)),
        )  # fmt: skip
    finally:
        os.close(d)
    assert result.retries == 1
    assert (tmp_path / "k").read_bytes() == data
    assert [s[0] for s in seen] == [0, 0]  # emptied before the second GET
    assert seen[0][1] == seen[1][1] == os.stat(tmp_path / "k").st_ino
    assert all(s[2] for s in seen)
    assert sorted(os.listdir(tmp_path)) == ["k"]


def _refused(lock: Path) -> bool:
    try:
        ck.DestLock(str(lock), dest="k").acquire()
    except LockedError:
        return True
    return False


def _cut(readinto):  # type: ignore[no-untyped-def]
    """`readinto` that loses the connection after the first 16 KiB."""
    got = [0]

    def cut(buf):  # type: ignore[no-untyped-def]
        if got[0] >= 16 * 1024:
            raise TransportError("connection reset")
        n = readinto(buf)
        got[0] += n
        return n

    return cut


def test_an_object_that_is_not_small_leaves_no_lock_file(tmp_path):
    """Size unknown, and the answer says SMALL or more: NotSmall, nothing written, and DEST's
    lock file removed and let go of (the ranged mode takes its own lock)."""
    store = MemoryBackend({"big": b"\0" * SMALL})
    d = _dir(tmp_path)
    try:
        with pytest.raises(NotSmall):
            fetch_small(
                store, "big", str(tmp_path / "big"), dir_fd=d, meta=ObjectMeta(size=None),
                sha256=None, config=DownloadConfig(retry=no_wait_retry()),
                buf=memoryview(bytearray(64 * 1024)),
            )  # fmt: skip
    finally:
        os.close(d)
    assert os.listdir(tmp_path) == []
