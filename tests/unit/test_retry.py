import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget import AccessDenied, RetryPolicy, TLSError, TransportError
from objget._retry import RetryState, backoff_delay, is_retryable, parse_retry_after


@given(st.integers(1, 100), st.floats(0, 0.999999))
def test_backoff_within_cap(failures, rand):
    policy = RetryPolicy(backoff=0.5, max_backoff=10.0)
    delay = backoff_delay(policy, failures, rand)
    assert 0 <= delay <= min(10.0, 0.5 * 2 ** (failures - 1))


def test_retry_after_forms():
    assert parse_retry_after("3", now=0) == 3.0
    assert parse_retry_after(None, now=0) is None
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after("-5", now=0) is None
    date = email.utils.formatdate(1000 + 7, usegmt=True)
    assert parse_retry_after(date, now=1000) == pytest.approx(7, abs=1)
    assert parse_retry_after(email.utils.formatdate(10, usegmt=True), now=1000) == 0.0
    assert parse_retry_after("99999999999", now=0) == 24 * 3600


@given(st.text(max_size=60))
def test_retry_after_never_raises(text):
    value = parse_retry_after(text, now=1e9)
    assert value is None or 0 <= value <= 24 * 3600


def test_classification():
    assert is_retryable(TransportError("reset"))
    assert not is_retryable(TLSError("bad cert"))
    assert not is_retryable(AccessDenied("no"))
    assert not is_retryable(ValueError("x"))


def test_state_exhausts_and_honours_retry_after():
    policy = RetryPolicy(attempts=3, backoff=0.1, max_backoff=5.0, deadline=None)
    state = RetryState(policy=policy)
    err = TransportError("503", status=503, retry_after=2.0)
    assert not state.exhausted(err)
    state, delay = state.failed(err, rand=0.0)
    assert delay == 2.0
    state, delay = state.failed(TransportError("reset"), rand=0.5)
    assert delay == pytest.approx(0.1)
    assert state.exhausted(err)
    assert not state.progressed().exhausted(err)


def test_deadline_caps_waiting():
    policy = RetryPolicy(attempts=100, backoff=10, max_backoff=10, deadline=15)
    state = RetryState(policy=policy)
    state, d1 = state.failed(TransportError("x"), rand=0.99)
    state, d2 = state.failed(TransportError("x"), rand=0.99)
    assert d1 + d2 <= 15 + 1e-9
    assert state.out_of_time()
