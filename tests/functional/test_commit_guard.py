"""The single-object path keeps the guards the batch has (issue 14 follow-ups):

- a DEST whose name carries objget's side-file marker (`x.objget-part`) is refused before any
  request, with the batch's rule (`carries_marker`, as `_batch_sources.relative_path` uses it):
  its commit rename would replace the temp file of a running download of `x`;
- the commit renames the temp file only while it is still the file the engine wrote (device
  and inode of the open descriptor against an `lstat` of the path): a temp file swapped or
  removed by someone else is never renamed onto DEST.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

import objget
from objget import CheckpointError, LockedError, UnsafePath
from objget.engine._checkpoint import Paths
from objget.testing import MemoryBackend, no_wait_retry

DATA = bytes(range(256)) * 4096  # 1 MiB


class HookedStore(MemoryBackend):
    """Counts HEADs; calls `hook()` once, when the first GET is answered."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self.heads = 0
        self.hook: Callable[[], None] | None = None

    def head(self, key: str, *, version_id: str | None = None) -> objget.ObjectMeta:
        self.heads += 1
        return super().head(key, version_id=version_id)

    def get_range(self, key, rng, *, meta):
        body = super().get_range(key, rng, meta=meta)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return body


def run(store: MemoryBackend, dest: str, **cfg: object) -> objget.DownloadResult:
    config = objget.DownloadConfig(retry=no_wait_retry(), **cfg)  # type: ignore[arg-type]
    with objget.Downloader(config=config) as dl:
        return dl.download_object(store, "k", dest)


@pytest.mark.parametrize(
    "name", ["x.objget-part", "x.objget-ckpt", "x.objget-lock", "X.OBJGET-PART", "a.objget-b"]
)
def test_a_dest_named_like_a_side_file_is_refused_before_any_request(tmp_path, name):
    """A running download of `x` holds `x.objget-part`: a download to that name would rename
    its own temp file onto the other run's data file."""
    (tmp_path / "x.objget-part").write_bytes(b"the other run's bytes")
    store = HookedStore({"k": DATA})
    dest = str(tmp_path / name)
    with pytest.raises(UnsafePath) as caught:
        run(store, dest)
    assert isinstance(caught.value, ValueError)
    assert dest in str(caught.value) and ".objget-" in str(caught.value)
    assert caught.value.dest == dest
    assert (store.heads, store.requests) == (0, [])
    assert (tmp_path / "x.objget-part").read_bytes() == b"the other run's bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.objget-part"]


def test_a_marker_in_a_parent_directory_name_is_no_reason_to_refuse(tmp_path):
    """Only the file's own name can collide with a side file; a directory can never stand
    where a running download's temp file is."""
    (tmp_path / "d.objget-keep").mkdir()
    dest = tmp_path / "d.objget-keep" / "out.bin"
    run(MemoryBackend({"k": DATA}), str(dest))
    assert dest.read_bytes() == DATA


def test_download_refuses_the_name_derived_into_a_directory(tmp_path):
    """`objget URL dir/` with an object named like a side file: refused before any request
    (the URL's host does not exist: a request would fail otherwise)."""
    with pytest.raises(UnsafePath, match="objget-part"):
        objget.download(
            "http://127.0.0.1:9/d/x.objget-part",
            str(tmp_path) + os.sep,
            config=objget.DownloadConfig(retry=no_wait_retry(1)),
        )
    assert os.listdir(tmp_path) == []


def swap(part: str) -> Callable[[], None]:
    def swap_it() -> None:
        os.unlink(part)
        with open(part, "wb") as f:
            f.write(b"a stranger's bytes")

    return swap_it


def remove(part: str) -> Callable[[], None]:
    return lambda: os.unlink(part)


@pytest.mark.parametrize("how", [swap, remove], ids=["swapped", "removed"])
@pytest.mark.parametrize("part_size", [None, 256 * 1024], ids=["one-part", "parts"])
def test_a_temp_file_swapped_during_the_download_is_never_renamed_onto_dest(
    tmp_path, how, part_size
):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"the old file")
    paths = Paths.beside(str(dest))
    store = HookedStore({"k": DATA})
    store.hook = how(paths.part)
    with pytest.raises(CheckpointError) as caught:
        run(store, str(dest), part_size=part_size, max_workers=2)
    assert not isinstance(caught.value, LockedError)
    assert "was removed or replaced by another file" in str(caught.value)
    assert paths.part in str(caught.value) and str(dest) in str(caught.value)
    assert caught.value.dest == str(dest)
    assert dest.read_bytes() == b"the old file"
    if how is swap:  # the stranger's file is left where it is
        with open(paths.part, "rb") as f:
            assert f.read() == b"a stranger's bytes"
    # the checkpoint described the engine's own (now unreachable) file: gone with it
    assert not os.path.exists(paths.checkpoint)
    assert not os.path.exists(paths.live)
    assert not os.path.exists(paths.lock)
    # the next run starts over and gets it right
    result = run(store, str(dest))
    assert dest.read_bytes() == DATA
    assert result.bytes_resumed == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_an_untouched_temp_file_is_committed(tmp_path):
    dest = tmp_path / "out.bin"
    run(MemoryBackend({"k": DATA}), str(dest), part_size=256 * 1024)
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
