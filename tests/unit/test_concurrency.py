"""The stream controller against simulated paths: a fake clock, scripted rate functions
("streams -> aggregate bytes/s"), optional lumpy reads, late-starting streams and noise."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.engine._concurrency import ControllerSettings, StreamController

MB = 1_000_000
MiB = 1024 * 1024
RateFn = Callable[[float, int], float]  # (time, streams contributing) -> aggregate bytes/s


@dataclass
class Trace:
    points: list[tuple[float, int]] = field(default_factory=list)  # (time, target after it)
    phases: list[str] = field(default_factory=list)
    total: float = 0.0  # bytes delivered over the whole run

    def at(self, t: float) -> int:
        value = self.points[0][1]
        for when, target in self.points:
            if when > t:
                break
            value = target
        return value

    def between(self, t0: float, t1: float = float("inf")) -> list[int]:
        return [n for t, n in self.points if t0 <= t <= t1]

    def changes(self, t0: float = 0.0) -> int:
        seq = self.between(t0)
        return sum(1 for a, b in zip(seq, seq[1:], strict=False) if a != b)

    def first_time(self, pred: Callable[[int], bool], t0: float = 0.0) -> float | None:
        return next((t for t, n in self.points if t >= t0 and pred(n)), None)

    @property
    def final(self) -> int:
        return self.points[-1][1]

    @property
    def held(self) -> int:
        """The count of the last observation in the hold phase (not in a probe)."""
        pairs = zip(self.points[:0:-1], self.phases[::-1], strict=True)
        return next(n for (_, n), p in pairs if p == "hold")


def simulate(
    cfg: ControllerSettings,
    rate: RateFn,
    *,
    duration: float,
    tick: float = 0.1,
    step: float = 0.01,
    noise: float = 0.0,
    chunk: int = 0,
    start_delay: float = 0.0,
    jitter: bool = False,
    unequal: float = 0.0,
    burst: int = 0,
    seed: int = 0,
) -> Trace:
    """Run the controller as the engine would: observe about every `tick` seconds (random
    intervals in [0, 2*tick] with `jitter`); streams are added at once but deliver only
    after `start_delay`, removed at once; with `chunk`, each stream's bytes show up only in
    whole reads of that size; `noise` scales the rate of each tick by U(1-noise, 1+noise);
    `unequal` gives each stream a share weight U(1-unequal, 1+unequal) per tick (flows on
    one bottleneck never share it evenly, so their reads drift out of step); `burst` bytes
    come at once when a stream starts delivering (nginx `limit_rate` lets a connection's first
    second go out unthrottled)."""
    rng = random.Random(seed)
    ctl = StreamController(cfg, now=0.0)
    trace = Trace(points=[(0.0, ctl.target)])
    starts: list[float] = [0.0] * ctl.target  # when each running stream was started
    pending: list[float] = [0.0] * ctl.target  # bytes of a read not complete yet
    total = 0.0
    t = 0.0
    next_obs = tick
    factor = 1.0
    weights: list[float] = []
    while t < duration:
        t += step
        live = [i for i, s in enumerate(starts) if t - s >= start_delay]
        for i in live if burst else ():
            if t - starts[i] < start_delay + step:  # its first delivering step
                pending[i] += burst
                while chunk and pending[i] >= chunk:
                    pending[i] -= chunk
                    total += chunk
                if not chunk:
                    total += pending[i]
                    pending[i] = 0.0
        if live:
            agg = rate(t, len(live)) * factor * step
            weights += [1.0] * (len(starts) - len(weights))
            norm = sum(weights[i] for i in live)
            for i in live:
                share = agg * weights[i] / norm
                if chunk:
                    pending[i] += share
                    while pending[i] >= chunk:
                        pending[i] -= chunk
                        total += chunk
                else:
                    total += share
        if t >= next_obs:
            target = ctl.observe(t, int(total))
            assert cfg.min_streams <= target <= cfg.max_streams
            assert target == ctl.target
            trace.points.append((t, target))
            trace.phases.append(ctl.phase)
            del starts[target:], pending[target:]
            starts += [t] * (target - len(starts))
            pending += [0.0] * (target - len(pending))
            next_obs = t + (rng.uniform(0.0, 2 * tick) if jitter else tick)
            factor = rng.uniform(1 - noise, 1 + noise) if noise else 1.0
            weights = [rng.uniform(1 - unequal, 1 + unequal) for _ in starts]
    trace.total = total
    return trace


def capped(cap: float, link_streams: int) -> RateFn:
    """Each connection gets `cap`; the link carries `link_streams` caps at most."""
    return lambda t, n: cap * min(n, link_streams)


def saturated(rate: float, loss_per_stream: float = 0.0) -> RateFn:
    """One stream fills the path; each extra stream costs `loss_per_stream` of it (CPU)."""
    return lambda t, n: rate * max(0.1, 1 - loss_per_stream * (n - 1))


DEFAULT = ControllerSettings()


# --- saturated paths (loopback) ------------------------------------------------------
@pytest.mark.parametrize("loss", [0.0, 0.03])
def test_saturated_link_settles_at_one_or_two(loss):
    trace = simulate(DEFAULT, saturated(800 * MB, loss), duration=60)
    assert max(n for _, n in trace.points) <= 4
    assert set(trace.between(5)) <= {1, 2}
    assert trace.final == 1
    assert trace.at(5) == 1


def test_saturated_link_with_noise_stays_low():
    trace = simulate(DEFAULT, saturated(800 * MB, 0.02), duration=60, noise=0.15, seed=3)
    assert max(trace.between(3)) <= 2
    assert trace.changes() <= 14


# --- per-flow capped paths (internet) -----------------------------------------------
def test_per_flow_cap_reaches_the_ceiling_quickly():
    trace = simulate(DEFAULT, capped(4 * MB, 16), duration=20)
    reached = trace.first_time(lambda n: n >= 12)
    assert reached is not None and reached <= 0.5
    assert trace.final == 16
    assert min(trace.between(reached)) == 16  # still slow streams: the leap is not checked


def test_per_flow_cap_with_lumpy_reads_and_late_streams():
    """1 MiB reads at 4 MB/s per connection (4 rises a second per stream) and new streams
    that deliver only 0.4 s after they start (TLS handshakes on a long path)."""
    trace = simulate(
        DEFAULT,
        capped(4 * MB, 16),
        duration=30,
        chunk=MiB,
        start_delay=0.4,
        jitter=True,
        unequal=0.3,
    )
    reached = trace.first_time(lambda n: n >= 12)
    assert reached is not None and reached <= 8.0
    assert min(trace.between(reached)) >= 8
    assert trace.final >= 12


def test_ceiling_is_the_users_j():
    trace = simulate(ControllerSettings(max_streams=5), capped(4 * MB, 16), duration=20)
    assert max(n for _, n in trace.points) <= 5
    assert trace.final == 5


def test_mixed_cap_and_link_limit_settles_near_the_knee():
    trace = simulate(DEFAULT, capped(4 * MB, 6), duration=40)
    assert trace.held == 6
    assert set(trace.between(15)) <= {6, 12}  # 12 only while probing, less and less often
    assert sum(1 for n in trace.between(15) if n == 6) > 0.7 * len(trace.between(15))
    assert trace.total >= 0.9 * 6 * 4 * MB * 40


@pytest.mark.parametrize("seed", range(3))
def test_mixed_with_lumpy_reads_settles_near_the_knee(seed):
    """2 MB/s per connection, 1 MiB reads: each stream's count moves twice a second. The first
    step leaps 2 -> 16 (slow streams), so the search runs over 2..16 on lumpy counts: it may
    keep a few streams above the knee (no throughput lost), never below it."""
    trace = simulate(
        DEFAULT, capped(2 * MB, 6), duration=40, chunk=MiB, jitter=True, unequal=0.3, seed=seed
    )
    assert 6 <= trace.held <= 10
    assert trace.total >= 0.85 * 6 * 2 * MB * 40


def test_reads_in_lockstep_cost_no_throughput():
    """Worst case for the meter: streams started together deliver their reads at the same
    instants (groups of lumps). The count may stay above the knee, the rate must not drop."""
    trace = simulate(DEFAULT, capped(2 * MB, 6), duration=60, chunk=MiB, seed=2)
    assert trace.held >= 6
    assert trace.total >= 0.9 * 6 * 2 * MB * 60


def test_slow_connections_with_small_reads_still_climb():
    """200 kB/s per connection; the engine passes its read size (256 KiB here)."""
    cfg = ControllerSettings(read_size=256 * 1024)
    trace = simulate(cfg, capped(200_000, 16), duration=60, chunk=256 * 1024, unequal=0.3)
    reached = trace.first_time(lambda n: n >= 12)
    assert reached is not None and reached <= 15
    assert trace.held >= 12


def test_a_short_stall_of_every_stream_does_not_move_the_count():
    def rate(t, n):
        return 0.0 if 20 <= t < 21.5 else 4 * MB * min(n, 6)

    trace = simulate(DEFAULT, rate, duration=40)
    settled = trace.at(19.9)
    assert settled == 6
    assert all(n in (settled, 12) for n in trace.between(20))  # 12: the usual up-probe


# --- paths that change mid-download ------------------------------------------------
def test_degrading_path_is_followed_down():
    def rate(t, n):
        return 4 * MB * min(n, 16 if t < 20 else 4)

    trace = simulate(DEFAULT, rate, duration=50)
    assert trace.at(19) >= 12
    down = trace.first_time(lambda n: n <= 6, t0=20)
    assert down is not None and down <= 30
    assert trace.held in (4, 5)


def test_improving_path_is_followed_up():
    def rate(t, n):
        return 4 * MB * min(n, 4 if t < 20 else 16)

    trace = simulate(DEFAULT, rate, duration=80)
    assert trace.at(19) in (4, 5)
    up = trace.first_time(lambda n: n >= 12, t0=20)
    assert up is not None and up <= 60
    assert trace.final >= 12


def test_loopback_turning_into_capped_path_climbs():
    """Saturated by one stream first (held at 1), then per-flow capped."""

    def rate(t, n):
        return 500 * MB if t < 15 else 4 * MB * n

    trace = simulate(DEFAULT, rate, duration=40)
    assert trace.at(14) == 1
    assert trace.final == 16


# --- noise --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_noisy_measurements_do_not_oscillate(seed):
    trace = simulate(DEFAULT, capped(4 * MB, 6), duration=60, noise=0.15, seed=seed, jitter=True)
    assert trace.changes(t0=10) <= 12
    held = trace.between(10)
    assert sum(1 for n in held if 6 <= n <= 10) > 0.7 * len(held)  # the rest: probes
    # noise costs little throughput: at least 90% of the link over the whole minute
    assert trace.total >= 0.9 * 6 * 4 * MB * 60


@pytest.mark.parametrize("seed", range(3))
def test_noisy_per_flow_cap_still_climbs(seed):
    trace = simulate(DEFAULT, capped(4 * MB, 16), duration=30, noise=0.15, seed=seed)
    reached = trace.first_time(lambda n: n >= 12)
    assert reached is not None and reached <= 8
    assert trace.final >= 12


# --- pinning, settings, odd inputs --------------------------------------------------
def test_fixed_count_never_moves():
    trace = simulate(ControllerSettings.fixed(3), capped(4 * MB, 16), duration=10)
    assert {n for _, n in trace.points} == {3}
    ctl = StreamController(ControllerSettings(min_streams=1, max_streams=1), now=0.0)
    assert ctl.target == 1 and ctl.phase == "pinned"


def test_initial_is_clamped_into_the_range():
    assert StreamController(ControllerSettings(max_streams=1), now=0).target == 1
    assert StreamController(ControllerSettings(min_streams=4, initial=2), now=0).target == 4
    assert StreamController(ControllerSettings(initial=40), now=0).target == 16


BAD = "min_streams=0 max_streams=0 initial=0 window=0 window=20 gain=0 tolerance=1 change=0"
BAD += " smoothing=0 probe_interval=60 settle=-1 read_size=-1 first_look=0 first_look=1"
BAD += " hold_window=0"


@pytest.mark.parametrize("kwargs", [{k: int(v)} for k, v in (i.split("=") for i in BAD.split())])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ControllerSettings(**kwargs)


def test_no_bytes_means_no_decision():
    ctl = StreamController(DEFAULT, now=0.0)
    for i in range(1, 200):
        assert ctl.observe(i * 0.1, 0) == DEFAULT.initial
    assert ctl.phase == "climb"


def test_bytes_given_back_and_clock_going_back_are_tolerated():
    ctl = StreamController(DEFAULT, now=0.0)
    total = 0
    for i in range(1, 100):
        total += 1_000_000
        if i % 17 == 0:
            total -= 5_000_000  # a part rewound by the engine
        now = i * 0.1 - (0.5 if i % 23 == 0 else 0.0)
        assert 1 <= ctl.observe(now, max(total, 0)) <= 16


def test_reason_and_phase_are_reported():
    ctl = StreamController(DEFAULT, now=0.0)
    assert (ctl.reason, ctl.phase) == ("start", "climb")
    total = 0.0
    for i in range(1, 40):
        total += 0.1 * 4 * MB * ctl.target
        if ctl.observe(i * 0.1, int(total)) > 1:
            break
    assert ctl.target == 16 and ctl.reason == "climb 1->16: first window, slow streams"
    for j in range(i + 1, 60):
        total += 0.1 * 4 * MB * ctl.target
        ctl.observe(j * 0.1, int(total))
    assert (ctl.target, ctl.phase) == (16, "hold")  # the reason is the last change's


# --- properties -----------------------------------------------------------------------
@st.composite
def controller_settings(draw):
    lo = draw(st.integers(1, 8))
    hi = draw(st.integers(lo, 32))
    window = draw(st.floats(0.1, 2.0))
    probe = draw(st.floats(0.5, 10.0))
    return ControllerSettings(
        min_streams=lo,
        max_streams=hi,
        initial=draw(st.integers(1, 40)),
        window=window,
        first_look=window * draw(st.floats(0.1, 1.0)),
        hold_window=(hold := window * draw(st.floats(1.0, 4.0))),
        max_window=hold * draw(st.floats(1.0, 5.0)),
        settle=draw(st.floats(0.0, 1.0)),
        gain=draw(st.floats(0.01, 1.0)),
        tolerance=draw(st.floats(0.0, 0.5)),
        change=draw(st.floats(0.05, 0.9)),
        smoothing=draw(st.floats(0.05, 1.0)),
        probe_interval=probe,
        max_probe_interval=probe * draw(st.floats(1.0, 8.0)),
    )


@st.composite
def rate_functions(draw):
    cap = draw(st.floats(1e4, 1e9))
    knee = draw(st.integers(1, 40))
    slope = draw(st.floats(-0.1, 0.05))  # after the knee: falling (CPU) or slowly rising
    flip = draw(st.floats(0.0, 30.0))  # the path changes here
    knee2 = draw(st.integers(1, 40))

    def rate(t, n):
        k = knee if t < flip else knee2
        return cap * max(0.05, min(n, k) * (1 + slope * max(0, n - k)))

    return rate


@settings(max_examples=60, deadline=None)
@given(
    cfg=controller_settings(),
    rate=rate_functions(),
    noise=st.floats(0.0, 0.4),
    chunk=st.sampled_from([0, 64 * 1024, MiB]),
    seed=st.integers(0, 2**16),
)
def test_floor_and_ceiling_always_hold(cfg, rate, noise, chunk, seed):
    # simulate() asserts min <= target <= max at every observation
    trace = simulate(
        cfg, rate, duration=20, step=0.02, noise=noise, chunk=chunk, jitter=True, seed=seed
    )
    assert all(cfg.min_streams <= n <= cfg.max_streams for _, n in trace.points)


@settings(max_examples=200, deadline=None)
@given(
    cfg=controller_settings(),
    steps=st.lists(st.tuples(st.floats(0.0, 3.0), st.integers(-(10**6), 10**8)), max_size=300),
)
def test_any_observation_sequence_stays_in_range(cfg, steps):
    ctl = StreamController(cfg, now=0.0)
    now, total = 0.0, 0
    for dt, delta in steps:
        now += dt
        total = max(0, total + delta)
        n = ctl.observe(now, total)
        assert cfg.min_streams <= n <= cfg.max_streams
        assert n == ctl.target


def test_slow_streams_leap_to_the_ceiling_within_a_second():
    """An internet-like path: 20 MB/s per connection, room for 64. The first window at 2
    streams shows slow streams, so the count leaps x8, then x4 (linear) to the ceiling."""
    trace = simulate(ControllerSettings(max_streams=32), capped(20 * MB, 64), duration=10)
    reached = trace.first_time(lambda n: n >= 32)
    assert reached is not None and reached <= 1.5
    assert trace.between(0, reached) == sorted(trace.between(0, reached))  # only upwards


def test_fast_streams_do_not_leap():
    """One stream already moves 800 MB/s (loopback): the first step is a plain doubling."""
    trace = simulate(DEFAULT, saturated(800 * MB, 0.02), duration=10)
    assert max(n for _, n in trace.points) <= 4


# --- a fast climb on capped paths (issue 16) ------------------------------------------
ENGINE = ControllerSettings(max_streams=32, read_size=256 * 1024)  # the engine's defaults


def test_doctests_run():
    import doctest

    import objget.engine._concurrency
    import objget.engine._meter

    for module in (objget.engine._concurrency, objget.engine._meter):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize("burst", [0, 7 * MiB // 4])
def test_capped_path_leaps_on_its_first_window(burst):
    """4 MiB/s per connection (the bench's capped scenario), 256 KiB reads, streams that
    deliver 50 ms after they start, with and without nginx's first-second burst: one window
    of one slow stream is enough to leap to the ceiling, 0.3 s after the first byte (it took
    two windows, ~0.7 s here and 1.0-1.3 s from nginx: most of a 64 MiB download)."""
    trace = simulate(
        ENGINE, capped(4 * MiB, 64), duration=6, chunk=256 * 1024, start_delay=0.05, burst=burst
    )
    reached = trace.first_time(lambda n: n >= 32)
    assert reached is not None and reached <= 0.05 + 0.4
    assert min(trace.between(reached)) == 32  # no check by halving: the streams are still slow


@pytest.mark.parametrize("per_stream", [4 * MB, 80 * MB])
@pytest.mark.parametrize("ceiling", [8, 32, 128, 256])
def test_linear_path_reaches_the_ceiling_in_log_steps(per_stream, ceiling):
    """Every added stream adds its cap (room for all of them): the count reaches the ceiling
    in O(log N) steps, each a short window, and only ever goes up on the way."""
    cfg = ControllerSettings(max_streams=ceiling, read_size=256 * 1024)
    trace = simulate(cfg, capped(per_stream, 1024), duration=12, chunk=256 * 1024)
    reached = trace.first_time(lambda n: n >= ceiling)
    assert reached is not None
    climb = trace.between(0, reached)
    assert climb == sorted(climb)
    steps = len(set(climb)) - 1
    assert steps <= math.ceil(math.log2(ceiling) / 2) + 1
    assert reached <= (0.45 if per_stream < 10 * MB else 0.75) + 0.55 * (steps - 1)


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_slow_start_on_a_saturated_path_comes_back_down(seed):
    """A path one stream fills (800 MB/s, each extra stream costs 0.5%, as 16 streams cost 7%
    on loopback) whose first half second is slow (a store's first reads, TLS): a first window
    that sees only the slow part looks capped and leaps; at 32 the streams are no longer slow,
    so the leap is checked at half the count, which is as good, and the count comes back
    down. Most of the run holds one or two streams."""

    def rate(t, n):
        return 8 * MB if t < 0.5 else 800 * MB * (1 - 0.005 * (n - 1))

    jitter = seed is not None
    trace = simulate(ENGINE, rate, duration=30, chunk=256 * 1024, jitter=jitter, seed=seed or 0)
    if not jitter:
        assert max(n for _, n in trace.points) == 32  # the leap was taken...
    assert trace.held <= 2  # ...and undone
    assert set(trace.between(6)) <= {1, 2, 4}  # 4: an up-probe from 2
    assert trace.total >= 0.9 * 800 * MB * 29


def test_one_slow_stream_that_fills_the_link_is_not_undercut():
    """A slow link one stream fills (5 MB/s in all): the leap does not help, the count goes
    back to one stream and the link stays full."""
    trace = simulate(ENGINE, lambda t, n: 5 * MB, duration=30, chunk=256 * 1024)
    assert trace.held == 1
    assert trace.total >= 0.97 * 5 * MB * 30


def test_a_store_that_stalls_a_new_range_does_not_look_capped():
    """SeaweedFS sends the first MiBs of a large range, stalls for ~0.2 s, then streams at
    loopback speed: the stall with a trickle looks like a capped stream's silence between
    reads, so the first look lasts past it and the count does not leap."""

    def rate(t, n):
        if t < 0.03:
            return 150 * MB
        return 2 * MB if t < 0.23 else 800 * MB * (1 - 0.005 * (n - 1))

    trace = simulate(ENGINE, rate, duration=10, step=0.005, tick=0.02, chunk=256 * 1024)
    assert max(n for _, n in trace.points) <= 2


def test_fast_streams_only_after_a_window_of_fast_streams():
    """The scheduler's long parts wait for a measured window: unknown is not fast."""
    ctl = StreamController(ControllerSettings(max_streams=8), now=0.0)
    assert not ctl.fast_streams and not ctl.slow_streams
    ctl.observe(0.1, 0)
    t, total = 0.1, 0
    while ctl.target == 1 and t < 2:  # one stream at 500 MB/s
        t, total = t + 0.05, total + 25_000_000
        ctl.observe(t, total)
    assert ctl.fast_streams and not ctl.slow_streams
    slow = StreamController(ControllerSettings(max_streams=8), now=0.0)
    slow.observe(0.1, 0), slow.observe(0.2, 400_000), slow.observe(0.5, 1_600_000)
    assert slow.slow_streams and not slow.fast_streams
