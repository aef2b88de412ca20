"""The batch driver's pool (`many/_batch_pool.py`) behaves as the part of concurrent.futures it
stands for: each scenario runs on both and must come out the same."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from typing import Any

import pytest

from objget.many import _batch_pool as bp

KINDS = {"ours": bp, "stdlib": cf}


class Stop(BaseException):
    pass


def _pool(kind: str, workers: int) -> Any:
    return KINDS[kind].ThreadPoolExecutor(workers, thread_name_prefix="t")


@pytest.mark.parametrize("kind", KINDS)
def test_results_exceptions_and_callbacks(kind):
    seen: list[tuple[str, object]] = []
    with _pool(kind, 2) as pool:
        ok = pool.submit(lambda a, b: a + b, 1, 2)
        bad = pool.submit(lambda: 1 / 0)
        stop = pool.submit(lambda: (_ for _ in ()).throw(Stop()))
        for name, fut in (("ok", ok), ("bad", bad), ("stop", stop)):
            fut.add_done_callback(lambda f, n=name: seen.append((n, f.done())))
    assert ok.result() == 3 and ok.exception() is None
    with pytest.raises(ZeroDivisionError):
        bad.result()
    assert isinstance(bad.exception(), ZeroDivisionError)
    assert isinstance(stop.exception(), Stop)  # a BaseException fails the future too
    assert sorted(seen) == [("bad", True), ("ok", True), ("stop", True)]
    late: list[object] = []
    ok.add_done_callback(late.append)  # already done: called at once, in this thread
    assert late == [ok]


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_only_what_has_not_started_and_wait(kind):
    gate = threading.Event()
    called: list[object] = []
    with _pool(kind, 1) as pool:
        first = pool.submit(gate.wait, 5)
        time.sleep(0.05)  # the worker has taken it
        second = pool.submit(lambda: "never")
        second.add_done_callback(called.append)
        assert not first.cancel() and not first.cancelled()
        assert second.cancel() and second.cancel() and second.cancelled() and second.done()
        assert called == [second]
        done, pending = KINDS[kind].wait([first, second], timeout=0.05)
        # a cancelled future counts as done in ours at once, in the standard library's once a
        # worker took it off the queue (the driver skips cancelled ones either way)
        assert first in pending and first not in done and second.cancelled()
        with pytest.raises(KINDS[kind].CancelledError):
            second.result()
        gate.set()
        done, pending = KINDS[kind].wait([first, second], timeout=5)
        assert done == {first, second} and not pending
    assert first.result() is True


@pytest.mark.parametrize("kind", KINDS)
def test_threads_reused_up_to_max_and_joined(kind):
    before = threading.active_count()
    names: set[str] = set()
    with _pool(kind, 3) as pool:
        for _ in range(5):  # one at a time: the idle thread takes the next
            pool.submit(lambda: names.add(threading.current_thread().name)).result()
        assert len(names) == 1
        gate = threading.Event()
        futs = [pool.submit(gate.wait, 5) for _ in range(6)]
        time.sleep(0.05)
        assert threading.active_count() - before == 3
        gate.set()
    assert all(f.result() for f in futs)
    assert threading.active_count() == before  # leaving the block joined them
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_the_pool_is_not_concurrent_futures():
    assert bp.ThreadPoolExecutor is not cf.ThreadPoolExecutor
    with pytest.raises(ValueError):
        bp.ThreadPoolExecutor(0)
