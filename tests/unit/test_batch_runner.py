"""The batch runner against an in-memory store: one connection budget for all objects,
per-object failures, and an interrupt that stops every engine and journals what finished."""

from __future__ import annotations

import threading

import pytest

from objget import AccessDenied, DownloadConfig, Downloader
from objget.many._batch_journal import Journal
from objget.many._batch_run import LARGE, Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024


class CountingStore(MemoryBackend):
    """Counts response bodies open at once; `deny` keys answer 403."""

    def __init__(self, objects, **kw):
        super().__init__(objects, **kw)
        self.open = 0
        self.peak = 0
        self.deny: set[str] = set()
        self._count_lock = threading.Lock()

    def get_range(self, key, rng, *, meta):
        if key in self.deny:
            raise AccessDenied(f"access to mem://{key} denied (HTTP 403)", status=403)
        body = super().get_range(key, rng, meta=meta)
        with self._count_lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        close = body.close

        def counted_close():
            with self._count_lock:
                self.open -= 1
            close()

        body.close = counted_close
        return body


def planned(store, objects, *, etags=False):
    return [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                etag=store._etags[k] if etags else None)
        for k, v in objects.items()
    ]  # fmt: skip


def objects_for_budget():
    objs = {f"big{i}.bin": bytes([i]) * (LARGE + MiB) for i in range(2)}
    objs.update({f"small/{i:03d}": bytes([i % 251]) * (i * 10) for i in range(60)})
    return objs


@pytest.mark.parametrize("budget", [1, 3, 8])
def test_connections_never_exceed_the_budget(tmp_path, budget):
    objs = objects_for_budget()
    store = CountingStore(objs, read_delay=0.0005)
    cfg = DownloadConfig(max_workers=budget, part_size=1 * MiB, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        results = Runner(dl, str(tmp_path), jr).run(planned(store, objs), {})
    assert sorted(r.status for r in results) == ["downloaded"] * len(objs)
    assert 1 <= store.peak <= budget
    if budget > 2:  # a large object gets several connections of the budget (how many each
        # gets depends on what else holds connections when it starts: at least one of the two)
        assert max(r.result.workers for r in results if r.source.startswith("mem://big")) >= 2
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data


def test_one_failing_object_does_not_stop_the_others(tmp_path):
    objs = {f"o{i}": bytes([i]) * 1000 for i in range(20)}
    store = CountingStore(objs)
    store.deny.add("o7")
    seen = []
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        runner = Runner(dl, str(tmp_path), jr, on_result=seen.append)
        results = runner.run(planned(store, objs), {})
        rows = jr.rows()
    failed = [r for r in results if r.status == "failed"]
    assert [(r.source, r.error_kind) for r in failed] == [("mem://o7", "access-denied")]
    assert len(seen) == 20 and not (tmp_path / "o7").exists()
    assert rows["o7"].state == "failed" and rows["o7"].error_kind == "access-denied"
    assert sum(r.state == "done" for r in rows.values()) == 19


@pytest.mark.interrupt
def test_an_interrupt_stops_the_engines_and_journals_what_finished(tmp_path):
    objs = {f"o{i:02d}": bytes([i]) * (256 * 1024) for i in range(40)}
    store = CountingStore(objs, read_delay=0.002)
    before = threading.active_count()
    calls = 0

    def progress(snap):
        nonlocal calls
        calls += 1
        if snap.objects_done >= 5:
            raise KeyboardInterrupt

    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        runner = Runner(dl, str(tmp_path), jr, on_progress=progress)
        with pytest.raises(KeyboardInterrupt):
            runner.run(planned(store, objs), {})
        rows = jr.rows()
    assert threading.active_count() == before
    done = {k for k, r in rows.items() if r.state == "done"}
    assert 5 <= len(done) < 40
    for key in done:
        assert (tmp_path / key).read_bytes() == objs[key]
    assert all(r.state in ("done", "running") for r in rows.values())


def test_small_listed_objects_take_one_request_each_and_are_verified(tmp_path):
    import hashlib

    from objget.testing import Fault

    objs = {f"s{i}": bytes([i]) * (5000 + i) for i in range(12)}
    objs["empty"] = b""
    store = CountingStore(objs, faults=[Fault.short_body(100), Fault.reset_after(10)])
    plan = [
        Planned(
            source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
            etag=store._etags[k],
            sha256=("0" * 64 if k == "s3" else hashlib.sha256(v).hexdigest()),
        )
        for k, v in objs.items()
    ]  # fmt: skip
    cfg = DownloadConfig(max_workers=3, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        results = Runner(dl, str(tmp_path), jr).run(plan, {})
    by = {r.source: r for r in results}
    assert by["mem://s3"].error_kind == "integrity" and not (tmp_path / "s3").exists()
    assert not (tmp_path / "s3.objget-part").exists()
    for key, data in objs.items():
        if key != "s3":
            assert (tmp_path / key).read_bytes() == data
            assert by[f"mem://{key}"].result.verified == ("size", "sha256")
    assert len(store.requests) == 12 + 2  # one GET per non-empty object, plus two retries


def test_small_objects_replace_leftovers_and_never_follow_a_planted_symlink(tmp_path):
    objs = {"a": b"A" * 3000, "d/b": b"B" * 10, "d/c": b"C" * 7}
    (tmp_path / "a.objget-part").write_bytes(b"stale temp data")
    (tmp_path / "a.objget-ckpt").write_bytes(b"stale checkpoint")
    (tmp_path / "d").mkdir()
    outside = tmp_path / "outside"
    (tmp_path / "d" / "b.objget-part").symlink_to(outside)
    store = CountingStore(objs)
    plan = planned(store, objs, etags=True)
    cfg = DownloadConfig(max_workers=2, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        results = Runner(dl, str(tmp_path), jr).run(plan, {})
        rows = jr.rows()
    assert sorted(r.status for r in results) == ["downloaded"] * 3
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data
        assert rows[key].state == "done"
    assert not outside.exists()
    left = sorted(
        p.name for p in tmp_path.rglob("*") if "objget-part" in p.name or "ckpt" in p.name
    )
    assert left == []


def test_a_directory_fsync_that_fails_leaves_its_objects_failed_not_done(tmp_path, monkeypatch):
    import errno

    import objget.engine._dirs as dirs

    objs = {f"bad/o{i}": b"x" * 100 for i in range(3)} | {
        f"good/o{i}": b"y" * 100 for i in range(3)
    }
    store = CountingStore(objs)
    plan = planned(store, objs, etags=True)
    real = dirs._fsync_dir

    def fsync_dir(fd, parent):
        if parent == "bad":
            raise OSError(errno.EIO, "Input/output error")
        real(fd, parent)

    monkeypatch.setattr(dirs, "_fsync_dir", fsync_dir)
    cfg = DownloadConfig(max_workers=2, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        results = Runner(dl, str(tmp_path), jr).run(plan, {})
        rows = jr.rows()
    by = {r.source: r for r in results}
    for key in objs:
        if key.startswith("bad/"):
            assert by[f"mem://{key}"].error_kind == "local"
            assert "fsync" in by[f"mem://{key}"].error
            assert rows[key].state == "failed"
        else:
            assert by[f"mem://{key}"].status == "downloaded" and rows[key].state == "done"


@pytest.mark.parametrize("etags", [True, False], ids=["small-path", "engine"])
def test_limit_rate_caps_the_whole_batch_not_each_object(tmp_path, etags):
    """Eight objects of 96 KiB under a 256 KiB/s limit: 768 KiB take about 3 s (less the
    0.25 s burst), whichever path they take; one limiter per object would take 0.4 s."""
    import time

    objs = {f"o{i}.bin": bytes([i]) * (96 * 1024) for i in range(8)}
    store = CountingStore(objs)
    cfg = DownloadConfig(max_workers=8, limit_rate=256 * 1024, retry=no_wait_retry())
    started = time.monotonic()
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        results = Runner(dl, str(tmp_path), jr).run(planned(store, objs, etags=etags), {})
    elapsed = time.monotonic() - started
    assert sorted(r.status for r in results) == ["downloaded"] * len(objs)
    total = sum(len(v) for v in objs.values())
    assert elapsed >= 0.85 * total / (256 * 1024), elapsed
    for key, data in objs.items():
        assert (tmp_path / key).read_bytes() == data
