"""Per-object work of the batch's small-object path that must not be repeated per call."""

from __future__ import annotations

import os

from objget.engine import _noreplace


def test_renameat2_is_bound_once_not_looked_up_for_every_lock_hand_over(tmp_path, monkeypatch):
    """A batch hands DEST's lock on with every small object (`rename_noreplace`): libc's
    renameat2 is bound at the first call and kept, not asked of `libc_function` (an import
    statement and a lookup) each time."""
    asked: list[str] = []
    real = _noreplace.libc_function

    def counting(name, argtypes, restype="c_int"):
        asked.append(name)
        return real(name, argtypes, restype)

    monkeypatch.setattr(_noreplace, "libc_function", counting)
    monkeypatch.setattr(_noreplace, "_bound", [], raising=False)  # as in a fresh process
    (tmp_path / "n0").write_bytes(b"x")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(5):
            _noreplace.rename_noreplace(f"n{i}", f"n{i + 1}", dir_fd=fd)
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["n5"]
    assert asked == ["renameat2"]


def test_syncfs_and_fstatfs_are_bound_once_not_looked_up_for_every_group(tmp_path, monkeypatch):
    """Each group of small files asks whether one `syncfs` may stand for their fsyncs
    (`group_sync_ok`: libc's fstatfs and syncfs) and then syncs them: the functions are
    bound at the first group and kept, not asked of `libc_function` each time."""
    from objget.engine import _syncfs

    asked: list[str] = []
    real = _syncfs.libc_function

    def counting(name, argtypes, restype="c_int"):
        asked.append(name)
        return real(name, argtypes, restype)

    monkeypatch.setattr(_syncfs, "libc_function", counting)
    monkeypatch.setattr(_syncfs, "_bound", {}, raising=False)  # as in a fresh process
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
    assert sorted(asked) == ["fstatfs", "syncfs"]
