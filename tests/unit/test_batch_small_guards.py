"""The batch's small-object path keeps a single download's guards: it takes the destination's
lock (its lock file is the temp file), renames only the file it wrote (inode checked), and
writes relative to its open directory, so a parent swapped for a symlink after the check is
never followed."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from objget import DownloadConfig, Downloader, LockedError
from objget.batch import UnsafePath
from objget.engine import _checkpoint as ck
from objget.engine import _small_group
from objget.engine._dirs import ParentMaker
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024


class HookedStore(MemoryBackend):
    """Calls `hooks[key]()` when that key's GET is answered (before any body byte)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self.hooks: dict[str, Callable[[], None]] = {}

    def get_range(self, key, rng, *, meta):
        body = super().get_range(key, rng, meta=meta)
        hook = self.hooks.get(key)
        if hook is not None:
            hook()
        return body


def run_batch(root, store, objects, budget=1):
    plan = [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                etag=store._etags[k])
        for k, v in objects.items()
    ]  # fmt: skip
    cfg = DownloadConfig(max_workers=budget, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(root)) as jr:
        results = Runner(dl, str(root), jr).run(plan, {})
        rows = jr.rows()
    return {r.source.removeprefix("mem://"): r for r in results}, rows


def test_a_single_download_holding_the_lock_keeps_the_small_object_out(tmp_path):
    """A single download of DEST is running (it holds DEST.objget-lock and writes
    DEST.objget-part): the batch's object fails as `locked`; nothing of the other run is
    touched; the other objects are downloaded."""
    objs = {"x.bin": b"new" * 100, "y.bin": b"y" * 10}
    dest = tmp_path / "x.bin"
    dest.write_bytes(b"old file")
    paths = ck.Paths.beside(str(dest))
    with ck.DestLock(paths.lock, dest=paths.dest):
        with open(paths.part, "wb") as f:
            f.write(b"the single download's bytes")
        by, rows = run_batch(tmp_path, HookedStore(objs), objs)
        assert by["x.bin"].status == "failed" and by["x.bin"].error_kind == "locked"
        assert "another objget run is downloading to" in by["x.bin"].error
        assert dest.read_bytes() == b"old file"
        with open(paths.part, "rb") as f:
            assert f.read() == b"the single download's bytes"
        assert os.path.exists(paths.lock)
    assert rows["x.bin"].state == "failed"
    assert by["y.bin"].status == "downloaded" and (tmp_path / "y.bin").read_bytes() == b"y" * 10
    assert not (tmp_path / "y.bin.objget-lock").exists()  # released and removed


def test_a_single_download_started_during_a_small_object_is_refused(tmp_path):
    objs = {"d/x.bin": b"x" * 5000}
    store = HookedStore(objs)
    outcome = []

    def single_download_starts():
        lock = ck.DestLock(str(tmp_path / "d" / "x.bin.objget-lock"), dest="x")
        try:
            lock.acquire()
        except LockedError:
            outcome.append("refused")
        else:
            lock.release(remove=False)
            outcome.append("taken")

    store.hooks["d/x.bin"] = single_download_starts
    by, _ = run_batch(tmp_path, store, objs)
    assert outcome == ["refused"]
    assert by["d/x.bin"].status == "downloaded"
    assert (tmp_path / "d" / "x.bin").read_bytes() == objs["d/x.bin"]
    assert sorted(os.listdir(tmp_path / "d")) == ["x.bin"]


def test_a_swapped_temp_file_is_never_renamed_onto_dest(tmp_path):
    """Someone replaces DEST.objget-lock (the temp file) while the batch writes it: the
    batch's own bytes are on an unlinked inode, and the stranger's file is not renamed onto
    DEST, nor removed."""
    objs = {"x.bin": b"right bytes" * 100, "y.bin": b"y" * 100}
    store = HookedStore(objs)
    part = tmp_path / "x.bin.objget-lock"

    def swap():
        os.unlink(part)
        part.write_bytes(b"WRONG BYTES" * 100)

    store.hooks["x.bin"] = swap
    by, rows = run_batch(tmp_path, store, objs)
    assert by["x.bin"].status == "failed" and by["x.bin"].error_kind == "local"
    assert "was not renamed onto" in by["x.bin"].error
    assert not (tmp_path / "x.bin").exists()
    assert part.read_bytes() == b"WRONG BYTES" * 100
    assert rows["x.bin"].state == "failed"
    assert (tmp_path / "y.bin").read_bytes() == objs["y.bin"]


@pytest.mark.parametrize("size", [100, 1 * MiB + 100], ids=["one-chunk", "own-chunks"])
def test_a_parent_swapped_for_a_symlink_after_the_check_is_never_followed(tmp_path, size):
    """`sub` is visited (made) for `sub/c`; while `a` downloads, `sub` is moved away and a
    symlink to a directory outside takes its place. `sub/b` is then never written through
    the symlink: into the directory objget opened (same chunk), or refused (a later chunk,
    whose walk finds the symlink)."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    objs = {"sub/c": b"c" * size, "a": b"a" * size, "sub/b": b"b" * size}
    store = HookedStore(objs)

    def swap():
        os.rename(root / "sub", root / "sub.moved")
        os.symlink(outside, root / "sub")

    store.hooks["a"] = swap
    by, _ = run_batch(root, store, objs)
    assert list(outside.iterdir()) == []
    assert (root / "sub.moved" / "c").read_bytes() == objs["sub/c"]
    if size < MiB:
        assert by["sub/b"].status == "downloaded"
        assert (root / "sub.moved" / "b").read_bytes() == objs["sub/b"]
    else:
        assert by["sub/b"].status == "failed" and by["sub/b"].error_kind == "unsafe-path"
        assert "symlink" in by["sub/b"].error
        assert sorted(os.listdir(root / "sub.moved")) == ["c"]


def test_open_dir_walks_without_following_symlinks(tmp_path):
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    maker = ParentMaker(str(tmp_path))
    fd = maker.open_dir("real/deep")
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "real" / "deep"))
    finally:
        os.close(fd)
    with pytest.raises(UnsafePath, match="symlink"):
        maker.open_dir("link/deep")


def test_a_lock_left_by_a_run_killed_after_its_rename_is_removed_unless_held(tmp_path):
    """A run killed between the rename and the lock's removal: the re-run takes the object
    as committed and removes the stale lock file — but never one another run holds."""
    from objget.many._batch_journal import Row
    from objget.many._batch_skip import classify

    store = HookedStore({"a": b"a" * 10, "b": b"b" * 10})
    plan = [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=10, etag=store._etags[k])
        for k in ("a", "b")
    ]
    for k in ("a", "b"):
        (tmp_path / k).write_bytes(k.encode() * 10)
        (tmp_path / f"{k}.objget-lock").write_bytes(b"4242\n")
    held = ck.DestLock(str(tmp_path / "b.objget-lock"), dest="b")
    held.acquire()
    try:
        with Journal(str(tmp_path)) as jr:
            jr.put([Row.running(p, str(tmp_path / p.rel), absent=True) for p in plan])
            todo, skipped = classify(plan, jr.rows(), str(tmp_path), jr)
        assert todo == [] and len(skipped) == 2
        assert not (tmp_path / "a.objget-lock").exists()
        assert (tmp_path / "b.objget-lock").exists()
    finally:
        held.release(remove=True)


def test_a_large_object_whose_parent_became_a_symlink_is_refused(tmp_path):
    """The engine (large and mid-sized objects) makes its files by path: the directory is
    walked again right before it starts, so a parent swapped for a symlink since the batch
    first visited it is refused instead of followed."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    objs = {"sub/c": b"c" * 100, "a": b"a" * 100, "sub/big": b"B" * (9 * MiB)}
    store = HookedStore(objs)

    def swap():
        os.rename(root / "sub", root / "sub.moved")
        os.symlink(outside, root / "sub")

    store.hooks["a"] = swap
    plan = [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                etag=store._etags[k])
        for k, v in objs.items()
    ]  # fmt: skip
    cfg = DownloadConfig(max_workers=1, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(root)) as jr:
        runner = Runner(dl, str(root), jr)
        # small ones first (sub/c visits `sub`, `a` swaps it), then the 9 MiB one
        results = runner.run(plan[:2], {}) + runner.run(plan[2:], {})
    by = {r.source.removeprefix("mem://"): r for r in results}
    assert list(outside.iterdir()) == []
    assert by["sub/big"].status == "failed" and by["sub/big"].error_kind == "unsafe-path"
    assert sorted(os.listdir(root / "sub.moved")) == ["c"]


def test_the_lock_file_is_the_file_renamed_onto_dest(tmp_path, monkeypatch):
    """Each small object is written into its own DEST.objget-lock, and that very file (its
    inode) is what is renamed onto DEST: at each object's GET its lock name exists, is held
    (a single download is refused), no other lock or temp file is in the directory, and no
    lock file is left afterwards. (Main wrote a separate DEST.objget-part.)"""
    monkeypatch.setattr(_small_group, "SYNC_MOST", 1)
    objs = {f"d/o{i}": bytes([i]) * 300 for i in range(5)} | {"e/p0": b"p0", "e/p1": b"p1"}
    store = HookedStore(objs)
    seen: dict[str, tuple[int, list[str], bool]] = {}

    def look(key):
        def hook():
            folder = tmp_path / key.rpartition("/")[0]
            lock = tmp_path / f"{key}.objget-lock"
            try:
                ck.DestLock(str(lock), dest=key).acquire()
                refused = False
            except LockedError:
                refused = True
            sides = sorted(n for n in os.listdir(folder) if ".objget-" in n)
            seen[key] = (os.stat(lock).st_ino, sides, refused)

        return hook

    for key in objs:
        store.hooks[key] = look(key)
    by, _ = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values())
    for key, (ino, sides, refused) in seen.items():
        assert refused and sides == [f"{key.rpartition('/')[2]}.objget-lock"], (key, sides)
        assert os.stat(tmp_path / key).st_ino == ino  # the lock file became DEST
        assert (tmp_path / key).read_bytes() == objs[key]
    assert not [p for p in tmp_path.rglob("*") if ".objget-" in p.name and "batch" not in p.name]


def test_a_handover_onto_a_lock_another_run_holds_fails_only_that_object(tmp_path):
    objs = {"d/a": b"a" * 10, "d/b": b"b" * 10, "d/c": b"c" * 10}
    (tmp_path / "d").mkdir()
    other = ck.DestLock(str(tmp_path / "d" / "b.objget-lock"), dest="b")
    other.acquire()
    try:
        ino = os.stat(tmp_path / "d" / "b.objget-lock").st_ino
        by, _ = run_batch(tmp_path, HookedStore(objs), objs)
        assert [by[k].status for k in ("d/a", "d/b", "d/c")] == [
            "downloaded",
            "failed",
            "downloaded",
        ]
        assert by["d/b"].error_kind == "locked"
        assert os.stat(tmp_path / "d" / "b.objget-lock").st_ino == ino  # the holder's file
        assert sorted(os.listdir(tmp_path / "d")) == ["a", "b.objget-lock", "c"]
    finally:
        other.release(remove=True)
