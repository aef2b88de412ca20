"""How many small objects a batch fetches at once: the stream controller fed objects finished
(`_batch_chunks.small_controller`), driven here by made-up paths (a fake clock, no threads)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from objget.many._batch_chunks import START, small_controller


def run(rate: Callable[[int], float], *, budget: int = 32, least: int = 1, seconds: float = 8.0
        ) -> list[int]:  # fmt: skip
    """The counts chosen every 10 ms while `rate(n)` objects a second finish at `n` at once."""
    ctl = small_controller(budget, least, now=0.0)
    done, counts, now = 0.0, [], 0.0
    while now < seconds:
        now += 0.01
        done += rate(ctl.target) * 0.01
        counts.append(ctl.observe(now, int(done)))
    return counts


def test_it_starts_low():
    assert small_controller(32, 1, now=0.0).target == START == 8


def test_a_latency_bound_path_leaps_to_the_ceiling_and_stays():
    counts = run(lambda n: n * 20.0)  # 50 ms an object: each worker moves 20 a second
    assert counts.index(32) < 50  # within half a second
    assert set(counts[counts.index(32) :]) == {32}


def test_a_saturated_path_stays_low():
    counts = run(lambda n: 1200.0)  # loopback: the cores are the limit, not the workers
    assert max(counts) <= 16  # tried double, once
    assert counts[-1] == START
    assert sum(c == START for c in counts) > 0.8 * len(counts)


def test_a_path_that_scales_to_sixteen_holds_sixteen():
    counts = run(lambda n: min(n, 16) * 100.0)  # 10 ms an object, 16 fill the link
    assert counts[-1] == 16
    assert max(counts) <= 32


@pytest.mark.parametrize("budget", [1, 4])
def test_a_budget_below_the_start_is_the_count(budget):
    assert set(run(lambda n: n * 20.0, budget=budget)) == {budget}


def test_min_workers_equal_to_the_budget_pins_the_count():
    assert set(run(lambda n: 1200.0, budget=12, least=12)) == {12}
