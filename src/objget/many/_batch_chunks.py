"""How the batch runner hands small objects to its workers: how many at once (the engine's
stream controller fed objects finished in place of bytes: docs/batch.md, "Connections"), in
chunks of several listed objects in a row (one hand-off and one directory fsync per chunk
instead of per object), and how it collects finished chunks.

>>> ctl = small_controller(32, 1, now=0.0)  # 50 ms a request: each worker 20 objects/s
>>> ctl.target, ctl.observe(0.05, 16), ctl.observe(0.2, 64), ctl.observe(0.4, 128)
(16, 16, 16, 32)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import deque
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any

from .._models import ObjectMeta
from ..engine._engine_face import ControllerSettings, StreamController
from ._batch_journal import Row
from ._batch_models import ObjectResult
from ._batch_sources import Planned

__all__ = [
    "CHUNK", "CHUNK_BYTES", "CHUNK_MAX", "FLOOR", "START", "TICK", "Work", "completed_chunks",
    "small_controller", "take_chunk",
]  # fmt: skip

TICK = 0.1
CHUNK = 8  # small objects per hand-off near the end of the queue ...
CHUNK_MAX = 32  # ... and while the queue is long (every worker still gets two chunks)
CHUNK_BYTES = 1024 * 1024  # an object this large or larger travels alone
START = 16  # small objects at once at first
FLOOR = 8  # ... and at least (fewer were slower and no cheaper)
LATENCY_BOUND = 50.0  # objects/s a worker finishes under which the path is latency-bound


def small_controller(budget: int, least: int, *, now: float) -> StreamController:
    """How many small objects run at once, up to `budget`: the stream controller with workers
    for its streams and objects finished for its bytes (one object one read: `read_size=1`).
    From START, a leap to the budget when each worker finishes fewer than LATENCY_BOUND
    objects/s in the second window (20 ms or more an object: its `fast_stream`; never in the
    first: `slow_stream=0`), else doubling while objects/s rises by 10 %, then the fewest (not
    below FLOOR, or `least` when higher) that are as good."""
    return StreamController(
        ControllerSettings(
            min_streams=min(max(least, FLOOR), budget), max_streams=budget, initial=START,
            fast_stream=LATENCY_BOUND, slow_stream=0.0, read_size=1, window=0.15, settle=0.15,
        ),
        now=now,
    )  # fmt: skip


@dataclasses.dataclass
class Work:
    planned: Planned
    row: Row | None
    meta: ObjectMeta | None = None


def completed_chunks(
    done: SimpleQueue[Future[list[ObjectResult | Work]] | None],
) -> list[Future[Any]]:
    """The chunks finished so far: waits up to TICK for the first (or a wake-up from the
    listing), then takes the rest."""
    got: list[Future[Any] | None] = []
    with contextlib.suppress(Empty):
        got.append(done.get(timeout=TICK))
        while True:
            got.append(done.get_nowait())
    return [fut for fut in got if fut is not None]


def _small(w: Work) -> bool:
    """A listed small object, or a manifest entry (size unknown: most often small, and a
    large one only holds up the rest of its chunk)."""
    p = w.planned
    if w.meta is not None:
        return False
    if p.size is None:
        return p.etag is None
    return p.etag is not None and p.size < CHUNK_BYTES


def _weight(w: Work) -> int:
    size = w.planned.size
    return size if size is not None else CHUNK_BYTES // CHUNK


def take_chunk(queue: deque[Work], most: int) -> list[Work]:
    """The next unit of work: one object, or up to `most` small listed objects in a row
    (one hand-off to a worker thread, and one fsync of their directory, instead of one per
    object), of at most `most` x CHUNK_BYTES / CHUNK bytes together."""
    chunk = [queue.popleft()]
    if _small(chunk[0]):
        total = _weight(chunk[0])
        cap = most * CHUNK_BYTES // CHUNK
        while queue and len(chunk) < most and _small(queue[0]) and total < cap:
            total += _weight(queue[0])
            chunk.append(queue.popleft())
    return chunk
