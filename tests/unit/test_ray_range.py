"""The Ray range path without a cluster: `run_range` against objget.testing's in-memory store
(its backend resolution patched), and the driver on an in-process stand-in for Ray.

- checkpoints are saved in the single-object order (snapshot, then fdatasync) and never after
  a failed fdatasync;
- a task that resumes reads its resumed spans back and fetches bad ones again;
- the driver checks resumed spans before it commits: changed bytes are an IntegrityError,
  never a file committed as verified.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from pathlib import Path

import pytest

from objget import distributed as _batch_ray
from objget._config import DownloadConfig
from objget.backends import BackendOptions, Resolved
from objget.distributed import Driver, RangeJob, RayRunner, picklable, run_range
from objget.engine import _checkpoint, _checkpoint_record
from objget.engine._downloader import Downloader
from objget.engine._fileio import open_part
from objget.engine._windows import range_paths
from objget.integrity.crc64 import Crc64, crc64
from objget.many._batch_journal import Journal
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

from ..faults._ray_inline import InlineRay

MiB = 1024 * 1024
SIZE = 4 * MiB
RANGE = 1 * MiB


def payload(size: int = SIZE, seed: int = 5) -> bytes:
    return random.Random(seed).randbytes(size)


def make_store(data: bytes, *, crc: bool) -> MemoryBackend:
    summer = Crc64(expected=crc64(data)) if crc else None
    return MemoryBackend({"k": data}, checksummer=summer)


@pytest.fixture
def use_store(monkeypatch):
    """`use_store(store)`: range tasks resolve every source to `store`, key "k"."""

    def use(store: MemoryBackend) -> None:
        monkeypatch.setattr(_batch_ray, "resolve", lambda *a, **k: Resolved(backend=store, key="k"))

    return use


def config(**kw: object) -> DownloadConfig:
    kw.setdefault("retry", no_wait_retry())
    kw.setdefault("buffer_size", 64 * 1024)
    kw.setdefault("part_size", 256 * 1024)
    kw.setdefault("max_workers", 2)
    return DownloadConfig(**kw)  # type: ignore[arg-type]


def make_part(dest: Path, size: int) -> None:
    """What the driver does before range tasks run: the temp file at its full size."""
    fd = open_part(f"{dest}.objget-part", fresh=True)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def job(store: MemoryBackend, dest: Path, start: int, stop: int) -> RangeJob:
    meta = store.head("k")
    return RangeJob(
        source="memory://k", dest=str(dest), start=start, stop=stop, meta=picklable(meta)
    )


# --- save order and the sync-failed latch ---------------------------------------------------


def test_no_checkpoint_is_written_after_a_failed_fdatasync(tmp_path, use_store, monkeypatch):
    data = payload()
    store = make_store(data, crc=False)
    use_store(store)
    dest = tmp_path / "obj.bin"
    make_part(dest, SIZE)
    events: list[str] = []
    real_save = _checkpoint.save

    def fdatasync(fd: int) -> None:
        events.append("sync")
        if events.count("sync") == 2:
            events.append("sync failed")
            raise OSError(errno.EIO, "Input/output error (injected)")

    def save(path: str, ckpt: _checkpoint_record.Checkpoint) -> None:
        events.append("checkpoint")
        real_save(path, ckpt)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(_checkpoint, "save", save)
    cfg = config(checkpoint_interval=0.01, limit_rate=4 * MiB)
    out = run_range(job(store, dest, 0, SIZE), cfg, BackendOptions())
    assert "sync failed" in events, events
    assert out.error is not None and out.error_kind == "local", out
    after = events[events.index("sync failed") + 1 :]
    assert "checkpoint" not in after, events  # and no second sync "succeeding" either
    assert "sync" not in after, events


def test_a_checkpoint_claims_only_bytes_written_before_its_sync(tmp_path, use_store, monkeypatch):
    """The fake fdatasync makes the file's content at that moment "the disk" and then takes
    its time (workers keep writing meanwhile); each checkpoint saved after it may claim only
    bytes the disk holds."""
    data = payload()
    store = make_store(data, crc=True)
    use_store(store)
    dest = tmp_path / "obj.bin"
    make_part(dest, SIZE)
    disk: dict[int, bytes] = {}
    real_save = _checkpoint.save
    checked: list[tuple[int, int]] = []  # (bytes claimed, bytes claimed not on the disk)

    def fdatasync(fd: int) -> None:
        disk[threading.get_ident()] = os.pread(fd, SIZE, 0)
        time.sleep(0.03)

    def save(path: str, ckpt: _checkpoint_record.Checkpoint) -> None:
        image = disk[threading.get_ident()]
        claimed = wrong = 0
        for s in ckpt.spans:
            claimed += s.stop - s.start
            got, want = image[s.start : s.stop], data[s.start : s.stop]
            wrong += sum(1 for a, b in zip(got, want, strict=True) if a != b)
        checked.append((claimed, wrong))
        real_save(path, ckpt)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(_checkpoint, "save", save)
    cfg = config(checkpoint_interval=0.0, limit_rate=4 * MiB)
    out = run_range(job(store, dest, 0, SIZE), cfg, BackendOptions())
    assert out.error is None, out
    assert (tmp_path / "obj.bin.objget-part").read_bytes() == data
    assert len([c for c in checked if 0 < c[0] < SIZE]) >= 2, checked  # saves mid-download
    assert [w for _, w in checked if w] == [], checked


def test_the_shared_saver_snapshots_before_the_sync_and_latches(tmp_path, monkeypatch):
    from objget.engine._plan import Span
    from objget.engine._saver import DurableSaver, save_quietly

    calls: list[str] = []
    fail = [False]

    def fdatasync(fd: int) -> None:
        calls.append("sync")
        if fail[0]:
            raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    path = str(tmp_path / "c.ckpt")
    view = lambda: (calls.append("snapshot"), ((Span(0, 10, None),), 0))[1]  # noqa: E731
    record = lambda done: _checkpoint_record.Checkpoint(  # noqa: E731
        source="s", identity={"etag": "e"}, checksum=None, spans=done
    )
    dropped: list[bool] = []
    saver = DurableSaver(
        0, path, view=view, record=record, on_sync_failed=lambda: dropped.append(True)
    )
    saver()
    assert calls == ["snapshot", "sync"] and _checkpoint.load(path) is not None
    os.remove(path)
    fail[0] = True
    assert save_quietly(saver) is False and saver.sync_failed and dropped == [True]
    fail[0] = False
    saver()  # a later sync would "succeed": nothing is saved any more
    assert calls == ["snapshot", "sync", "snapshot", "sync"] and not os.path.exists(path)


# --- resumed spans are read back ------------------------------------------------------------


def spoil(part: Path, offset: int, how: str) -> None:
    """Zeros (a write the disk never got) or other bytes (a stale copy) at `offset`."""
    new = bytes(8192) if how == "zeros" else random.Random(9).randbytes(8192)
    with open(part, "r+b") as f:
        f.seek(offset)
        f.write(new)


@pytest.mark.parametrize("crc", [True, False], ids=["store-crc", "no-store-crc"])
@pytest.mark.parametrize("how", ["zeros", "stale"])
def test_a_task_refetches_resumed_spans_that_do_not_read_back(tmp_path, use_store, crc, how):
    data = payload()
    store = make_store(data, crc=crc)
    use_store(store)
    dest = tmp_path / "obj.bin"
    part = tmp_path / "obj.bin.objget-part"
    make_part(dest, SIZE)
    first = run_range(job(store, dest, 0, SIZE), config(), BackendOptions())
    assert first.error is None and first.fetched == SIZE
    spoil(part, SIZE // 2 + 100, how)  # after its checkpoint: a lost node's lost write
    again = run_range(job(store, dest, 0, SIZE), config(), BackendOptions())
    assert again.error is None, again
    assert again.fetched > 0, "the spoiled span was resumed as it is"
    assert part.read_bytes() == data
    assert [(s.start, s.stop) for s in again.spans] == [(0, SIZE)]


# --- the driver -----------------------------------------------------------------------------


def drive(root: Path, store: MemoryBackend, ray: InlineRay, range_size: int = RANGE) -> list:
    results: list = []
    planned = Planned(source="memory://k", rel="obj.bin", backend=store, key="k", size=SIZE,
                      etag=store.head("k").etag)  # fmt: skip
    cfg = config()
    with Downloader(config=cfg) as dl, Journal(str(root)) as journal:
        settings = RayRunner(group_size=1, group_bytes=1, range_size=range_size,
                             task_connections=2, max_retries=0)  # fmt: skip
        driver = Driver(ray, dl, str(root), journal, settings, on_progress=None,
                        on_result=results.append)  # fmt: skip
        driver.run([planned], skipped=0)
    return results


def ranges_done_then_driver_lost(root: Path, store: MemoryBackend) -> None:
    """Every range task finished and saved its checkpoint; the driver died before its commit."""
    dest = root / "obj.bin"
    make_part(dest, SIZE)
    for start in range(0, SIZE, RANGE):
        out = run_range(job(store, dest, start, start + RANGE), config(), BackendOptions())
        assert out.error is None


@pytest.mark.parametrize("crc", [True, False], ids=["store-crc", "no-store-crc"])
def test_driver_rerun_after_resumed_bytes_were_lost_commits_the_right_bytes(
    tmp_path, use_store, crc
):
    data = payload()
    store = make_store(data, crc=crc)
    use_store(store)
    ranges_done_then_driver_lost(tmp_path, store)
    spoil(tmp_path / "obj.bin.objget-part", RANGE + 5000, "zeros")
    results = drive(tmp_path, store, InlineRay())
    assert [r.status for r in results] == ["downloaded"], results
    assert (tmp_path / "obj.bin").read_bytes() == data
    assert results[0].result.bytes_fetched > 0


@pytest.mark.parametrize("crc", [True, False], ids=["store-crc", "no-store-crc"])
def test_driver_does_not_commit_resumed_bytes_changed_before_its_commit(tmp_path, use_store, crc):
    data = payload()
    store = make_store(data, crc=crc)
    use_store(store)
    ranges_done_then_driver_lost(tmp_path, store)
    part = tmp_path / "obj.bin.objget-part"

    def change_range_2(value: object) -> None:  # after the task checked it, before the commit
        if getattr(value, "start", None) == 2 * RANGE:
            spoil(part, 2 * RANGE + 77, "stale")

    results = drive(tmp_path, store, InlineRay(after=change_range_2))
    assert [(r.status, r.error_kind) for r in results] == [("failed", "integrity")], results
    assert "2097152-3145728" in (results[0].error or "")
    assert not (tmp_path / "obj.bin").exists()
    assert not os.path.exists(range_paths(str(tmp_path / "obj.bin"), 2 * RANGE).checkpoint)
    assert os.path.exists(range_paths(str(tmp_path / "obj.bin"), RANGE).checkpoint)
    again = drive(tmp_path, store, InlineRay())  # the next run fetches range 2 again
    assert [r.status for r in again] == ["downloaded"], again
    assert (tmp_path / "obj.bin").read_bytes() == data
    assert again[0].result.bytes_fetched == RANGE


@pytest.mark.parametrize("before,now", [(2 * RANGE, RANGE), (RANGE, 2 * RANGE)])
def test_a_rerun_with_other_range_sizes_resumes_only_what_lies_in_each_range(
    tmp_path, use_store, before, now
):
    """Checkpoints of a run with one range size, then a run with another: a task must not
    report spans of its old checkpoint outside its range (the task for that range fetches
    them), or the driver's spans overlap and the object can never be committed; and the old
    run's range files go when the object is committed."""
    data = payload()
    store = make_store(data, crc=True)
    use_store(store)
    dest = tmp_path / "obj.bin"
    make_part(dest, SIZE)
    for start in range(0, SIZE, before):  # the first run: every range done, then lost
        out = run_range(job(store, dest, start, start + before), config(), BackendOptions())
        assert out.error is None
    results = drive(tmp_path, store, InlineRay(), range_size=now)
    assert [r.status for r in results] == ["downloaded"], results
    assert (tmp_path / "obj.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir() if ".objget-" in p.name) == sorted(
        p.name for p in tmp_path.iterdir() if ".objget-batch" in p.name
    )


def test_driver_never_renames_a_temp_file_it_did_not_verify(tmp_path, use_store, monkeypatch):
    """The driver's commit is the engine's: between its checks and its rename, another file put
    at the temp path (another program in the directory) is refused, not renamed onto DEST."""
    from objget.engine import _phases

    data = payload()
    store = make_store(data, crc=True)
    use_store(store)
    ranges_done_then_driver_lost(tmp_path, store)
    planted = tmp_path / "planted"
    planted.write_bytes(b"not the object")
    real_stamp = _phases.stamp

    def swap_then_stamp(fd: int, last_modified: str | None) -> bool:
        os.replace(planted, tmp_path / "obj.bin.objget-part")
        return real_stamp(fd, last_modified)

    monkeypatch.setattr(_phases, "stamp", swap_then_stamp)
    results = drive(tmp_path, store, InlineRay())
    assert [(r.status, r.error_kind) for r in results] == [("failed", "local")], results
    assert "removed or replaced" in (results[0].error or "")
    assert not (tmp_path / "obj.bin").exists()


def test_distributed_download_many_names_every_argument_of_download_many():
    """Its batch arguments are named and typed (no `**batch` pass-through), so mypy checks a
    call's arguments; each one is `objget.download_many`'s, with the same default."""
    import inspect

    import objget
    from objget import distributed

    ray = inspect.signature(distributed.download_many).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in ray.values())
    for name, p in inspect.signature(objget.download_many).parameters.items():
        if name != "runner":
            assert (ray[name].default, ray[name].annotation) == (p.default, p.annotation), name


# --- group tasks ------------------------------------------------------------------------------


class CountingStore(MemoryBackend):
    """Counts HEADs; resolves every source `memory://KEY` to KEY."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self.heads = 0

    def head(self, key, *, version_id=None):
        self.heads += 1
        return super().head(key, version_id=version_id)


def test_a_group_task_fetches_small_objects_as_the_local_batch_does(tmp_path, monkeypatch):
    """A Ray group task runs its objects as the local runner does: a listed small object in
    one GET (the engine's single-request mode, no HEAD), a manifest entry (size unknown) in one
    GET when nothing is at its destination; a source that does not resolve fails alone; the
    results come back in the entries' order."""
    from objget.distributed import run_group
    from objget.many._batch_sources import Listed

    objs = {f"d/o{i}": bytes([i]) * (100 + i) for i in range(6)}
    store = CountingStore(objs)

    def fake_resolve(source, *_a, **_k):
        if source == "memory://bad":
            raise ValueError("unsupported source 'memory://bad'")
        return Resolved(backend=store, key=source.removeprefix("memory://"))

    monkeypatch.setattr(_batch_ray, "resolve", fake_resolve)
    entries = [
        Listed(source=f"memory://{k}", rel=k, size=len(v), etag=store._etags[k])
        for k, v in list(objs.items())[:4]
    ]
    entries += [Listed(source=f"memory://{k}", rel=k) for k in list(objs)[4:]]
    entries.insert(2, Listed(source="memory://bad", rel="bad"))
    results = run_group(entries, str(tmp_path), config(), BackendOptions(), 2)
    assert [r.source for r in results] == [e.source for e in entries]
    assert [r.status for r in results] == ["downloaded"] * 2 + ["failed"] + ["downloaded"] * 4
    assert results[2].error_kind == "usage" and "memory://bad" in (results[2].error or "")
    assert store.heads == 0, "a small object took a HEAD before its GET"
    for k, v in objs.items():
        assert (tmp_path / k).read_bytes() == v
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(k[2:] for k in objs)


def test_a_group_task_lists_a_big_directory_no_further_than_its_objects(tmp_path, monkeypatch):
    """Every group task looks at its directories afresh: into a directory of many files it
    reads no more names than it has objects (the rest is an lstat each), so a flat prefix of
    N objects costs no N x N / group_size names read over the whole run."""
    objs = {f"d/o{i}": bytes([i]) * 10 for i in range(4)}
    store = CountingStore(objs)
    resolve = lambda source, *_a, **_k: Resolved(backend=store, key=source.split("//")[1])  # noqa: E731
    monkeypatch.setattr(_batch_ray, "resolve", resolve)
    (tmp_path / "d").mkdir()
    for i in range(500):
        (tmp_path / "d" / f"other{i}").write_bytes(b"")
    read: list[str] = []
    real = os.scandir

    class Counted:
        def __init__(self, where):
            self._it = real(where)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._it.close()

        def __iter__(self):
            for entry in self._it:
                read.append(entry.name)
                yield entry

    monkeypatch.setattr(os, "scandir", Counted)
    from objget.distributed import run_group
    from objget.many._batch_sources import Listed

    entries = [Listed(source=f"memory://{k}", rel=k, size=10, etag=store._etags[k]) for k in objs]
    results = run_group(entries, str(tmp_path), config(), BackendOptions(), 2)
    assert [r.status for r in results] == ["downloaded"] * 4
    assert len(read) < 50, f"{len(read)} names read for {len(entries)} objects"
    for k, v in objs.items():
        assert (tmp_path / k).read_bytes() == v
