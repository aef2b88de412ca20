"""A batch's small objects written with O_DIRECT (`engine/_direct.py`): onto a local disk
filesystem the temp file is opened with O_DIRECT and the whole blocks written from the
worker's page-aligned buffer, a tail of under 4 KiB buffered; onto tmpfs, or where the
filesystem refuses O_DIRECT (at the open or at a write), through the page cache, asked once,
and the object never fails for it."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path

import pytest

from objget.engine import _syncfs
from objget.testing import MemoryBody

from .test_batch_small_guards import HookedStore, run_batch

K = 4096
O_DIRECT = os.O_DIRECT
# aligned, a tail after whole blocks, a tail only, two buffers' worth and a tail, empty
SIZES = {"d/a": 64 * 1024, "d/b": 64 * 1024 + 100, "d/c": 100, "d/e": 600 * 1024 + 7, "d/z": 0}


def objects() -> dict[str, bytes]:
    return {k: os.urandom(n) for k, n in SIZES.items()}


def type_of(path: object) -> int | None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        return _syncfs._fs_type(fd)
    finally:
        os.close(fd)


def on_disk_fs(path: object) -> bool:
    return type_of(path) in (0xEF53, 0x58465342, 0x9123683E, 0xF2F52010)


class Spy:
    """Counts the temp files' opens with and without O_DIRECT, and the writes' kinds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, refuse_open: bool = False,
                 refuse_write: bool = False) -> None:  # fmt: skip
        self.opens: list[bool] = []  # O_DIRECT or not, per temp file opened
        self.writes: list[tuple[bool, int, int]] = []  # (direct, offset, length)
        real_open, real_pwrite = os.open, os.pwrite

        def spy_open(path, flags, mode=0o777, *, dir_fd=None):
            if str(path).endswith(".objget-part"):
                direct = bool(flags & O_DIRECT)
                self.opens.append(direct)
                if direct and refuse_open:  # as the kernel does: made, then refused
                    os.close(real_open(path, flags & ~O_DIRECT, mode, dir_fd=dir_fd))
                    raise OSError(errno.EINVAL, "Invalid argument")
            return real_open(path, flags, mode, dir_fd=dir_fd)

        def spy_pwrite(fd, data, offset):
            direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT)
            if direct and refuse_write:
                raise OSError(errno.EINVAL, "Invalid argument")
            self.writes.append((direct, offset, len(data)))
            return real_pwrite(fd, data, offset)

        monkeypatch.setattr(os, "open", spy_open)
        monkeypatch.setattr(os, "pwrite", spy_pwrite)
        try:  # no refusal known from other tests
            from objget.engine import _direct

            monkeypatch.setattr(_direct, "_refused", set())
        except ImportError:  # (before O_DIRECT was used)
            pass


def check(tmp_path, by, objs) -> None:
    assert all(r.status == "downloaded" for r in by.values()), by
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data
    assert sorted(os.listdir(tmp_path / "d")) == sorted(k[2:] for k in objs)


def test_onto_a_disk_filesystem_whole_blocks_go_direct_and_a_tail_through_the_cache(
    tmp_path, monkeypatch
):
    if not on_disk_fs(tmp_path):
        pytest.skip("the temp directory is not on ext4, XFS, Btrfs or F2FS")
    spy = Spy(monkeypatch)
    objs = objects()
    by, _ = run_batch(tmp_path, HookedStore(objs), objs)
    check(tmp_path, by, objs)
    assert spy.opens == [True] * len(objs)
    # whole blocks direct from the aligned buffer (256 KiB at a time), the tail buffered
    assert sorted(spy.writes) == sorted([
        (False, 65536, 100), (False, 0, 100), (False, 614400, 7),
        (True, 0, 65536), (True, 0, 65536), (True, 0, 262144), (True, 262144, 262144),
        (True, 524288, 90112),
    ])  # fmt: skip


def test_bytes_that_came_with_the_answer_s_head_are_copied_into_the_aligned_buffer(
    tmp_path, monkeypatch
):
    """The connection's buffer (where the head's bytes are) is not aligned: a 64 KiB object
    that came whole with its head is still one direct write, from the worker's buffer."""
    if not on_disk_fs(tmp_path):
        pytest.skip("the temp directory is not on ext4, XFS, Btrfs or F2FS")

    class HeadBody(MemoryBody):
        def take_buffered(self, limit: int) -> memoryview:
            n = min(limit, len(self._data) - self._pos)
            self._pos += n
            return memoryview(b"x" + bytes(self._data[:n]))[1:]  # at an odd address

    class Store(HookedStore):
        def get_range(self, key, rng, *, meta):
            body = super().get_range(key, rng, meta=meta)
            body.__class__ = HeadBody
            return body

    spy = Spy(monkeypatch)
    objs = {"d/a": os.urandom(64 * 1024)}
    by, _ = run_batch(tmp_path, Store(objs), objs)
    check(tmp_path, by, objs)
    assert spy.writes == [(True, 0, 65536)]


def test_a_filesystem_that_refuses_o_direct_at_the_open_is_asked_once(tmp_path, monkeypatch):
    """As a tmpfs before Linux 6.6 does (EINVAL at the open, after the file was made): the
    object is written through the page cache, and the next ones are not asked again."""
    if not on_disk_fs(tmp_path):
        pytest.skip("the temp directory is not on ext4, XFS, Btrfs or F2FS")
    spy = Spy(monkeypatch, refuse_open=True)
    objs = objects()
    by, _ = run_batch(tmp_path, HookedStore(objs), objs)
    check(tmp_path, by, objs)
    assert spy.opens[:2] == [True, False]  # refused, then made without it
    assert spy.opens[2:] == [False] * (len(objs) - 1)
    assert not any(direct for direct, _, _ in spy.writes)


def test_a_direct_write_refused_mid_object_is_made_through_the_cache(tmp_path, monkeypatch):
    if not on_disk_fs(tmp_path):
        pytest.skip("the temp directory is not on ext4, XFS, Btrfs or F2FS")
    spy = Spy(monkeypatch, refuse_write=True)
    objs = objects()
    by, _ = run_batch(tmp_path, HookedStore(objs), objs)
    check(tmp_path, by, objs)
    assert spy.opens.count(True) == 1  # the first object's open; the others not asked
    assert not any(direct for direct, _, _ in spy.writes)


def test_onto_tmpfs_the_files_go_through_the_page_cache(monkeypatch):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or type_of(shm) != 0x01021994:
        pytest.skip("no tmpfs at /dev/shm")
    with tempfile.TemporaryDirectory(dir=shm) as where:
        spy = Spy(monkeypatch)
        objs = objects()
        by, _ = run_batch(where, HookedStore(objs), objs)
        assert all(r.status == "downloaded" for r in by.values()), by
        for key, data in objs.items():
            assert Path(where, key).read_bytes() == data
    assert spy.opens == [False] * len(objs)


def test_the_aligned_buffer_is_aligned_and_a_bytearray_is_not_taken_for_one():
    from objget.engine import _direct

    buf = _direct.aligned_buffer(256 * 1024 + 1)
    assert len(buf) == 260 * 1024 and _direct.is_aligned(buf)
    assert not _direct.is_aligned(buf[1 : K + 1])
    assert not _direct.is_aligned(buf[: K + 1])
    assert not _direct.is_aligned(memoryview(bytearray(K)))


def test_an_object_with_a_sha256_to_check_is_written_through_the_cache(tmp_path, monkeypatch):
    """The user's SHA-256 is checked by reading the file back: from the page cache, so that
    temp file is not opened with O_DIRECT; the others of the batch are."""
    import hashlib

    from objget.many._batch_sources import Planned

    from . import test_batch_small_guards as guards

    if not on_disk_fs(tmp_path):
        pytest.skip("the temp directory is not on ext4, XFS, Btrfs or F2FS")
    spy = Spy(monkeypatch)
    objs = {"d/a": os.urandom(64 * 1024), "d/b": os.urandom(64 * 1024)}
    sums = {"d/a": hashlib.sha256(objs["d/a"]).hexdigest()}

    def planned(**kw):
        return Planned(**kw, sha256=sums.get(kw["key"]))

    monkeypatch.setattr(guards, "Planned", planned)
    by, _ = run_batch(tmp_path, HookedStore(objs), objs)
    check(tmp_path, by, objs)
    assert by["d/a"].result is not None and "sha256" in by["d/a"].result.verified
    assert spy.opens == [False, True]
