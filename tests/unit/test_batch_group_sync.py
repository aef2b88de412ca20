"""A worker's small objects are made durable several at a time (`SmallGroup`, `_syncfs`):
written and checked in their own DEST lock files, synced together (one `syncfs` where that is
as strong as an fsync each, else an fsync each), and only then renamed, each still under its
lock; a sync that fails leaves every object of the group failed, none renamed."""

from __future__ import annotations

import errno
import os

from objget import LockedError
from objget.engine import _checkpoint as ck
from objget.engine import _small_group, _syncfs

from .test_batch_small_guards import HookedStore, run_batch


def test_the_group_renames_only_after_its_files_are_synced_each_under_its_lock(
    tmp_path, monkeypatch
):
    """At the GET of the 4th object of a directory the three before it are written but not
    in place yet: their lock files (the temp files) are there (and the 4th's, made before its
    GET), their DEST is not, and each DEST's lock is held (a single download of it would be
    refused). At the end every object is in place and no side file is left."""
    monkeypatch.setattr(_small_group, "group_sync_ok", lambda fd: True)  # however busy the disk
    objs = {f"d/o{i}": bytes([i]) * 1000 for i in range(4)}
    store = HookedStore(objs)
    seen: dict[str, object] = {}

    def look() -> None:
        d = tmp_path / "d"
        seen["names"] = sorted(os.listdir(d))
        refused = []
        for i in range(3):
            try:
                ck.DestLock(str(d / f"o{i}.objget-lock"), dest=f"o{i}").acquire()
            except LockedError:
                refused.append(i)
        seen["refused"] = refused

    store.hooks["d/o3"] = look
    by, rows = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert all(r.state == "done" for r in rows.values())
    assert seen["refused"] == [0, 1, 2]
    assert seen["names"] == [f"o{i}.objget-lock" for i in range(4)]
    assert sorted(os.listdir(tmp_path / "d")) == [f"o{i}" for i in range(4)]
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data


def test_where_one_sync_cannot_stand_for_several_each_file_is_synced_and_renamed_in_turn(
    tmp_path, monkeypatch
):
    """No grouping (a FUSE filesystem, much dirty data elsewhere...): each object is synced
    and renamed before the next one's GET, as a single download would (no more lock files
    than one)."""
    monkeypatch.setattr(_small_group, "group_sync_ok", lambda fd: False)
    objs = {f"d/o{i}": bytes([i]) * 1000 for i in range(4)}
    store = HookedStore(objs)
    seen: list[list[str]] = []
    store.hooks["d/o3"] = lambda: seen.append(sorted(os.listdir(tmp_path / "d")))
    by, _ = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert seen == [["o0", "o1", "o2", "o3.objget-lock"]]
    assert sorted(os.listdir(tmp_path / "d")) == [f"o{i}" for i in range(4)]


def test_a_sync_that_fails_fails_every_object_of_its_group_and_renames_none(tmp_path, monkeypatch):
    def broken(dir_fd, fds):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_small_group, "group_sync_ok", lambda fd: True)
    monkeypatch.setattr(_small_group, "sync_files", broken)
    objs = {f"d/o{i}": bytes([i]) * 100 for i in range(3)}
    by, rows = run_batch(tmp_path, HookedStore(objs), objs)
    for key in objs:
        assert by[key].status == "failed" and by[key].error_kind == "local", by[key]
        assert "Input/output error" in (by[key].error or "")
        assert rows[key].state == "failed"
    assert os.listdir(tmp_path / "d") == []  # no DEST, no temp file, no lock


def _spy(monkeypatch) -> tuple[list[int], list[int]]:
    """(fds fsynced, syncfs calls) through `_syncfs.sync_files`."""
    fsynced: list[int] = []
    syncfs: list[int] = []
    real_fsync = os.fsync

    def fsync(fd):
        fsynced.append(fd)
        real_fsync(fd)

    def fake_syncfs():
        return lambda fd: syncfs.append(fd) or 0

    monkeypatch.setattr(_syncfs.os, "fsync", fsync)
    monkeypatch.setattr(_syncfs, "_syncfs", fake_syncfs)
    monkeypatch.setattr(_syncfs, "_kernel_reports_errors", lambda: True)
    return fsynced, syncfs


def _files(tmp_path, n):
    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(n)]
    for fd in fds:
        os.write(fd, b"x" * 100)
    return fds


def test_one_syncfs_stands_for_the_fsyncs_on_a_local_filesystem(tmp_path, monkeypatch):
    fsynced, syncfs = _spy(monkeypatch)
    monkeypatch.setattr(_syncfs, "_fs_type", lambda fd: 0xEF53)  # ext4
    monkeypatch.setattr(_syncfs, "_dirty_bytes", lambda: 0)
    fds = _files(tmp_path, 3)
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _syncfs.sync_files(dir_fd, fds)
        assert syncfs == [dir_fd] and fsynced == []
        _syncfs.sync_files(dir_fd, fds[:1])  # one file: its own fsync is no dearer
        assert syncfs == [dir_fd] and fsynced == fds[:1]
    finally:
        for fd in (*fds, dir_fd):
            os.close(fd)


def test_files_are_fsynced_one_by_one_where_syncfs_may_do_less_or_wait_for_others(
    tmp_path, monkeypatch
):
    """A FUSE (or any unknown) filesystem, much dirty data of other programs, or a kernel
    whose syncfs hides write-back errors: an fsync of each file."""
    fsynced, syncfs = _spy(monkeypatch)
    fds = _files(tmp_path, 3)
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        cases = [
            (0x65735546, 0, True),  # FUSE
            (0xEF53, 1024 * 1024 * 1024, True),  # ext4, 1 GiB dirty elsewhere
            (0xEF53, 0, False),  # ext4, a kernel before 5.8
        ]
        for fs_type, dirty, reports in cases:
            monkeypatch.setattr(_syncfs, "_fs_type", lambda fd, t=fs_type: t)
            monkeypatch.setattr(_syncfs, "_dirty_bytes", lambda d=dirty: d)
            monkeypatch.setattr(_syncfs, "_kernel_reports_errors", lambda r=reports: r)
            fsynced.clear()
            _syncfs.sync_files(dir_fd, fds)
            assert syncfs == [] and fsynced == fds, (fs_type, dirty, reports)
    finally:
        for fd in (*fds, dir_fd):
            os.close(fd)


def test_the_real_checks_read_this_machine():
    """The kernel, the filesystem type and /proc/meminfo are read for real (Linux)."""
    assert _syncfs._dirty_bytes() is not None
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert _syncfs._fs_type(fd) is not None
    finally:
        os.close(fd)
    assert _syncfs._syncfs() is not None
