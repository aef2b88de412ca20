"""The listing streamed into the runner (`Feed` + `Runner.run(more=...)`): objects arriving
while others download are all fetched; a listing that fails part-way stops the batch with
its error after the objects already finished are journaled done."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from objget import DownloadConfig, Downloader, TransportError
from objget.many._batch_feed import Feed
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry


def Listed(items: Iterator[Planned]) -> Feed:  # noqa: N802
    """A Feed of Planned objects (what batch.py makes, without the journal checks)."""
    return Feed(items, lambda got: (got, 0), join_timeout=10)


def listed(store, objects, gate: threading.Event | None = None, fail_after: int | None = None):
    for i, (k, v) in enumerate(objects.items()):
        if fail_after is not None and i == fail_after:
            raise TransportError("listing: connection reset", source="mem://")
        if gate is not None and i == len(objects) // 2:
            assert gate.wait(10), "no object finished while the listing was held"
        yield Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                      etag=store._etags[k])  # fmt: skip


@pytest.mark.timeout(60)
def test_objects_listed_later_are_fetched_and_earlier_ones_start_before_the_listing_ends(
    tmp_path,
):
    objs = {f"d/{i:03d}": bytes([i]) * (100 + i) for i in range(40)}
    store = MemoryBackend(objs)
    finished = threading.Event()  # the listing's second half waits for a first result
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        runner = Runner(dl, str(tmp_path), jr, on_result=lambda _out: finished.set())
        results = runner.run([], {}, more=Listed(listed(store, objs, finished)))
        rows = jr.rows()
    assert sorted(r.status for r in results) == ["downloaded"] * len(objs)
    assert all(rows[k].state == "done" for k in objs)
    for k, v in objs.items():
        assert (tmp_path / k).read_bytes() == v


@pytest.mark.timeout(60)
def test_a_listing_failing_part_way_raises_after_journaling_what_finished(tmp_path):
    objs = {f"d/{i:03d}": bytes([i]) * 100 for i in range(20)}
    store = MemoryBackend(objs)
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    seen = []
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        runner = Runner(dl, str(tmp_path), jr, on_result=seen.append)
        with pytest.raises(TransportError, match="listing"):
            runner.run([], {}, more=Listed(listed(store, objs, fail_after=10)))
        rows = jr.rows()
    done = {k for k, r in rows.items() if r.state == "done"}
    assert done == {out.source.removeprefix("mem://") for out in seen}
    assert done <= set(list(objs)[:10])
    for k in done:
        assert (tmp_path / k).read_bytes() == objs[k]


def test_drain_reads_the_whole_listing_in_the_callers_thread_and_raises_its_error():
    """What the Ray runner reads before it plans: every item, no thread of its own; the
    listing's error after the items it gave is raised, not lost with them."""
    objs = {f"k{i}": b"x" * i for i in range(1, 6)}
    store = MemoryBackend(objs)
    threads = threading.active_count()
    more = Listed(listed(store, objs))
    todo, skipped = more.drain()
    assert [p.rel for p in todo] == list(objs) and skipped == 0
    assert threading.active_count() == threads
    with pytest.raises(TransportError, match="listing"):
        Listed(listed(store, objs, fail_after=3)).drain()
