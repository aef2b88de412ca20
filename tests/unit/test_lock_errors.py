"""A lock that cannot be written (a full disk) fails naming its file, and keeps no descriptor."""

from __future__ import annotations

import errno
import os

import pytest

from objget._exit import describe, error_kind
from objget.engine import _checkpoint as ck


def test_a_lock_whose_pid_cannot_be_written_names_its_file_and_closes_it(tmp_path, monkeypatch):
    path = str(tmp_path / "a.bin.objget-lock")
    real_write, real_close = os.write, os.close
    closed: list[int] = []

    def write(fd: int, data: bytes) -> int:
        if data == f"{os.getpid()}\n".encode():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(ck.os, "write", write)
    monkeypatch.setattr(ck.os, "close", close)
    lock = ck.DestLock(path, dest=str(tmp_path / "a.bin"))
    with pytest.raises(OSError) as info:
        lock.acquire()
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and info.value.filename == path
    assert error_kind(info.value) == "local"
    assert describe(info.value).endswith(f"No space left on device: {path}")
    assert closed, "the lock file's descriptor was left open"
    again = ck.DestLock(path, dest=str(tmp_path / "a.bin"))
    again.acquire()  # nothing held it
    again.release(remove=True)
