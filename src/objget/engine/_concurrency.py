"""PURE: how many parallel streams to run, decided from the measured aggregate byte rate.

No threads, sockets or clocks: the engine feeds `observe(now, total_bytes, cpu_seconds)` a
few times a second and runs the returned number of streams. The rule is hill climbing:

- **Measure.** After every change of the count, `settle` seconds are ignored (new connections
  open, retiring streams finish a read). A window then lasts at least `window` seconds and
  `min_reads * sqrt(n - 1)` reads of `read_size` bytes, and starts and ends on an
  observation where the byte count rose (`_meter.RateMeter`: the engine counts whole reads,
  which a fixed-time window would miscount by +-1 read per stream). The first window starts
  on the first byte.
- **First step.** The first window includes start-up (a store's slow first reads, TLS,
  TCP slow start), so a second one decides: x`leap` when each stream moves less than
  `fast_stream` (a per-flow capped path, where each step waited for is transfer lost), else
  x2. A first look of `first_look` seconds decides at once when it is clear
  (`_meter.first_look`): streams under `slow_stream` each leap, streams steadily over
  `fast_look` each that leave the CPU mostly idle (a LAN) double. If the streams at the
  top move more than half `slow_stream` each when the climb ends, that window may have
  been a slow start (or a stall) on a path one stream fills, so the count goes back to
  where it leapt from at once and the search goes on from there. (Not when still slow:
  fewer streams on a capped path only lose rate, and a server that lets a request catch up
  on its allowance, as nginx's does, makes fewer look as good.)
- **Climb.** Then double the count (x4 after a step that scaled linearly) while the rate
  rises by more than `gain`: a first window better by twice `gain` moves on at once (climb
  windows need half the reads), otherwise the mean of two windows decides, so streams that
  take a few round trips to start are not judged too early.
- **Refine.** When doubling stops helping, binary-search between the last two accepted counts
  for the smallest count whose rate is within `tolerance` of the best (the mean of the counts
  found as good); skipped when the last step scaled linearly. With nothing measured below
  the first count, halve downwards: on a saturated path (loopback) 1 -> 2 (no gain) -> 1.
  A lower count that moves its share linearly (n/hi of the rate) ends the search at `hi`.
  Unclear comparisons take a second window.
- **Hold.** Keep the count, smoothing rates of windows at least `hold_window` long (a rate
  limiter that works in whole seconds, as nginx's does, makes 0.3 s windows swing by more
  than `change`) with an EWMA. Every `probe_interval` seconds (doubling up to
  `max_probe_interval` each time the hold returns to the same count) try double the count
  for two windows and climb on if it helped by `gain`. If the rate moves by
  more than `change` for two windows in a row the path changed: probe at once, downwards
  first when it fell (halve while as good, then bisect), upwards first when it rose.
- **CPU.** With the process's CPU time, the count never climbs past `cores` over the most
  cores one stream kept busy in a window of this climb (TLS on loopback: a core each, so two
  cores feed two streams; noise cannot carry the count to 32; slow streams' windows do not
  count), and a step up (or up-probe) whose first window gains under `gain`/2 for `gain`
  more CPU per byte is turned back at once.
- **Pinned.** With `min_streams == max_streams` (see `ControllerSettings.fixed`) nothing is
  measured and the count never changes.
"""

from __future__ import annotations

import enum
import math

from ._controller_settings import ControllerSettings
from ._meter import RateMeter, first_look

__all__ = ["ControllerSettings", "StreamController"]


class _Phase(enum.Enum):
    PINNED = "pinned"
    CLIMB = "climb"  # doubling while the rate rises by more than `gain`
    DESCEND = "descend"  # halving while the rate stays within `tolerance` of the best
    SEARCH = "search"  # binary search for the smallest count that is as good
    HOLD = "hold"  # steady; watching for a changed path, probing now and then
    PROBE = "probe"  # two windows at double (or, the path changed, half) the held count


class StreamController:
    """Decides the number of parallel streams from cumulative byte counts (see module doc).

    One stream first; a window of it moving 4 MB/s (a capped path) leaps to the ceiling:

    >>> ctl = StreamController(ControllerSettings(max_streams=8), now=0.0)
    >>> ctl.target, ctl.observe(0.1, 0), ctl.observe(0.2, 400_000)
    (1, 1, 1)
    >>> ctl.observe(0.5, 1_600_000), ctl.phase, ctl.reason
    (8, 'climb', 'climb 1->8: first window, slow streams')
    """

    def __init__(self, settings: ControllerSettings, *, now: float) -> None:
        s = settings
        self._s = s
        self._target = min(max(s.initial, s.min_streams), s.max_streams)
        self._meter = RateMeter(s.window, s.max_window, now=now)  # nothing to settle yet
        self._meter.restart(now, 0.5 * self._min_bytes(self._target))
        self._phase = _Phase.PINNED if s.min_streams == s.max_streams else _Phase.CLIMB
        self._rates: list[float] = []  # windows at the current count in the current step
        self._base: tuple[int, float] | None = None  # last accepted (count, rate) of a climb
        self._lower: tuple[int, float] | None = None  # the accepted one before it
        self._unsure: tuple[int, float] | None = None  # a first base judged by one window
        self._lo = self._hi = 0  # search bounds: lo is not as good, hi is
        self._lo_seen = False  # lo was measured during this search (not only in the climb)
        self._ref = 0.0  # the rate to match (search, descend) or to beat (probe)
        self._plateau: list[float] = []  # rates of the counts found as good (mean is _ref)
        self._home = self._target  # the held count a probe returns to
        self._up = True  # probe direction
        self._then_other = False  # a failed probe tries the other direction (path changed)
        self._ewma: float | None = None
        self._drift = 0  # consecutive held windows off the average: +n above, -n below
        self._interval = s.probe_interval
        self._held = 0  # the count of the last hold
        self._next_probe = float("inf")
        self._reason = "pinned" if self._phase is _Phase.PINNED else "start"
        self._opening = (now, 0)  # (time of the observation before the first bytes, bytes)
        self._per_stream = float("inf")  # bytes/s of one stream in the last window (unknown)
        self._load: float | None = None  # cores busy in the last window (CPU time not fed)
        self._demand = 0.0  # most cores one stream kept busy in a window of this climb/probe
        self._cost: float | None = None  # CPU seconds per byte in the last window
        self._base_cost: float | None = None  # ... at the count a climb or probe started from
        self._fast = False  # the first look showed fast streams (`_meter.first_look`)

    @property
    def target(self) -> int:
        """The number of streams that should run now."""
        return self._target

    @property
    def phase(self) -> str:
        """What the controller is doing: pinned, climb, descend, search, hold or probe."""
        return self._phase.value

    @property
    def slow_streams(self) -> bool:
        """Each stream moved under `slow_stream` in the last window (a capped path): its
        requests may be short (a round trip is little against their time)."""
        return self._per_stream < self._s.slow_stream

    @property
    def fast_streams(self) -> bool:
        """Each stream moved over `fast_stream` in the last window: long requests (LAN)."""
        return self._s.fast_stream <= self._per_stream < float("inf")

    @property
    def reason(self) -> str:
        """Why the count was last set (for debug logs)."""
        return self._reason

    def observe(self, now: float, total_bytes: int, cpu: float | None = None) -> int:
        """Feed the cumulative bytes written so far (monotonic) at time `now`, and the
        process's CPU seconds so far when known; return the number of streams that should
        run from now on (between min and max)."""
        if self._phase is _Phase.PINNED:
            return self._target
        if self._opening[1] <= 0:  # the first bytes came since the last observation
            self._opening = (self._opening[0] if total_bytes > 0 else now, total_bytes)
        rate, load = self._meter.feed(now, total_bytes, cpu), self._meter.load
        if rate is None and self._phase is _Phase.CLIMB and self._base is None:
            seen = self._meter.peek(now)
            look = first_look(self._s, self._target, seen, opening=self._opening, now=now,
                              windows=len(self._rates))  # fmt: skip
            rate, load = (None, None) if look is None else look[1:]
            self._fast = look is not None and look[0] == "fast"
        if rate is not None:
            load = load if self._s.cores > 0 else None
            self._load, self._cost = load, None if load is None else load / rate
            self._per_stream = rate / self._target
            if load is not None and self._per_stream >= self._s.slow_stream:  # (slow ones:
                self._demand = max(self._demand, load / self._target)  # start-up, not bytes)
            self._rates.append(rate)
            del self._rates[:-2]
            self._decide(now, rate)
        return self._target

    # --- decisions ------------------------------------------------------------------
    def _decide(self, now: float, rate: float) -> None:
        n, phase = self._target, self._phase
        if phase is _Phase.CLIMB:
            if self._base is None:
                self._first_step(now, rate)
            else:
                self._climb(now)
        elif phase is _Phase.DESCEND or phase is _Phase.SEARCH:
            good = self._as_good()
            if good is None:
                return
            mean = sum(self._rates) / len(self._rates)
            if good:
                self._plateau.append(mean)
                ref = sum(self._plateau) / len(self._plateau)
                if phase is _Phase.DESCEND:
                    self._descend(now, n, ref)
                elif n == self._lo:  # the climb's step to the next count was noise
                    self._hold(now, n, None, f"hold {n}: as good as {self._hi} after all")
                else:
                    self._search(now, self._lo, n, ref, lo_seen=self._lo_seen)
            elif mean <= self._ref * n / (hi := self._hi) * (1 + self._s.tolerance):
                self._hold(now, hi, None, f"hold {hi}: {n} streams scale linearly up to it")
            else:
                self._search(now, n, self._hi, self._ref, lo_seen=True)
        elif phase is _Phase.HOLD:
            self._watch(now, rate)
        elif phase is _Phase.PROBE and len(self._rates) >= 2:
            self._judge_probe(now, sum(self._rates) / 2)
        elif phase is _Phase.PROBE and self._up and self._costlier(rate, self._ref):
            self._judge_probe(now, rate)

    def _first_step(self, now: float, rate: float) -> None:
        """The first window (or look, `_meter.first_look`) decides alone only when streams are
        clearly slow (under `slow_stream`): leap at once (`_end_climb` may check the leap),
        or clearly fast (over `fast_look`): double. Otherwise a second window decides: slow
        streams (under `fast_stream`) leap, fast ones double."""
        n, s = self._target, self._s
        if rate / n < s.slow_stream and len(self._rates) < 2:
            self._base = self._unsure = (n, rate)
            self._base_cost = self._cost
            self._step_up(now, "first window, slow streams", s.leap)
        elif len(self._rates) >= 2 or self._fast:
            self._base, self._base_cost = (n, rate), self._cost
            why = "first look, fast streams" if self._fast else "first window"
            self._step_up(now, why, s.leap if rate / n < s.fast_stream else 2)

    def _as_good(self) -> bool | None:
        """Is the current count as good as `_ref`? None: ask again after another window.
        A clear first window decides at once; an unclear one waits for the mean of two."""
        rates, low = self._rates, self._ref * (1 - self._s.tolerance)
        if len(rates) >= 2:
            return sum(rates) / len(rates) >= low
        if rates[0] >= self._ref:
            return True
        if rates[0] < self._ref * (1 - 2 * self._s.tolerance):
            return False
        return None

    def _climb(self, now: float) -> None:
        """Judge a doubling: a first window better by twice `gain` moves on at once (below
        the ceiling); otherwise the mean of two windows decides."""
        assert self._base is not None
        n, rates, base_rate = self._target, self._rates, self._base[1]
        better = base_rate * (1 + self._s.gain)
        clear = base_rate * (1 + 2 * self._s.gain)
        if len(rates) < 2 and not (rates[0] > clear and n < self._s.max_streams):
            if self._costlier(rates[0], base_rate):
                self._end_climb(now, rates[0])  # no gain for more CPU per byte: no 2nd look
            return
        mean = sum(rates) / len(rates)
        if mean > better:
            linear = mean >= base_rate * n / self._base[0] * (1 - self._s.tolerance)
            self._lower, self._base = self._base, (n, mean)
            self._base_cost = self._cost
            self._step_up(
                now, f"{n} streams gained {mean / base_rate - 1:+.0%}", 4 if linear else 2
            )
        else:
            self._end_climb(now, mean)

    def _move(self, now: float, n: int, phase: _Phase, reason: str) -> None:
        n = min(max(n, self._s.min_streams), self._s.max_streams)
        if n != self._target:
            self._target = n
            coarse = 0.5 if phase is _Phase.CLIMB else 1.0  # a climb looks for +2*gain
            self._meter.restart(now + self._s.settle, coarse * self._min_bytes(n))
            self._reason = reason
        self._phase = phase
        self._meter.window = self._s.hold_window if phase is _Phase.HOLD else self._s.window
        self._rates.clear()

    def _min_bytes(self, n: int) -> float:
        """Bytes a window must hold so that whole reads landing on either side of its edges
        move the rate by a few percent at most (one stream is exact: windows start and end
        on its reads)."""
        return self._s.min_reads * math.sqrt(n - 1) * self._s.read_size

    def _costlier(self, rate: float, ref: float) -> bool:
        """One window at more streams moves less than half `gain` more than `ref` (the rate
        at fewer) and costs `gain` more CPU per byte than there: a CPU-bound path, where
        more streams only contend. (A gain near `gain` is left to the mean of two windows.)"""
        cost, base, gain = self._cost, self._base_cost, self._s.gain
        if cost is None or not base:
            return False
        return rate < ref * (1 + gain / 2) and cost > base * (1 + gain)

    def _fed(self) -> int:
        """The most streams the cores can feed: as many as keep them busy if each one takes
        the most cores one stream took in a window of this climb (the fewest streams, most
        often: more streams share the cores when CPU-bound; others' load only lowers it)."""
        s = self._s
        if self._demand <= 0:
            return s.max_streams
        return max(1, int(s.cores / self._demand * (1 + s.gain)))

    def _step_up(self, now: float, why: str, factor: int = 2) -> None:
        n = self._target
        fed = self._fed()
        if n >= self._s.max_streams:
            self._end_climb(now)
        elif fed <= n:  # the cores are busy: more streams could only contend for them
            self._reason = f"climb stops at {n}: a stream keeps {self._demand:.2f} cores busy"
            self._end_climb(now, cpu=True)
        else:
            up = min(factor * n, self._s.max_streams, fed)
            load = "" if self._load is None else f", {self._load:.2f} cores busy"
            self._move(now, up, _Phase.CLIMB, f"climb {n}->{up}: {why}{load}")

    def _end_climb(self, now: float, no_better: float | None = None, *, cpu: bool = False) -> None:
        """Doubling stopped helping (`no_better`: the rate one step above the best) or hit
        the ceiling (or what the cores can feed, `cpu`: the step below was measured slower):
        find the smallest count that is as good as the best."""
        assert self._base is not None
        best, best_rate = self._base
        lower, self._base, self._lower = self._lower, None, None
        unsure, self._unsure = lower is not None and lower == self._unsure, None
        self._plateau = [best_rate] if no_better is None else [best_rate, no_better]
        best_rate = sum(self._plateau) / len(self._plateau)
        if lower is None:
            self._descend(now, best, best_rate)
            return
        low, low_rate = lower
        linear = best_rate >= low_rate * best / low * (1 - self._s.tolerance)
        if linear and unsure and best_rate / best >= self._s.slow_stream / 2:
            # a leap on one window of slow streams that are not slow any more: that window may
            # have been start-up (or a stall) on a path one stream fills; check the count
            # before the leap at once (halving back from the ceiling takes seconds)
            self._hi, self._ref = best, best_rate
            self._move(now, low, _Phase.DESCEND, f"descend {best}->{low}: check the leap")
        elif linear:
            self._hold(now, best, None, f"hold {best}: the last step scaled linearly")
        else:
            self._search(now, low, best, best_rate, lo_seen=cpu)

    def _descend(self, now: float, good: int, ref: float) -> None:
        """`good` streams are as good as the best; try half as many."""
        self._hi, self._ref = good, ref
        if good <= self._s.min_streams:
            self._hold(now, good, None, f"hold {good}: the floor")
        else:
            half = max(self._s.min_streams, good // 2)
            self._move(now, half, _Phase.DESCEND, f"descend {good}->{half}")

    def _search(self, now: float, lo: int, hi: int, ref: float, *, lo_seen: bool) -> None:
        """`lo` streams are not as good as the best, `hi` streams are: bisect. A `lo` known
        only from the climb (one noisy comparison) is measured once more before holding."""
        self._lo, self._hi, self._ref, self._lo_seen = lo, hi, ref, lo_seen
        if hi - lo <= 1 and lo_seen:
            self._hold(now, hi, None, f"hold {hi}: {lo} streams were slower")
        elif hi - lo <= 1:
            self._lo_seen = True
            self._move(now, lo, _Phase.SEARCH, f"search {lo}..{hi}: check {lo}")
        else:
            mid = (lo + hi) // 2
            self._move(now, mid, _Phase.SEARCH, f"search {lo}..{hi}: try {mid}")

    def _hold(self, now: float, n: int, seed: float | None, why: str) -> None:
        """Keep `n` streams. Returning to the count held before backs the probes off."""
        s = self._s
        same = n == self._held
        self._interval = min(self._interval * 2, s.max_probe_interval) if same else s.probe_interval
        self._held = n
        self._move(now, n, _Phase.HOLD, why)
        self._ewma, self._drift = seed, 0
        self._next_probe = now + self._s.settle + self._interval

    def _watch(self, now: float, rate: float) -> None:
        s, avg = self._s, self._ewma
        if avg is None:
            self._ewma = rate
        else:
            off = -1 if rate < avg * (1 - s.change) else 1 if rate > avg * (1 + s.change) else 0
            if off == 0:
                self._drift = 0
                self._ewma = avg + s.smoothing * (rate - avg)
            else:
                self._drift = self._drift + off if self._drift * off > 0 else off
                if abs(self._drift) >= 2:
                    self._interval = s.probe_interval
                    self._probe(now, up=self._drift > 0, ref=rate, then_other=True)
                    return
        if now >= self._next_probe and self._target < s.max_streams:
            self._probe(now, up=True, ref=self._ewma or rate, then_other=False)

    def _probe(self, now: float, *, up: bool, ref: float, then_other: bool) -> None:
        if self._phase is not _Phase.PROBE:
            self._home, self._base_cost = self._target, self._cost
            load, busy = self._load or 0.0, self._per_stream >= self._s.slow_stream
            self._demand = load / self._target if busy else 0.0  # the path may have changed
        home, s = self._home, self._s
        up_to = min(2 * home, s.max_streams, self._fed())
        cand = up_to if up else max(home // 2, s.min_streams)
        self._up, self._ref, self._then_other = up, ref, then_other
        if cand == home:
            if then_other:
                self._probe(now, up=not up, ref=ref, then_other=False)
            else:
                self._hold(now, home, ref, f"hold {home}")
            return
        self._move(now, cand, _Phase.PROBE, f"probe {home}->{cand}")

    def _judge_probe(self, now: float, rate: float) -> None:
        s, n, home, ref = self._s, self._target, self._home, self._ref
        if self._up and rate > ref * (1 + s.gain):
            self._lower, self._base = (home, ref), (n, rate)
            self._step_up(now, f"probe {home}->{n} gained {rate / ref - 1:+.0%}")
        elif not self._up and rate >= ref * (1 - s.tolerance):
            self._plateau = [ref, rate]
            self._descend(now, n, (ref + rate) / 2)
        elif self._then_other:
            self._probe(now, up=not self._up, ref=ref, then_other=False)
        else:
            self._hold(now, home, ref, f"hold {home}: probe {n} did not help")
