"""How many small objects a batch fetches at once: the stream controller fed objects finished
(`_batch_chunks.small_controller`), driven here by made-up paths (a fake clock, no threads)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from objget.many._batch_chunks import FLOOR, START, small_controller


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


def test_it_starts_below_the_budget():
    assert small_controller(32, 1, now=0.0).target == START == 16


def test_a_latency_bound_path_leaps_to_the_ceiling_and_stays():
    counts = run(lambda n: n * 20.0)  # 50 ms an object: each worker moves 20 a second
    assert counts.index(32) < 50  # within half a second
    assert set(counts[counts.index(32) :]) == {32}


def test_a_saturated_path_goes_down_to_the_floor():
    counts = run(lambda n: 1200.0)  # loopback: the cores are the limit, not the workers
    assert counts[-1] == FLOOR == 8  # tried double once, then fewer, as good
    assert sum(c == FLOOR for c in counts) > 0.7 * len(counts)


def test_a_path_where_more_workers_help_a_little_climbs():
    counts = run(lambda n: 1000.0 * 1.15 ** n.bit_length())  # +15 % a doubling
    assert counts[-1] == 32


def test_a_path_that_scales_to_sixteen_holds_sixteen():
    counts = run(lambda n: min(n, 16) * 100.0)  # 10 ms an object, 16 fill the link
    assert counts[-1] == 16
    assert max(counts) <= 32


@pytest.mark.parametrize("budget", [1, 4, 12])
def test_a_budget_below_the_start_is_the_ceiling(budget):
    counts = run(lambda n: n * 20.0, budget=budget)
    assert counts[0] == counts[-1] == budget and max(counts) == budget


def test_min_workers_equal_to_the_budget_pins_the_count():
    assert set(run(lambda n: 1200.0, budget=12, least=12)) == {12}
