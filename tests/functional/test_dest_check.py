"""A destination the final rename cannot take is refused before the first request
(issue 14, item 8): before, an existing directory at DEST failed with EISDIR only once the
whole object had been fetched."""

from __future__ import annotations

import errno
import os

import pytest

import objget
from objget.engine._downloader import dest_path
from objget.testing import MemoryBackend, no_wait_retry


def run(backend: MemoryBackend, dest: str) -> objget.DownloadResult:
    with objget.Downloader(config=objget.DownloadConfig(retry=no_wait_retry())) as dl:
        return dl.download_object(backend, "k", dest)


class CountingBackend(MemoryBackend):
    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self.heads = 0

    def head(self, key: str, *, version_id: str | None = None) -> objget.ObjectMeta:
        self.heads += 1
        return super().head(key, version_id=version_id)


def test_a_directory_at_dest_is_refused_before_any_request(tmp_path):
    (tmp_path / "name" / "inside").mkdir(parents=True)
    be = CountingBackend({"k": b"x" * 100_000})
    with pytest.raises(IsADirectoryError) as caught:
        run(be, str(tmp_path / "name"))
    assert caught.value.errno == errno.EISDIR
    assert caught.value.filename == str(tmp_path / "name")
    assert "directory" in str(caught.value)
    assert (be.heads, be.requests) == (0, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["name"]  # no temp, lock or checkpoint
    assert os.listdir(tmp_path / "name") == ["inside"]


def test_a_directory_at_the_name_derived_inside_dest_is_refused(tmp_path):
    """`objget URL dir/`: the file would be dir/NAME; that being a directory is refused."""
    (tmp_path / "obj.bin").mkdir()
    dest = dest_path("http://example.invalid/d/obj.bin", str(tmp_path) + os.sep)
    assert dest == str(tmp_path / "obj.bin")
    be = CountingBackend({"k": b"data"})
    with pytest.raises(IsADirectoryError):
        run(be, dest)
    assert (be.heads, be.requests) == (0, [])


def test_a_missing_directory_is_refused_before_any_get(tmp_path):
    be = CountingBackend({"k": b"data"})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(be, str(tmp_path / "nowhere" / "out"))
    assert be.requests == []


def test_a_symlink_to_a_directory_at_dest_is_replaced_like_any_link(tmp_path):
    """The rename replaces a symlink itself (never what it points to), so it is no reason
    to refuse; the directory it named is left alone."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    run(MemoryBackend({"k": b"data"}), str(tmp_path / "link"))
    assert not (tmp_path / "link").is_symlink()
    assert (tmp_path / "link").read_bytes() == b"data"
    assert os.listdir(tmp_path / "real") == []
