"""libc's functions are bound through `_ctypes` (`engine/_libc.py`, issue 16: importing `ctypes`
was ~9.7 M instructions of an 8 MiB download's run, binding through `_ctypes` ~3 M): the same
calls, errno kept where `ctypes.get_errno` reads it, `ctypes` itself when `_ctypes` will not do,
and a download with write-behind never imports `ctypes`."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from objget.engine import _libc

from .test_import_cost import _loaded_after, _served

SYNC_FILE_RANGE = ("c_int", "c_int64", "c_int64", "c_uint")


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(_libc, "_libc", {})
    monkeypatch.setattr(_libc, "_made", {})


def test_functions_are_called_with_errno_kept(tmp_path, fresh):
    sync = _libc.libc_function("sync_file_range", SYNC_FILE_RANGE)
    assert sync is not None and type(sync).__module__ != "ctypes"  # bound by _libc itself
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"x" * 65536, 0)
        assert sync(fd, 0, 65536, 2) == 0  # SYNC_FILE_RANGE_WRITE
        assert sync(-1, 0, 1, 2) == -1
        assert ctypes.get_errno() == errno.EBADF
        assert sync(fd, 2**40, 1, 2) == 0  # 64-bit offsets pass whole
    finally:
        os.close(fd)
    rename = _libc.libc_function("renameat2", ("c_int", "c_char_p", "c_int", "c_char_p", "c_uint"))
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    old, new = os.fsencode(tmp_path / "a"), os.fsencode(tmp_path / "b")
    assert rename(-100, old, -100, new, 1) == -1  # RENAME_NOREPLACE onto an existing name
    assert ctypes.get_errno() in (errno.EEXIST, errno.EINVAL)
    assert _libc.libc_function("sync_file_range", SYNC_FILE_RANGE) is sync  # once per process


def test_a_function_libc_lacks_is_none(fresh):
    assert _libc.libc_function("objget_no_such_function", ("c_int",)) is None


def test_ctypes_binds_when_ctypes_private_half_will_not(tmp_path, fresh, monkeypatch):
    def refuse(*_args):
        raise AttributeError("no _ctypes here")

    monkeypatch.setattr(_libc, "_bind", refuse)
    sync = _libc.libc_function("sync_file_range", SYNC_FILE_RANGE)
    assert isinstance(sync, ctypes._CFuncPtr)
    assert sync(-1, 0, 1, 2) == -1 and ctypes.get_errno() == errno.EBADF


def test_a_download_with_write_behind_imports_no_ctypes(tmp_path):
    (tmp_path / "blob").write_bytes(b"w" * (3 << 20))  # write-behind from 2 MiB up
    body = f"""
        code = run(["-q", url_of("blob"), {str(tmp_path / "out")!r}])
        assert code == 0, code
        """
    loaded = _loaded_after(_served(tmp_path, body, ranges=True))
    assert (tmp_path / "out").read_bytes() == b"w" * (3 << 20)
    assert "objget.engine._writeback" in loaded and "_ctypes" in loaded  # it did start write-back
    assert [m for m in loaded if m == "ctypes" or m.startswith("ctypes.")] == []
