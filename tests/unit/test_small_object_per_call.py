"""Per-object work of the batch's small-object path that must not be repeated per call: libc's
functions are bound once per process (`_fileio.libc_function` keeps them), not looked up (an
import statement and a lookup) with every group of files."""

from __future__ import annotations

import os

import pytest

from objget.engine import _fileio, _libc, _syncfs


@pytest.fixture
def binds(monkeypatch):
    """The names `_libc` is asked to bind, from a fresh process's state."""
    asked: list[str] = []
    real = _libc.libc_function

    def counting(name, argtypes, restype="c_int"):
        asked.append(name)
        return real(name, argtypes, restype)

    monkeypatch.setattr(_libc, "libc_function", counting)
    monkeypatch.setattr(_fileio, "_bound", {}, raising=False)  # (before: none)
    return asked


def test_syncfs_and_fstatfs_are_bound_once_not_looked_up_for_every_group(
    tmp_path, binds, monkeypatch
):
    """Each group of small files asks whether one `syncfs` may stand for their fsyncs
    (`group_sync_ok`: libc's fstatfs) and then syncs them (syncfs)."""
    monkeypatch.setattr(_syncfs, "_dirty_bytes", lambda: 0)  # the machine's own dirt aside
    monkeypatch.setattr(_syncfs, "_kernel_reports_errors", lambda: True)  # any kernel
    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(2)]
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(4):
            _syncfs.group_sync_ok(dir_fd)
            _syncfs.sync_files(dir_fd, fds)
    finally:
        for fd in (*fds, dir_fd):
            os.close(fd)
    assert sorted(binds) == ["fstatfs", "syncfs"]


def test_a_function_libc_lacks_is_asked_once_too(binds):
    """None (no such function) is kept like a bound one."""
    for _ in range(3):
        assert _fileio.libc_function("objget_no_such_function", ("c_int",)) is None
    assert binds == ["objget_no_such_function"]
