"""The first look on paths that deliver in lumps (issue 16): nginx `limit_rate` sends each
request's first 2 MiB at once (one sendfile chunk), then 2 MiB every 0.5 s at 4 MiB/s, so a
single stream is silent after its first lump; SeaweedFS may go silent for ~0.2 s after the first
MiBs of a large range, then streams at loopback speed."""

from __future__ import annotations

import pytest

from objget.engine._concurrency import ControllerSettings, StreamController

from .test_concurrency import MB, MiB, capped, simulate

ENGINE = ControllerSettings(max_streams=32, read_size=256 * 1024)  # the engine's defaults
FINE = {"step": 0.005, "tick": 0.02}  # the engine observes every 20 ms


@pytest.mark.parametrize("seed", range(4))
def test_a_path_paced_in_lumps_leaps_within_a_quarter_second(seed):
    """Silence after the first lump counts as slow once the look is long enough: the leap to
    the ceiling comes ~0.2 s after the first byte (it waited for the next lump, 0.5 s, when
    only a window that moved could be slow), and the count stays at the ceiling."""
    trace = simulate(ENGINE, capped(4 * MiB, 64), duration=5, chunk=2 * MiB, burst=2 * MiB,
                     start_delay=0.01, jitter=True, seed=seed, **FINE)  # fmt: skip
    reached = trace.first_time(lambda n: n >= 32)
    assert reached is not None and reached <= 0.01 + 0.25
    assert trace.final == 32


@pytest.mark.parametrize("lump", [4 * MiB, 8 * MiB])
def test_a_store_silent_after_a_lump_of_a_few_mib_does_not_look_capped(lump):
    """A lump of 4 MiB or more, then 0.25 s of silence (the longest stall seen was 0.17 s, on
    two busy cores), then loopback speed: judged with the lump, the first look is not slow
    (4 MiB in 0.26 s is 16 MB/s)."""

    def rate(t, n):
        return 0.0 if t < 0.25 else 800 * MB * (1 - 0.005 * (n - 1))

    trace = simulate(
        ENGINE, rate, duration=5, burst=lump, chunk=256 * 1024, start_delay=0.01, **FINE
    )
    assert max(n for _, n in trace.points) <= 2


def test_a_short_stall_after_a_small_first_lump_is_not_judged():
    """1 MiB, then 0.15 s of nothing (SeaweedFS on two busy cores), then loopback speed:
    moving slowly is clear after `first_look`, silence only after `quiet_look`."""

    def rate(t, n):
        return 0.0 if t < 0.16 else 800 * MB * (1 - 0.005 * (n - 1))

    trace = simulate(
        ENGINE, rate, duration=3, burst=MiB, chunk=256 * 1024, start_delay=0.01, **FINE
    )
    assert max(n for _, n in trace.points) <= 2


def test_silence_before_the_first_byte_is_not_judged():
    """A long wait for the first byte (a slow store, a far server) is no evidence: the look
    starts on the first byte, and the bytes that came with it are judged over the time since
    the observation before them."""
    ctl = StreamController(ENGINE, now=0.0)
    for i in range(1, 50):
        assert ctl.observe(i * 0.02, 0) == 1
    assert ctl.observe(1.0, 3 * MiB) == 1  # the first bytes: 3 MiB in the last 20 ms
    assert ctl.observe(1.1, 3 * MiB) == 1  # silent for 0.1 s: too early to tell
    assert ctl.observe(1.2, 3 * MiB) == 1  # 3 MiB in 0.22 s: 14 MB/s, not slow
    assert ctl.observe(1.3, 3 * MiB) == 32  # 3 MiB in 0.32 s: under 12 MB/s, a capped path
    assert ctl.reason == "climb 1->32: first window, slow streams"


def test_a_leap_on_a_stall_is_undone_at_once():
    """A store silent for 0.3 s after a first lump of 1 MiB looks capped and the count leaps;
    at the top the streams move the path's full rate (not slow): the count goes straight back
    to where it leapt from (it halved its way down, 32-16-8-4-2-1, over ~2.5 s)."""

    def rate(t, n):
        return 0.0 if t < 0.3 else 800 * MB * (1 - 0.005 * (n - 1))

    trace = simulate(ENGINE, rate, duration=5, burst=MiB, chunk=256 * 1024, start_delay=0.01,
                     **FINE)  # fmt: skip
    leap = trace.first_time(lambda n: n >= 32)
    assert leap is not None  # the stall looks like a capped path's pause...
    back = trace.first_time(lambda n: n < 32, t0=leap)
    assert back is not None and back - leap <= 1.0
    assert trace.at(back) == 1 and trace.held == 1  # ...and is undone in one step


def test_slow_streams_is_what_the_last_window_saw():
    """The engine sizes parts by it: short ones only where each stream is slow."""
    ctl = StreamController(ENGINE, now=0.0)
    assert not ctl.slow_streams  # nothing measured yet: the usual 8 MiB floor
    total = 0
    for i in range(1, 40):
        total += int(0.02 * 4 * MiB * ctl.target)  # a capped path, 4 MiB/s per stream
        ctl.observe(i * 0.02, total)
    assert ctl.target == 32 and ctl.slow_streams
    fast = StreamController(ENGINE, now=0.0)
    for i in range(1, 40):
        fast.observe(i * 0.02, i * 16 * MiB)  # 800 MiB/s on one stream
    assert fast.target <= 2 and not fast.slow_streams


@pytest.mark.parametrize("seed", range(3))
def test_a_smoothly_capped_path_leaps_a_tenth_of_a_second_after_the_first_byte(seed):
    """A per-flow cap without lumps (4 MiB/s, 256 KiB reads: the first lands at 0.07 s): the
    first 0.1 s of one stream say it all; each tenth of a second waited for is 12 MiB not
    moved by 31 more streams."""
    trace = simulate(ENGINE, capped(4 * MiB, 64), duration=3, chunk=256 * 1024,
                     start_delay=0.01, jitter=True, seed=seed, **FINE)  # fmt: skip
    reached = trace.first_time(lambda n: n >= 32)
    assert reached is not None and reached <= 0.07 + 0.14
    assert trace.final == 32
