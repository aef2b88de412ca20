from objget._models import ByteRange
from objget._scheduler import Scheduler

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
