from objget._models import ByteRange
from objget.engine._plan import Span
from objget.engine._scheduler import Scheduler

MiB = 1024 * 1024


def test_idle_worker_steals_upper_half_of_largest_remainder():
    sched = Scheduler([ByteRange(0, 8 * MiB)], min_steal=MiB)
    first = sched.claim()
    assert (first.pos, first.stop) == (0, 8 * MiB)
    assert sched.reserve(first, MiB) == MiB  # the owner read 1 MiB
    stolen = sched.claim()
    assert stolen is not None
    assert first.stop == stolen.pos and stolen.stop == 8 * MiB
    assert first.pos < stolen.pos
    # the owner read past the split point: only its own bytes are its to write
    assert sched.reserve(first, 8 * MiB) == first.stop - MiB


def test_no_steal_below_twice_the_minimum():
    sched = Scheduler([ByteRange(0, 3 * MiB)], min_steal=2 * MiB)
    assert sched.claim() is not None
    assert sched.claim() is None


def test_release_returns_the_unwritten_remainder():
    sched = Scheduler([ByteRange(0, 4 * MiB)], min_steal=MiB)
    c = sched.claim()
    sched.reserve(c, MiB)
    c.mark = (0, MiB, 0)
    sched.commit(c)
    sched.release(c)
    again = sched.claim()
    assert (again.pos, again.stop) == (MiB, 4 * MiB)
    assert sched.spans()[0].stop == MiB


def test_guided_claims_are_big_for_one_stream_and_smaller_for_many():
    from objget.engine._plan import EDGE, MAX_PART, MIN_PART

    size = 1024 * MIN_PART
    sched = Scheduler([ByteRange(0, size)], guided=True)
    first = sched.claim(1)
    assert first is not None and (first.pos, first.stop) == (0, MAX_PART)
    second = sched.claim(32)
    left = size - MAX_PART
    assert second is not None and second.stop - second.pos == left // 64
    assert second.pos == MAX_PART
    sched.fast_streams = True  # the same, its edge on a multiple of EDGE
    third = sched.claim(32)
    assert third is not None and abs(third.stop - third.pos - (left - left // 64) // 64) < EDGE
    assert third.stop % EDGE == 0


def test_guided_and_stolen_edges_fall_on_the_stores_pieces():
    """For fast streams every edge the download cuts inside the object is a multiple of EDGE
    (8 MiB): a range edge inside a stored chunk makes the server fetch the whole chunk for
    part of it (SeaweedFS, 4 MiB chunks). The edges a resume inherits stay where they are,
    but the part after one ends on a multiple again. (Slow streams split at the middle.)"""
    from objget.engine._plan import EDGE

    size = 1024 * MiB
    for start in (0, 123_456_789):  # a fresh download; one resumed at an odd byte
        sched = Scheduler([ByteRange(start, size)], guided=True, min_steal=10**12)
        sched.fast_streams = True
        streams = iter([1, 1, 2, 2, 2, 4, 4, 4, 4, 3, 3])  # the controller's count moves
        edges = []
        while (c := sched.claim(next(streams, 4))) is not None:
            edges += [c.pos, c.stop]
        inner = [e for e in edges if e not in (start, size)]
        assert len(inner) >= 10 and all(e % EDGE == 0 for e in inner), inner
    for fast, split in ((True, 48 * MiB), (False, 51 * MiB)):
        sched = Scheduler([ByteRange(0, 100 * MiB)], min_steal=4 * MiB)
        sched.fast_streams = fast
        first = sched.claim()
        assert sched.reserve(first, 2 * MiB) == 2 * MiB
        stolen = sched.claim()
        assert stolen is not None and (stolen.pos, first.stop) == (split, split)  # mid: 51


def test_guided_claims_cover_every_byte_once_and_leave_no_tiny_tail():
    from objget.engine._plan import MIN_PART

    ranges = [ByteRange(0, 10 * MIN_PART + 5), ByteRange(20 * MIN_PART, 21 * MIN_PART + 7)]
    sched = Scheduler(ranges, guided=True, min_steal=10**12)
    got = []
    while (c := sched.claim(4)) is not None:
        got.append((c.pos, c.stop))
    assert sorted(got) == got
    covered = [b for a, z in got for b in range(a, z, MIN_PART // 4)]
    assert len(covered) == len(set(covered))
    assert got[0][0] == 0 and got[-1][1] == 21 * MIN_PART + 7
    assert sum(z - a for a, z in got) == sum(r.stop - r.start for r in ranges)
    assert min(z - a for a, z in got) >= MIN_PART // 2


def test_without_guidance_parts_are_claimed_as_given():
    sched = Scheduler([ByteRange(0, 100), ByteRange(100, 10**9)])
    c = sched.claim(1)
    assert c is not None and (c.pos, c.stop) == (0, 100)


def write(sched: Scheduler, claim, n: int, crc: int) -> None:
    """What a worker does: reserve `n` bytes, write them, extend its mark with their CRC."""
    pos = claim.pos
    assert sched.reserve(claim, n) == n
    claim.mark = (claim.mark[0], pos + n, crc)


def test_live_segments_are_kept_apart_until_a_durable_snapshot_covers_them():
    seed = Span(0, 10, 99)  # a segment the previous run's live record proved
    sched = Scheduler([ByteRange(10, 4 * MiB)], done=[seed], live=[seed], min_steal=MiB)
    c = sched.claim()
    write(sched, c, 100, 1)
    sched.commit(c)  # a segment ends (the worker cuts one every `SEGMENT` bytes)
    write(sched, c, 50, 2)
    assert sched.live_segments() == (seed, Span(10, 110, 1), Span(110, 160, 2))
    assert sched.spans() == (Span(0, 160, None),)  # the ledger has no CRCs without combine
    spans, seq = sched.durable_view()
    assert spans == (Span(0, 160, None),)
    write(sched, c, 40, 3)  # written after the snapshot
    sched.commit(c)
    sched.saved(seq)  # the durable checkpoint of that snapshot is on disk
    # [110, 200) was partly in the snapshot, as an in-flight mark: it stays, whole
    assert sched.live_segments() == (Span(110, 200, 3),)
    spans, seq = sched.durable_view()
    sched.saved(seq)
    assert sched.live_segments() == ()


def test_without_live_tracking_nothing_is_kept():
    sched = Scheduler([ByteRange(0, MiB)], min_steal=MiB)
    c = sched.claim()
    write(sched, c, 100, 1)
    sched.commit(c)
    assert sched.live_segments() == ()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Body:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_a_silent_claim_goes_back_to_the_queue_when_a_worker_finds_it_empty():
    clock = Clock()
    sched = Scheduler([ByteRange(0, 3 * MiB)], min_steal=2 * MiB, clock=clock)
    sched.stale = 0.1
    first = sched.claim()
    first.body = Body()
    assert sched.reserve(first, MiB) == MiB  # a lump, then nothing
    assert sched.claim() is None and not sched.has_work()  # 2 MiB left: too little to split
    clock.now += 0.1
    assert sched.has_work()
    taken = sched.claim()
    assert taken is not None and (taken.pos, taken.stop) == (MiB, 3 * MiB)
    assert first.stop == first.pos == MiB and first.body.aborted
    assert sched.reserve(first, 256 * 1024) == 0  # the silent read, when it returns, keeps none


def test_a_silent_remainder_is_claimed_again_in_parts_sized_for_the_streams():
    """Not halved: the silent stream would keep the lower half. Back in the queue, the
    remainder is cut like any unclaimed range; on slow streams down to `min_steal`."""
    clock = Clock()
    sched = Scheduler([ByteRange(0, 12 * MiB)], min_steal=MiB, clock=clock, guided=True)
    sched.stale = 0.1
    first = sched.claim(1)
    assert (first.pos, first.stop) == (0, 12 * MiB)  # one stream: one request for it all
    sched.reserve(first, 2 * MiB)
    clock.now += 0.2
    sched.slow_streams = True  # the controller saw a capped path
    parts = [sched.claim(32) for _ in range(10)]
    sizes = [c.stop - c.pos for c in parts if c is not None]
    assert first.stop == 2 * MiB and sizes == [MiB] * 10


def test_a_request_without_a_first_byte_a_moving_claim_and_the_default_are_never_taken_over():
    clock = Clock()
    sched = Scheduler([ByteRange(0, 3 * MiB)], min_steal=2 * MiB, clock=clock)
    sched.stale = 0.1
    first = sched.claim()
    clock.now += 10  # a long round trip: no byte yet
    assert sched.claim() is None
    sched.reserve(first, 1)
    clock.now += 0.05
    assert sched.claim() is None  # moving
    off = Scheduler([ByteRange(0, 3 * MiB)], min_steal=2 * MiB, clock=clock)
    off.reserve(off.claim(), 1)
    clock.now += 1000
    assert off.claim() is None  # not enabled (a stream to stdout keeps its claims)


def test_on_slow_streams_a_remainder_one_stream_would_carry_alone_is_split_first():
    """After a leap, the stream that started alone holds a big claim: on a capped path it
    would end long after the others, so idle streams split it before taking small parts
    from the queue, and at the end pieces go down to a quarter of `min_steal`."""
    sched = Scheduler([ByteRange(0, 64 * MiB)], min_steal=MiB, guided=True)
    first = sched.claim(1)
    assert (first.pos, first.stop) == (0, 32 * MiB)
    sched.reserve(first, 2 * MiB)
    sched.slow_streams = True
    second = sched.claim(32)
    assert (second.pos, second.stop) == (17 * MiB, 32 * MiB)  # the upper half of 30 MiB
    assert first.stop == 17 * MiB
    fast = Scheduler([ByteRange(0, 64 * MiB)], min_steal=MiB, guided=True)
    fast.reserve(fast.claim(1), 2 * MiB)
    assert fast.claim(32).pos == 32 * MiB  # fast streams: the queue first, as before
    tail = Scheduler([ByteRange(0, MiB)], min_steal=MiB)
    tail.slow_streams = True
    tail.claim()
    piece = tail.claim()
    assert piece is not None and piece.stop - piece.pos == MiB // 2


def test_fast_streams_take_fewer_longer_parts():
    """Each request costs the store a lookup (SeaweedFS: 1-3 ms of its CPU): streams the
    controller finds fast claim at least FAST_PART, so a 1 GiB download at 4 streams asks
    half as often as with 8 MiB parts at the end; slow ones keep the small floor."""
    from objget.engine._plan import FAST_PART

    def claims(fast: bool, slow: bool = False) -> list[int]:
        sched = Scheduler([ByteRange(0, 1024 * MiB)], guided=True, min_steal=10**12)
        sched.fast_streams, sched.slow_streams = fast, slow
        got = []
        while (c := sched.claim(4)) is not None:
            got.append(c.stop - c.pos)
        return got

    fast, before = claims(True), claims(False)
    assert len(fast) <= 20 < 28 <= len(before)
    assert min(fast) >= FAST_PART and sum(fast) == 1024 * MiB
    assert min(claims(True, slow=True)) < FAST_PART  # slow wins: a capped path's floor
