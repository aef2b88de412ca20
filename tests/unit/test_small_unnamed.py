"""A small object with nothing at its destination is written to an unnamed file (`O_TMPFILE`)
and linked onto DEST once it is durable: no temp name is ever made (so none can be swapped,
none is left by a crash, none is renamed). Where DEST exists meanwhile, or unnamed files or
hard links are refused, the bytes reach DEST through the named temp file and its checked
rename, and the object is still downloaded."""

from __future__ import annotations

import errno
import os

import pytest

from objget import DownloadConfig, Downloader
from objget.engine import _unnamed
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import no_wait_retry

from .test_batch_small_guards import HookedStore

LAST_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.fixture(autouse=True)
def _usable_again(monkeypatch):
    """Whatever a test turns off, the process's flag is as it was afterwards."""
    monkeypatch.setitem(_unnamed._state, "usable", _unnamed._state["usable"])


def run_batch(root, store, objects):
    """The batch runner on one connection, every object listed with LAST_MODIFIED."""
    plan = [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                etag=store._etags[k], last_modified=LAST_MODIFIED)
        for k, v in objects.items()
    ]  # fmt: skip
    cfg = DownloadConfig(max_workers=1, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(root)) as jr:
        results = Runner(dl, str(root), jr).run(plan, {}, skipped=0)
        rows = jr.rows()
    return {r.source.removeprefix("mem://"): r for r in results}, rows


def names_during_gets(tmp_path, store, objs):
    """The names in `d/` when each object's GET is answered."""
    seen: dict[str, list[str]] = {}
    for key in objs:
        store.hooks[key] = lambda key=key: seen.setdefault(key, sorted(os.listdir(tmp_path / "d")))
    return seen


def test_a_new_object_never_has_a_temp_name(tmp_path):
    """While each object's bytes arrive, its directory holds the objects before it and the
    lock, never `DEST.objget-part`; each DEST appears complete, with the object's mtime."""
    objs = {f"d/o{i}": bytes([i]) * (5000 + i) for i in range(4)}
    store = HookedStore(objs)
    seen = names_during_gets(tmp_path, store, objs)
    by, rows = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert all(r.state == "done" for r in rows.values())
    for i, key in enumerate(objs):
        assert seen[key] == [f"o{j}" for j in range(i)] + [f"o{i}.objget-lock"], seen
        assert (tmp_path / key).read_bytes() == objs[key]
    assert sorted(os.listdir(tmp_path / "d")) == [f"o{i}" for i in range(4)]
    assert int(os.stat(tmp_path / "d" / "o0").st_mtime) == 784111777


def test_a_dest_made_during_the_get_is_replaced_through_the_named_temp_file(tmp_path):
    """Someone writes DEST after the listing found nothing there: the link refuses to replace
    it, so the bytes go to the named temp file, renamed over DEST (as a single download
    replaces an existing DEST); nothing else is left."""
    objs = {"d/a": b"right bytes" * 1000, "d/b": b"b" * 100}
    store = HookedStore(objs)
    (tmp_path / "d").mkdir()
    store.hooks["d/a"] = lambda: (tmp_path / "d" / "a").write_bytes(b"someone else's")
    by, _ = run_batch(tmp_path, store, objs)
    assert by["d/a"].status == "downloaded", by["d/a"].error
    assert (tmp_path / "d" / "a").read_bytes() == objs["d/a"]
    assert sorted(os.listdir(tmp_path / "d")) == ["a", "b"]
    assert _unnamed.unnamed_usable()  # an existing DEST is no reason to stop using them


def test_where_hard_links_are_refused_the_bytes_are_copied_to_the_named_temp_file(
    tmp_path, monkeypatch
):
    """The link onto DEST fails (EPERM): the written bytes are copied into the named temp
    file (times kept) and renamed onto DEST — no object fails, nothing is fetched twice; the
    objects after it use the named temp file from the start."""
    real = os.link
    links: list[str] = []

    def refuse_proc_links(src, dst, **kw):
        if isinstance(src, str) and src.startswith("/proc/self/fd/"):
            links.append(dst)
            raise OSError(errno.EPERM, "Operation not permitted")
        return real(src, dst, **kw)

    monkeypatch.setattr(_unnamed.os, "link", refuse_proc_links)
    objs = {f"d/o{i}": bytes([i]) * 300_000 for i in range(3)}  # more than one buffer's copy
    store = HookedStore(objs)
    by, _ = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values()), by
    assert links == ["o0"]  # tried once, then not again in this process
    assert not _unnamed.unnamed_usable()
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data
        assert int(os.stat(tmp_path / key).st_mtime) == 784111777
    assert sorted(os.listdir(tmp_path / "d")) == [f"o{i}" for i in range(3)]


def test_where_unnamed_files_are_refused_the_named_temp_file_is_used(tmp_path, monkeypatch):
    """A filesystem without `O_TMPFILE` (EOPNOTSUPP): asked once, then the named temp file
    and its checked rename, as before."""
    real = os.open
    asked: list[int] = []

    def no_tmpfile(path, flags, *args, **kw):
        if flags & _unnamed._O_TMPFILE == _unnamed._O_TMPFILE:
            asked.append(flags)
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(_unnamed.os, "open", no_tmpfile)
    objs = {f"d/o{i}": bytes([i]) * 100 for i in range(3)}
    store = HookedStore(objs)
    seen = names_during_gets(tmp_path, store, objs)
    by, _ = run_batch(tmp_path, store, objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert len(asked) == 1
    assert "o1.objget-part" in seen["d/o1"]  # the named temp file, while its GET runs
    assert sorted(os.listdir(tmp_path / "d")) == [f"o{i}" for i in range(3)]


def test_each_linked_file_is_fsynced_after_its_link_before_the_group_ends(tmp_path, monkeypatch):
    """A directory fsync does not write a linked file's inode everywhere (ext4 without a
    journal: after a power cut the entry would name an inode whose link count is still 0,
    which fsck deletes). So every unnamed file is fsynced once more after its link, before
    the directory's fsync that ends the group (and before the journal says done)."""
    from objget.engine import _dirs

    events: list[tuple[str, object]] = []
    real_link, real_fsync, real_dir_fsync = os.link, os.fsync, _dirs._fsync_dir

    def link(src, dst, **kw):
        real_link(src, dst, **kw)
        if isinstance(src, str) and src.startswith("/proc/self/fd/"):
            events.append(("link", os.fstat(int(src.rsplit("/", 1)[1])).st_ino))

    def fsync(fd):
        real_fsync(fd)
        events.append(("fsync", os.fstat(fd).st_ino))

    def dir_fsync(fd, parent):
        real_dir_fsync(fd, parent)
        events.append(("dir", parent))

    monkeypatch.setattr(_unnamed.os, "link", link)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(_dirs, "_fsync_dir", dir_fsync)
    objs = {f"d/o{i:02d}": bytes([i]) * 100 for i in range(20)}  # more than LINKED at once
    by, rows = run_batch(tmp_path, HookedStore(objs), objs)
    assert all(r.status == "downloaded" for r in by.values())
    assert all(r.state == "done" for r in rows.values())
    links = [(i, ino) for i, (kind, ino) in enumerate(events) if kind == "link"]
    assert len(links) == len(objs)
    dir_syncs = [i for i, (kind, _) in enumerate(events) if kind == "dir"]
    for i, ino in links:
        after = [j for j, ev in enumerate(events) if ev == ("fsync", ino) and j > i]
        assert after and after[0] < min(j for j in dir_syncs if j > i), (ino, events)
