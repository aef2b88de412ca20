"""PURE: the tuning of the stream controller (`_concurrency.StreamController`).

>>> ControllerSettings.fixed(4).max_streams
4
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ControllerSettings"]


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class ControllerSettings:
    """Tuning of the stream controller; the defaults suit both loopback and internet paths.

    `initial` is 1: on a saturated path (loopback) one stream is already at the limit and any
    extra one costs a few percent. Slow streams (under `fast_stream` bytes/s each in the
    second window, under `slow_stream` in the first `first_look` seconds) leap x`leap` at
    once: on a per-flow-capped path more streams cost no more CPU per byte, and each step
    waited for is transfer lost. Times are seconds, rates bytes/s per stream.

    `cores`: the CPU cores this process may use (0: unknown; the engine passes them). With
    it, and the process's CPU time fed with each observation, the count never climbs past
    what the cores can feed (streams that each keep a core busy, as TLS on loopback does,
    cannot go faster in numbers than the cores), and a step up that costs more CPU per byte
    without a gain is turned back after one window.
    """

    min_streams: int = 1
    max_streams: int = 16  # the user's -j ceiling
    initial: int = 1  # clamped into [min_streams, max_streams]
    fast_stream: float = 50e6  # bytes/s per stream above which the first step is only x2
    fast_look: float = 100e6  # bytes/s per stream in the first look that doubles at once...
    idle_look: float = 0.5  # ... if each keeps fewer cores busy (more: CPU-bound, wait)
    slow_stream: float = 12e6  # bytes/s per stream under which the first window leaps at once
    leap: int = 32  # the first step's factor when streams are slower than that
    window: float = 0.3  # least length of one measurement window
    hold_window: float = 1.0  # least length of a window while holding (smoother rates)
    first_look: float = 0.1  # least length of a first window that shows slow streams
    quiet_look: float = 0.2  # the same when nothing came after its first bytes (a stall?)
    gain: float = 0.10  # relative rate increase that counts as "more streams helped"
    tolerance: float = 0.10  # a smaller count within this fraction of the best is as good
    settle: float = 0.2  # ignored after each change of the count
    max_window: float = 10.0  # a window closes after this long even without a byte jump
    read_size: int = 1024 * 1024  # bytes one stream reads at once: counts arrive in such lumps
    min_reads: float = 8.0  # a window at n streams holds >= min_reads*sqrt(n-1) reads
    change: float = 0.30  # relative move of the held rate (2 windows) that means "path changed"
    smoothing: float = 0.3  # EWMA weight of a new window while holding
    probe_interval: float = 4.0  # first re-probe upwards this long after a hold begins
    max_probe_interval: float = 30.0  # the interval doubles up to this while probes fail
    cores: float = 0.0  # CPU cores this process may use; 0: unknown, CPU time not used

    def __post_init__(self) -> None:
        if self.min_streams < 1:
            raise ValueError("min_streams must be >= 1")
        if self.max_streams < self.min_streams:
            raise ValueError("max_streams must be >= min_streams")
        if self.initial < 1 or self.leap < 2 or not 0 <= self.slow_stream <= self.fast_stream:
            raise ValueError("initial must be >= 1, leap >= 2, 0 <= slow_stream <= fast_stream")
        if self.fast_look < self.fast_stream or self.idle_look < 0:
            raise ValueError("fast_look must be >= fast_stream, idle_look >= 0")
        if not 0 < self.window <= self.max_window:
            raise ValueError("window must be positive and at most max_window")
        if not 0 < self.first_look <= self.window <= self.hold_window <= self.max_window:
            raise ValueError("need 0 < first_look <= window <= hold_window <= max_window")
        if self.quiet_look <= 0 or self.settle < 0 or self.read_size < 0 or self.min_reads < 0:
            raise ValueError("quiet_look must be > 0; settle, read_size, min_reads >= 0")
        if self.gain <= 0 or not 0 <= self.tolerance < 1 or not 0 < self.change < 1:
            raise ValueError("gain must be > 0, tolerance and change in [0, 1)")
        if not 0 < self.smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        if not 0 < self.probe_interval <= self.max_probe_interval:
            raise ValueError("probe_interval must be positive and at most max_probe_interval")
        if self.cores < 0:
            raise ValueError("cores must be >= 0 (0: unknown)")

    @classmethod
    def fixed(cls, n: int) -> ControllerSettings:
        """Settings that pin the count at `n` streams (no measurement, no probing)."""
        return cls(min_streams=n, max_streams=n, initial=n)
