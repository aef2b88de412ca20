"""A resume asks the disk only for what the temp file does not hold yet: its blocks (reserved
when it was made, or written before the failure) take no new space when written again. A disk
with room for the rest of the object, but not for the bytes still to fetch, must not be refused."""

from __future__ import annotations

import os
from collections import namedtuple

import pytest

import objget
from objget.engine import _fileio
from objget.testing import Fault, MemoryBackend, no_wait_retry

MiB = 1024 * 1024
SIZE = 8 * MiB
Vfs = namedtuple("Vfs", "f_bavail f_frsize")


@pytest.mark.timeout(60)
def test_a_resume_needs_only_the_space_its_temp_file_does_not_hold(tmp_path, monkeypatch):
    data = os.urandom(SIZE)
    dest = tmp_path / "out.bin"
    first = objget.DownloadConfig(retry=no_wait_retry(attempts=1), max_workers=1)
    failing = MemoryBackend({"k": data}, faults=[Fault.reset_after(MiB)])
    with objget.Downloader(config=first) as dl, pytest.raises(objget.DownloadError):
        dl.download_object(failing, "k", dest)
    part = failing.paths(str(dest)).part
    held = os.stat(part).st_blocks * 512
    if held < SIZE:
        pytest.fail(f"the temp file holds {held} bytes: this filesystem did not reserve it")

    # the disk now has 1 MiB free: far less than the ~7 MiB still to fetch, but the temp file
    # already holds every block they go to
    monkeypatch.setattr(_fileio.os, "statvfs", lambda _path: Vfs(f_bavail=256, f_frsize=4096))
    with objget.Downloader(config=objget.DownloadConfig(retry=no_wait_retry())) as dl:
        dl.download_object(MemoryBackend({"k": data}), "k", dest)
    assert dest.read_bytes() == data


@pytest.mark.timeout(60)
def test_a_fresh_download_still_asks_for_the_whole_object(tmp_path, monkeypatch):
    monkeypatch.setattr(_fileio.os, "statvfs", lambda _path: Vfs(f_bavail=256, f_frsize=4096))
    dest = tmp_path / "out.bin"
    with objget.Downloader(config=objget.DownloadConfig(retry=no_wait_retry())) as dl:
        with pytest.raises(OSError, match="not enough free space") as info:
            dl.download_object(MemoryBackend({"k": os.urandom(SIZE)}), "k", dest)
    assert "needs 8.0 MiB more" in str(info.value)
    assert not dest.exists()
