"""The one retry loop (`_attempts`): scripted failures, a fake clock, a fixed random draw."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget import AccessDenied, RetriesExhausted, RetryPolicy, TLSError, TransportError
from objget.engine._attempts import Attempts, iter_with_retry, run_with_retry


class FakeClock:
    """`wait` advances the clock instead of sleeping; every wait is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def wait(self, delay: float) -> None:
        self.waits.append(delay)
        self.now += delay


class Script:
    """An op that raises the scripted errors in turn, then answers `done`."""

    def __init__(self, *errors: BaseException, progress: bool = False) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.progress = progress  # each attempt moved forward before it failed

    def __call__(self, attempts: Attempts) -> str:
        self.calls += 1
        if self.errors:
            if self.progress:
                attempts.progressed()
            raise self.errors.pop(0)
        return f"done after {attempts.retries} retries"


def _run(op, policy, clock, on_retry=None):
    return run_with_retry(op, policy=policy, on_retry=on_retry, wait=clock.wait, rand=lambda: 0.5)


def test_transport_errors_are_retried_with_jittered_backoff():
    policy = RetryPolicy(attempts=5, backoff=1.0, max_backoff=3.0, deadline=None)
    clock, told = FakeClock(), []
    op = Script(TransportError("reset"), TransportError("timeout"), TransportError("stall"))
    answer = _run(op, policy, clock, on_retry=lambda exc, delay: told.append((str(exc), delay)))
    assert answer == "done after 3 retries"
    assert op.calls == 4
    assert clock.waits == [0.5, 1.0, 1.5]  # rand 0.5 of 1, 2, then 4 capped at 3
    assert told == [("reset", 0.5), ("timeout", 1.0), ("stall", 1.5)]


def test_retry_after_lengthens_the_wait_up_to_max_backoff():
    policy = RetryPolicy(attempts=5, backoff=0.1, max_backoff=10.0, deadline=None)
    clock = FakeClock()
    op = Script(
        TransportError("503", status=503, retry_after=4.0),
        TransportError("429", status=429, retry_after=60.0),
    )
    assert _run(op, policy, clock) == "done after 2 retries"
    assert clock.waits == [4.0, 10.0]


def test_a_spent_policy_raises_retries_exhausted_chained_from_the_last_error():
    policy = RetryPolicy(attempts=3, backoff=1.0, max_backoff=5.0, deadline=None)
    clock = FakeClock()
    last = TransportError("reset 3", source="mem://k")
    op = Script(TransportError("reset 1"), TransportError("reset 2"), last, TransportError("x"))
    with pytest.raises(RetriesExhausted) as info:
        _run(op, policy, clock)
    assert op.calls == 3
    assert len(clock.waits) == 2
    assert info.value.attempts == 3
    assert info.value.last_error is last
    assert info.value.__cause__ is last
    assert info.value.source == "mem://k"


@pytest.mark.parametrize(
    "error", [AccessDenied("403"), TLSError("bad certificate"), ValueError("bug"), OSError(28, "")]
)
def test_final_and_foreign_errors_propagate_at_once(error):
    clock, told = FakeClock(), []
    op = Script(error)
    with pytest.raises(type(error)) as info:
        _run(op, RetryPolicy(attempts=5), clock, on_retry=lambda *a: told.append(a))
    assert info.value is error
    assert op.calls == 1
    assert clock.waits == [] and told == []


def test_progress_between_failures_starts_the_count_again():
    policy = RetryPolicy(attempts=2, backoff=1.0, max_backoff=8.0, deadline=None)
    clock = FakeClock()
    op = Script(*(TransportError(f"reset {i}") for i in range(6)), progress=True)
    assert _run(op, policy, clock) == "done after 6 retries"
    assert clock.waits == [0.5] * 6  # every failure is a first failure again
    with pytest.raises(RetriesExhausted):  # without progress, two attempts are all it gets
        _run(Script(TransportError("a"), TransportError("b")), policy, FakeClock())


def test_the_deadline_bounds_the_time_spent_waiting():
    policy = RetryPolicy(attempts=100, backoff=10.0, max_backoff=10.0, deadline=12.0)
    clock = FakeClock()
    with pytest.raises(RetriesExhausted):
        _run(Script(*(TransportError("reset") for _ in range(100))), policy, clock)
    assert clock.waits == [5.0, 5.0, 2.0]
    assert clock.now == 12.0


@given(
    attempts=st.integers(1, 8),
    deadline=st.one_of(st.none(), st.floats(0.001, 20)),
    failures=st.integers(0, 12),
    rand=st.floats(0, 0.999),
)
def test_the_loop_never_exceeds_the_policy(attempts, deadline, failures, rand):
    policy = RetryPolicy(attempts=attempts, backoff=1.0, max_backoff=4.0, deadline=deadline)
    clock = FakeClock()
    op = Script(*(TransportError("reset") for _ in range(failures)))
    try:
        run_with_retry(op, policy=policy, wait=clock.wait, rand=lambda: rand)
    except RetriesExhausted as exc:
        assert exc.attempts == op.calls
    else:
        assert op.calls == failures + 1
    assert op.calls <= attempts
    assert len(clock.waits) == op.calls - 1  # no wait after the last attempt
    if deadline is not None:
        assert clock.now <= deadline + 1e-9


def test_a_wait_that_raises_stops_the_loop():
    class Cancelled(Exception):
        pass

    def cancelled(delay: float) -> None:
        raise Cancelled

    op = Script(TransportError("reset"), TransportError("reset"))
    with pytest.raises(Cancelled):
        run_with_retry(op, policy=RetryPolicy(attempts=5), wait=cancelled, rand=lambda: 0.0)
    assert op.calls == 1


def test_iteration_resumes_where_it_stopped_and_yields_each_item_once():
    policy = RetryPolicy(attempts=2, backoff=1.0, max_backoff=4.0, deadline=None)
    clock, starts = FakeClock(), []
    faults = {3: TransportError("page 2 reset"), 5: TransportError("page 3 reset")}
    seen = {"last": 0}

    def listing(attempts: Attempts):
        starts.append(seen["last"])
        for n in range(seen["last"] + 1, 8):
            if faults.pop(n, None) is not None:
                raise TransportError(f"reset before {n}")
            seen["last"] = n
            attempts.progressed()
            yield n

    items = iter_with_retry(listing, policy=policy, wait=clock.wait, rand=lambda: 0.5)
    assert list(items) == [1, 2, 3, 4, 5, 6, 7]
    assert starts == [0, 2, 4]
    assert clock.waits == [0.5, 0.5]


def test_iteration_gives_up_after_the_items_it_could_get():
    policy = RetryPolicy(attempts=2, backoff=1.0, max_backoff=4.0, deadline=None)
    calls = []

    def broken(attempts: Attempts):
        calls.append(attempts.retries)
        if not calls[1:]:
            yield "first"
        raise TransportError("reset")

    got = []
    with pytest.raises(RetriesExhausted) as info:
        got.extend(iter_with_retry(broken, policy=policy, wait=lambda d: None, rand=lambda: 0.0))
    assert got == ["first"]
    assert calls == [0, 1]
    assert info.value.attempts == 2


def test_it_is_lazy():
    calls = []
    items = iter_with_retry(lambda a: calls.append(1) or [1], policy=RetryPolicy())
    assert calls == []
    assert list(items) == [1]
