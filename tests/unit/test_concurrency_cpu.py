"""The stream controller fed the process's CPU time (issue 16, HTTPS): on a CPU-bound path
(TLS on loopback: one stream keeps a core busy, more streams move no more bytes and cost
more CPU per byte in contention) it turns a step up back after one window and never climbs
past what the cores can feed; on capped paths (little CPU per stream) it climbs as before."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from objget.engine._concurrency import ControllerSettings, StreamController
from objget.engine._meter import RateMeter

MB = 1_000_000
MiB = 1024 * 1024
Fn = Callable[[float, int], float]  # (time, streams) -> bytes/s, or CPU seconds per byte


def engine(cores: float, max_streams: int = 32) -> ControllerSettings:
    return ControllerSettings(max_streams=max_streams, read_size=256 * 1024, cores=cores)


def run(
    cfg: ControllerSettings,
    rate: Fn,
    cost: Fn,
    *,
    duration: float,
    feed: bool = True,
    noise: float = 0.0,
    seed: int = 0,
    startup: float = 0.0,
) -> list[tuple[float, int, str]]:
    """The engine's loop: an observation every 20 ms with the bytes and the process's CPU
    seconds so far (`cost` per byte, plus 0.02 cores of bookkeeping, plus `startup` CPU
    seconds spread over the first 0.1 s: handshakes, the first checkpoint). `noise` scales the
    rate by U(1-noise, 1+noise) for stretches of 0.15-0.45 s (other processes on the
    cores, the server's own hiccups: not smoothed away inside one window)."""
    rng = random.Random(seed)
    ctl = StreamController(cfg, now=0.0)
    points = [(0.0, ctl.target, ctl.phase)]
    t = total = cpu = 0.0
    step, tick, factor, next_obs, next_noise = 0.005, 0.02, 1.0, 0.02, 0.0
    while t < duration:
        t += step
        if noise and t >= next_noise:
            factor = rng.uniform(1 - noise, 1 + noise)
            next_noise = t + rng.uniform(0.15, 0.45)
        moved = rate(t, ctl.target) * factor * step
        total += moved
        cpu += moved * cost(t, ctl.target) + 0.02 * step + (startup * step / 0.1 if t < 0.1 else 0)
        if t >= next_obs:
            n = ctl.observe(t, int(total), cpu if feed else None)
            assert cfg.min_streams <= n <= cfg.max_streams
            points.append((t, n, ctl.phase))
            next_obs = t + tick
    return points


def time_above(points: list[tuple[float, int, str]], n: int) -> float:
    return sum(b[0] - a[0] for a, b in zip(points, points[1:], strict=False) if a[1] > n)


def tls_loopback(t: float, n: int) -> float:
    """One stream fills the path (client and server share the cores): flat with streams."""
    return 700 * MB


def contended(t: float, n: int) -> float:
    """CPU per byte rises with streams: 1.3 ns/byte alone (0.9 cores at 700 MB/s), +12%
    per extra stream (GIL hand-offs, more connections, smaller reads)."""
    return 1.3e-9 * (1 + 0.12 * (n - 1))


# --- CPU-bound paths -----------------------------------------------------------------
def test_a_step_up_on_a_cpu_bound_path_is_turned_back_after_one_window():
    """1 -> 2 gains nothing and costs 12% more CPU per byte: back to one stream after one
    window at two (0.2 s settle + 0.3 s), not two windows (0.8 s at two streams without the
    CPU time: most of what is left of a 1 GiB download at 700 MB/s)."""
    points = run(engine(cores=2), tls_loopback, contended, duration=4)  # the probe: later
    assert time_above(points, 1) <= 0.6
    assert max(n for _, n, _ in points) == 2
    assert points[-1][1] == 1


def test_without_cpu_time_the_same_path_takes_two_windows():
    """The control: nothing fed, nothing learnt (the controller as before)."""
    points = run(engine(cores=2), tls_loopback, contended, duration=4, feed=False)
    assert time_above(points, 1) >= 0.75


def test_a_small_gain_for_more_cpu_is_judged_on_two_windows_as_before():
    """Two streams move 7% more for 12% more CPU per byte (the server's share of the cores
    freed up now and then): one window is not enough to tell that from noise, so the mean
    of two decides, as without the CPU time."""

    def rate(t: float, n: int) -> float:
        return 700 * MB * (1.07 if n > 1 else 1.0)

    fed = run(engine(cores=2), rate, contended, duration=4)
    unfed = run(engine(cores=2), rate, contended, duration=4, feed=False)
    assert time_above(fed, 1) == pytest.approx(time_above(unfed, 1), abs=0.05)
    assert time_above(fed, 1) >= 0.75


@pytest.mark.parametrize("seed", range(12))
def test_noise_does_not_climb_past_what_the_cores_can_feed(seed):
    """Windows off by up to 30% (others on the two cores) make a step look like a gain now
    and then; the count still never goes past what two cores can feed (each stream keeps
    one nearly busy), and comes back to one or two."""
    points = run(engine(cores=2), tls_loopback, contended, duration=4, noise=0.3, seed=seed)
    assert max(n for _, n, _ in points) <= 3
    assert points[-1][1] <= 2


def test_streams_that_need_a_core_each_stop_at_the_cores():
    """100 MB/s per connection, 5 ns of CPU per byte (0.5 cores per stream), two cores: four
    streams fill the CPU (400 MB/s). The climb stops there, at once, instead of trying 8 and
    16 and searching back down over seconds."""

    def rate(t: float, n: int) -> float:
        return min(n * 100 * MB, 400 * MB)

    points = run(engine(cores=2), rate, lambda t, n: 5e-9, duration=8)
    assert max(n for _, n, _ in points) == 4
    assert points[-1][1:] == (4, "hold")
    reached = next(t for t, n, _ in points if n == 4)
    assert reached <= 1.5


def test_one_core_and_a_stream_that_keeps_it_busy_stays_at_one():
    points = run(engine(cores=1), tls_loopback, contended, duration=4)
    assert {n for _, n, _ in points} == {1}


def test_an_up_probe_on_a_cpu_bound_hold_is_turned_back_after_one_window():
    """Held at one stream, the probe to two comes every few seconds; each one costs one
    window (and its settle), not two."""
    points = run(engine(cores=2), tls_loopback, contended, duration=40)
    probes = [t for (t, n, _), (_, m, _) in zip(points, points[1:], strict=False) if n < m]
    assert len(probes) >= 3
    assert time_above(points, 1) <= 0.6 * len(probes)


def test_fast_streams_that_leave_the_cpu_idle_double_at_the_first_look():
    """700 MB/s from the first byte at 0.3 ns of CPU per byte (0.2 cores: plain HTTP from a
    fast LAN server, the count rising at every observation): the first step comes 0.1 s
    after the first byte (it waited for two 0.3 s windows)."""
    points = run(engine(cores=2), tls_loopback, lambda t, n: 0.3e-9, duration=2)
    assert next(t for t, n, _ in points if n == 2) <= 0.15


@pytest.mark.parametrize("feed", [True, False])
def test_fast_streams_that_keep_a_core_busy_wait_for_the_windows(feed):
    """The same rate over TLS on loopback (a core per stream), or with no CPU time: a second
    stream can only contend for the cores, so it is tried only after two windows, as before
    (a download of a few hundred MiB ends before it)."""
    points = run(engine(cores=2), tls_loopback, contended, duration=2, feed=feed)
    assert next(t for t, n, _ in points if n == 2) >= 0.55


# --- capped paths (little CPU per stream) climb as before ---------------------------
def test_a_capped_path_with_cpu_time_fed_still_leaps_to_the_ceiling():
    """4 MiB/s per connection over TLS (1.3 ns/byte: 0.005 cores per stream)."""
    points = run(engine(cores=2), lambda t, n: 4 * MiB * n, lambda t, n: 1.3e-9, duration=4)
    reached = next(t for t, n, _ in points if n == 32)
    assert reached <= 0.45
    assert min(n for t, n, _ in points if t >= reached) == 32


def test_start_up_cpu_of_slow_streams_does_not_cap_the_leap():
    """The first 0.1 s of a download also spend CPU on other things than bytes (TLS
    handshakes, the first checkpoint: 30 ms here, 0.3 cores over the first look): slow
    streams' CPU says nothing about the cores they need, so the leap still goes to 32."""
    points = run(
        engine(cores=2), lambda t, n: 4 * MiB * n, lambda t, n: 1.3e-9, duration=4, startup=0.03
    )
    assert max(n for _, n, _ in points) == 32


def test_a_cpu_bound_path_that_turns_into_a_capped_one_climbs():
    def rate(t: float, n: int) -> float:
        return 700 * MB if t < 10 else 4 * MB * n

    points = run(engine(cores=2), rate, contended, duration=30)
    assert [n for t, n, _ in points if 5 < t < 10 and n > 2] == []
    assert points[-1][1] == 32


def test_unknown_cores_ignore_cpu_time():
    fed = run(engine(cores=0), tls_loopback, contended, duration=6)
    unfed = run(engine(cores=0), tls_loopback, contended, duration=6, feed=False)
    assert fed == unfed


# --- settings and the meter ------------------------------------------------------------
def test_cores_are_unknown_by_default_and_cannot_be_negative():
    assert ControllerSettings().cores == 0  # the engine passes them; a batch's count has none
    with pytest.raises(ValueError):
        ControllerSettings(cores=-1)
    with pytest.raises(ValueError):
        ControllerSettings(fast_look=1e6)  # under fast_stream
    with pytest.raises(ValueError):
        ControllerSettings(idle_look=-1)


def test_the_meter_reports_the_load_of_the_window_that_closed():
    m = RateMeter(window=0.3, max_window=10.0, now=0.0)
    assert m.feed(0.1, 1000, 5.0) is None and m.load is None
    assert m.feed(0.5, 5000, 5.2) == pytest.approx(10_000) and m.load == pytest.approx(0.5)
    assert m.feed(0.9, 9000) == pytest.approx(10_000) and m.load is None  # no CPU time
    m.feed(1.3, 13_000, 4.0)
    assert m.feed(1.7, 17_000, 3.0) == pytest.approx(10_000) and m.load is None  # went back
