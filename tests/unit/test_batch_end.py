"""The end of a batch waits for nothing: a listing that ends with nothing left to fetch (an
empty prefix, or a re-run in which every object is skipped as done) ends the driver's loop at
once, not after one more wait for a finished chunk (`_batch_chunks.TICK`, 0.1 s: a tenth of
a second of every such run; here made 30 s so that a wait shows)."""

from __future__ import annotations

import time

import pytest

from objget import DownloadConfig, Downloader
from objget.many import _batch_chunks
from objget.many._batch_feed import Feed
from objget.many._batch_journal import Journal
from objget.many._batch_run import Runner
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry


@pytest.mark.timeout(120)
@pytest.mark.parametrize("skipped", [0, 3])
def test_a_listing_with_nothing_to_fetch_ends_the_run_at_once(tmp_path, monkeypatch, skipped):
    monkeypatch.setattr(_batch_chunks, "TICK", 30.0)
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())

    def items():  # the listing's answer comes after the driver's first look
        time.sleep(0.3)
        yield None  # what the listing yields when a prefix ends

    def admit(got: list[object]) -> tuple[list[Planned], int]:
        return [], skipped  # every object listed was done already (or there were none)

    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        started = time.monotonic()
        results = Runner(dl, str(tmp_path), jr).run([], {}, more=Feed(items(), admit))  # type: ignore[arg-type]
        took = time.monotonic() - started
    assert results == []
    assert took < 10, f"the run waited {took:.1f} s for nothing"


@pytest.mark.timeout(120)
def test_the_last_object_ends_the_run_at_once(tmp_path, monkeypatch):
    """The listing ends before the last object finishes: the run ends when it does."""
    monkeypatch.setattr(_batch_chunks, "TICK", 30.0)
    store = MemoryBackend({"a": b"a" * 1000})
    todo = [Planned(source="mem://a", rel="a", backend=store, key="a", size=1000)]

    def items():
        time.sleep(0.3)
        yield from todo

    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    with Downloader(config=cfg) as dl, Journal(str(tmp_path)) as jr:
        started = time.monotonic()
        results = Runner(dl, str(tmp_path), jr).run([], {}, more=Feed(items(), lambda g: (g, 0)))  # type: ignore[arg-type]
        took = time.monotonic() - started
    assert [r.status for r in results] == ["downloaded"]
    assert (tmp_path / "a").read_bytes() == b"a" * 1000
    assert took < 10, f"the run waited {took:.1f} s for nothing"
