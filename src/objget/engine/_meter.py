"""PURE: the aggregate byte rate over windows aligned on reads, for the stream controller.

The engine counts whole reads (lumps of up to `read_size` bytes, a few a second per capped
stream), so a plain fixed-time window would miscount by +-1 read per stream. A window here
starts and ends on an observation where the byte count rose, lasts at least `window`
seconds and holds at least `min_bytes`; windows with no bytes say nothing and are dropped.
When the observations carry the process's CPU time, `load` is the CPU seconds per second
(cores busy) over the window that closed last.

>>> m = RateMeter(window=0.3, max_window=10.0, now=0.0)
>>> m.feed(0.1, 1000), m.feed(0.2, 1000), m.feed(0.5, 4000)
(None, None, 7500.0)
>>> m.feed(0.6, 4000), m.peek(0.9)
(None, (0.4, 0))
>>> c = RateMeter(window=0.3, max_window=10.0, now=0.0)
>>> c.feed(0.1, 1000, cpu=1.0), c.feed(0.6, 5000, cpu=1.5), c.load
(None, 8000.0, 1.0)
"""

from __future__ import annotations

__all__ = ["RateMeter"]


class RateMeter:
    """Aggregate rate over windows that begin and end on a rise of the byte count."""

    __slots__ = (
        "_last", "_max_window", "_min_bytes", "_quiet_until", "_start", "load", "window",
    )  # fmt: skip

    def __init__(self, window: float, max_window: float, *, now: float) -> None:
        self.window = window  # least length of a window; may change between observations
        self.load: float | None = None  # cores busy over the last window (None: not known)
        self._max_window = max_window
        self._min_bytes = 0.0
        self._last: tuple[float, int] = (now, 0)  # nothing has moved when the meter starts
        self._start: tuple[float, int, float | None] | None = None
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
        last, self._last = self._last, (now, total)
        if total < last[1] or now < last[0]:  # bytes given back, or the clock went back
            self._start = None
            return None
        rose = total > last[1]
        if now < self._quiet_until:
            return None
        start = self._start
        if start is None:
            if rose:
                self._start = (now, total, cpu)
            return None
        elapsed, moved = now - start[0], total - start[1]
        full = elapsed >= self.window and moved >= self._min_bytes
        if not ((rose and full) or elapsed >= self._max_window):
            return None
        self._start = (now, total, cpu) if rose else None
        used = None if cpu is None or start[2] is None else cpu - start[2]
        self.load = used / elapsed if used is not None and used >= 0 else None
        return moved / elapsed if moved > 0 else None

    def peek(self, now: float) -> tuple[float, int] | None:
        """(seconds, bytes) of the open window so far, as of the last observation's count;
        None before the window's first rise."""
        if self._start is None:
            return None
        return now - self._start[0], self._last[1] - self._start[1]
