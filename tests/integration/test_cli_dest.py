"""`objget URL DEST` where the file would land on an existing directory: exit 6 before any
request, naming the path (issue 14, item 8). Before, the whole object was fetched and the
final rename failed with EISDIR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import objget

DATA = b"0123456789" * 10_000


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "objget", "-q", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def url(httpserver) -> str:
    httpserver.expect_request("/d/obj.bin").respond_with_data(DATA)
    return str(httpserver.url_for("/d/obj.bin"))


@pytest.mark.parametrize("form", ["dir/", "dir"])
def test_a_directory_where_the_file_would_go_exits_6_before_any_request(
    httpserver, url: str, tmp_path: Path, form: str
) -> None:
    (tmp_path / "dir" / "obj.bin").mkdir(parents=True)
    dest = str(tmp_path / "dir") + (os.sep if form.endswith("/") else "")
    proc = cli(url, dest)
    assert proc.returncode == 6, proc.stderr
    assert str(tmp_path / "dir" / "obj.bin") in proc.stderr
    assert "directory" in proc.stderr
    assert [req.method for req, _ in httpserver.log] == []
    assert os.listdir(tmp_path / "dir") == ["obj.bin"]


def test_an_existing_directory_as_dest_takes_the_objects_name(url: str, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    proc = cli(url, str(tmp_path / "dir"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dir" / "obj.bin").read_bytes() == DATA


def test_the_library_raises_is_a_directory_before_any_request(
    httpserver, url: str, tmp_path: Path
) -> None:
    (tmp_path / "obj.bin").mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        objget.download(url, str(tmp_path))
    assert caught.value.filename == str(tmp_path / "obj.bin")
    assert httpserver.log == []


@pytest.mark.parametrize("name", ["obj.bin.objget-part", "obj.bin.OBJGET-CKPT"])
def test_a_dest_named_like_a_side_file_exits_2_before_any_request(
    httpserver, url: str, tmp_path: Path, name: str
) -> None:
    """`objget URL x.objget-part` would rename its temp file onto the temp file of a running
    download of `x`: refused by the batch's rule for names, before any request."""
    (tmp_path / "obj.bin.objget-part").write_bytes(b"a running download's bytes")
    dest = str(tmp_path / name)
    proc = cli(url, dest)
    assert proc.returncode == 2, proc.stderr
    assert dest in proc.stderr and ".objget-" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert httpserver.log == []
    assert (tmp_path / "obj.bin.objget-part").read_bytes() == b"a running download's bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.bin.objget-part"]


def test_an_object_named_like_a_side_file_into_a_directory_exits_2(
    httpserver, tmp_path: Path
) -> None:
    httpserver.expect_request("/d/x.objget-lock").respond_with_data(DATA)
    proc = cli(str(httpserver.url_for("/d/x.objget-lock")), str(tmp_path) + os.sep)
    assert proc.returncode == 2, proc.stderr
    assert str(tmp_path / "x.objget-lock") in proc.stderr
    assert httpserver.log == []
    assert os.listdir(tmp_path) == []


def test_the_library_raises_unsafe_path_for_a_side_file_name(
    httpserver, url: str, tmp_path: Path
) -> None:
    with pytest.raises(objget.UnsafePath) as caught:
        objget.download(url, str(tmp_path / "obj.bin.objget-part"))
    assert caught.value.dest == str(tmp_path / "obj.bin.objget-part")
    assert httpserver.log == []
