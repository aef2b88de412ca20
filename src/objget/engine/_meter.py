"""PURE: the aggregate byte rate over windows aligned on reads, for the stream controller,
and the first look at a download (`first_look`), before its first window closes.

The engine counts whole reads (lumps of up to `read_size` bytes, a few a second per capped
stream), so a plain fixed-time window would miscount by +-1 read per stream. A window here
starts and ends on an observation where the byte count rose, lasts at least `window`
seconds and holds at least `min_bytes`; windows with no bytes say nothing and are dropped.
When the observations carry the process's CPU time, `load` is the CPU seconds per second
(cores busy) over the window that closed last.

A window lasts `window` seconds (0.3 s by default), and the first one includes start-up. On
some paths a shorter look is clear enough to act on at once (each step waited for is
transfer lost, or time at a count that is about to change):

- **Slow streams** (under `slow_stream` each, a per-flow capped path) after `first_look`
  seconds (`quiet_look` if nothing came after the first bytes: SeaweedFS may stall ~0.2 s
  after its first MiBs), judged with the bytes the look opened on (nginx `limit_rate` sends
  a lump, then nothing for a while: slow; a stall after a lump of a few MiB: not slow).
- **Fast streams** (over `fast_look` each) that each keep under `idle_look` cores busy,
  after `first_look` seconds in which the count rose at every observation: a fast path
  (loopback, a LAN) that leaves the CPU mostly idle, where the first step is x2 whatever
  comes next (TCP slow start and TLS on a long path never move that much in their first
  tenth of a second). Not when CPU-bound (TLS on loopback keeps a core busy per stream:
  more streams only contend, and the windows decide as before), nor without CPU time, nor
  after a silence (a store's stall after its first MiBs is no base to compare more
  streams with).

>>> m = RateMeter(window=0.3, max_window=10.0, now=0.0)
>>> m.feed(0.1, 1000), m.feed(0.2, 1000), m.feed(0.5, 4000)
(None, None, 7500.0)
>>> m.feed(0.6, 4000), m.peek(0.9)
(None, (0.4, 0, None, False))
>>> c = RateMeter(window=0.3, max_window=10.0, now=0.0)
>>> c.feed(0.1, 1000, cpu=1.0), c.feed(0.6, 5000, cpu=1.5), c.load
(None, 8000.0, 1.0)
>>> from objget.engine._controller_settings import ControllerSettings
>>> s = ControllerSettings()
>>> first_look(s, 1, (0.125, 50_000_000, 0.025, True), opening=(0.0, 0), now=0.1, windows=0)
('fast', 400000000.0, 0.2)
>>> first_look(s, 1, (0.125, 50_000_000, 0.1, True), opening=(0.0, 0), now=0.1, windows=0)
>>> first_look(s, 1, (0.1, 400_000, None, True), opening=(0.0, 0), now=0.1, windows=0)
('slow', 4000000.0, None)
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Literal

    from ._controller_settings import ControllerSettings

__all__ = ["RateMeter", "first_look"]


class RateMeter:
    """Aggregate rate over windows that begin and end on a rise of the byte count."""

    __slots__ = (
        "_last", "_max_window", "_min_bytes", "_quiet_until", "_start", "_steady", "load",
        "window",
    )  # fmt: skip

    def __init__(self, window: float, max_window: float, *, now: float) -> None:
        self.window = window  # least length of a window; may change between observations
        self.load: float | None = None  # cores busy over the last window (None: not known)
        self._max_window = max_window
        self._min_bytes = 0.0
        self._last: tuple[float, int, float | None] = (now, 0, None)  # nothing moved yet
        self._start: tuple[float, int, float | None] | None = None
        self._steady = False  # the count rose at every observation of the open window
        self._quiet_until = now

    def restart(self, quiet_until: float, min_bytes: float) -> None:
        """Drop the open window; the next one starts on the first rise after `quiet_until`
        and closes only once it holds `min_bytes` (or after `max_window`)."""
        self._start = None
        self._quiet_until = quiet_until
        self._min_bytes = min_bytes

    def feed(self, now: float, total: int, cpu: float | None = None) -> float | None:
        """Bytes per second of a window that closes at this observation, else None. `cpu`:
        the process's CPU seconds so far (monotonic), for `load`."""
        last, self._last = self._last, (now, total, cpu)
        if total < last[1] or now < last[0]:  # bytes given back, or the clock went back
            self._start = None
            return None
        rose = total > last[1]
        if now < self._quiet_until:
            return None
        start = self._start
        if start is None:
            if rose:
                self._start, self._steady = (now, total, cpu), True
            return None
        self._steady = self._steady and rose
        elapsed, moved = now - start[0], total - start[1]
        full = elapsed >= self.window and moved >= self._min_bytes
        if not ((rose and full) or elapsed >= self._max_window):
            return None
        self._start, self._steady = (now, total, cpu) if rose else None, True
        used = None if cpu is None or start[2] is None else cpu - start[2]
        self.load = used / elapsed if used is not None and used >= 0 else None
        return moved / elapsed if moved > 0 else None

    def peek(self, now: float) -> tuple[float, int, float | None, bool] | None:
        """(seconds, bytes, CPU seconds or None, steady: the count rose at every observation)
        of the open window so far, as of the last observation; None before its first rise."""
        start, last = self._start, self._last
        if start is None:
            return None
        cpu = None if last[2] is None or start[2] is None else max(0.0, last[2] - start[2])
        return now - start[0], last[1] - start[1], cpu, self._steady


Look = tuple["Literal['slow', 'fast']", float, "float | None"]  # (what, rate, cores busy)


def first_look(
    s: ControllerSettings,
    n: int,
    seen: tuple[float, int, float | None, bool] | None,
    *,
    opening: tuple[float, int],
    now: float,
    windows: int,
) -> Look | None:
    """What the open window at the first count shows so far: `seen` is its (seconds, bytes,
    CPU seconds or None, steady) at `n` streams (`RateMeter.peek`), `opening` the (time,
    bytes) of the observation before the download's first bytes, `windows` how many windows
    closed before it (the first is judged with the bytes it opened on). None: not clear."""
    if seen is None or seen[0] < s.first_look:
        return None
    seconds, moved, cpu, steady = seen
    load = None if cpu is None else cpu / seconds
    idle = load is not None and load < s.idle_look * n
    if steady and idle and moved / seconds > s.fast_look * n:
        return "fast", moved / seconds, load
    if moved <= 0 and seconds < s.quiet_look:  # a store's stall looks the same
        return None
    since, opened = opening
    judged = moved / seconds if windows else (opened + moved) / (now - since)
    if 0 < judged < s.slow_stream * n:
        return "slow", moved / seconds if moved > 0 else judged, load
    return None
