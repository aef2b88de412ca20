"""What a batch overlaps with its downloads (docs/batch.md, "Where the wall time goes"): the
listing's first request goes out while the journal is being made, and the spare DEST locks are
released by the workers once nothing more starts, beside the last downloads, not after them."""

from __future__ import annotations

import threading
import time

import pytest

from objget import DownloadConfig, Downloader, LockedError, batch
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry


def planned(store: MemoryBackend, objs: dict[str, bytes]) -> list[Planned]:
    return [Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                    etag=store._etags[k]) for k, v in objs.items()]  # fmt: skip


@pytest.mark.timeout(60)
def test_the_listing_starts_before_the_journal_is_made(tmp_path, monkeypatch):
    objs = {f"d/{i:02d}": bytes([i]) * 300 for i in range(10)}
    store = MemoryBackend(objs)
    listing = threading.Event()
    seen: list[bool] = []

    def plan_stream(*_a: object, **_k: object):
        listing.set()
        yield from planned(store, objs)

    class Journaled(Journal):
        def __init__(self, directory: str, **kw: bool) -> None:
            seen.append(listing.wait(5))  # main made the journal first: this wait timed out
            super().__init__(directory, **kw)

    monkeypatch.setattr(batch, "plan_stream", plan_stream)
    monkeypatch.setattr(batch, "Journal", Journaled)
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    result = batch.download_many("s3://bucket/d/", tmp_path, config=cfg)
    assert seen == [True]
    assert len(result.downloaded) == len(objs) and not result.failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # journal and locks removed
    for k, v in objs.items():
        assert (tmp_path / k).read_bytes() == v


@pytest.mark.timeout(60)
def test_a_locked_journal_fails_at_once_though_the_listing_waits_for_its_answer(
    tmp_path, monkeypatch
):
    answer = threading.Event()

    def plan_stream(*_a: object, **_k: object):
        answer.wait(30)  # a listing request still out
        yield from ()

    monkeypatch.setattr(batch, "plan_stream", plan_stream)
    try:
        with Journal(str(tmp_path)):
            started = time.monotonic()
            with pytest.raises(LockedError):
                batch.download_many("s3://bucket/d/", tmp_path)
            took = time.monotonic() - started
    finally:
        answer.set()
    assert took < 1.5, f"the locked batch waited {took:.1f} s for its listing"


class Held(MemoryBackend):
    """`slow`'s GET waits for `gate`."""

    def __init__(self, objs: dict[str, bytes], slow: str, gate: threading.Event) -> None:
        super().__init__(objs)
        self.slow, self.gate = slow, gate

    def get_range(self, key, rng, *, meta):  # type: ignore[no-untyped-def]
        if key == self.slow:
            assert self.gate.wait(20), "the test never opened the gate"
        return super().get_range(key, rng, meta=meta)


@pytest.mark.timeout(60)
def test_no_lock_file_stays_beside_finished_objects_while_the_last_download_runs(tmp_path):
    objs = {**{f"a/{i}": bytes([i]) * 500 for i in range(8)}, "b/x": b"x" * 500}
    gate = threading.Event()
    store = Held(objs, "b/x", gate)
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    locks: list[str] = ["not looked at"]

    def look() -> None:  # while b/x waits: a/'s chunk is done, no lock file is left there
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                done = all((tmp_path / f"a/{i}").exists() for i in range(8))
                locks[:] = sorted(p.name for p in (tmp_path / "a").glob("*.objget-lock"))
                if done and not locks:
                    return
                time.sleep(0.02)
        finally:
            gate.set()

    looker = threading.Thread(target=look)
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        looker.start()
        results = Runner(dl, str(tmp_path), jr).run(planned(store, objs), {})
    looker.join(10)
    assert locks == [], f"lock files left beside a/ while b/x still ran: {locks}"
    assert sorted(r.status for r in results) == ["downloaded"] * len(objs)
    assert not list(tmp_path.rglob("*.objget-lock"))
    for k, v in objs.items():
        assert (tmp_path / k).read_bytes() == v
