"""The retrying call sites outside the engine keep their behaviour over the one retry loop: the
listing resumes after the last key seen, the small-object GET starts the object over and counts
its retries, HEAD retries until the policy is spent; final errors are never retried."""

from __future__ import annotations

import logging
import os

import pytest

from objget import AccessDenied, DownloadConfig, RetriesExhausted, TransportError
from objget.engine._attempts import list_with_retry
from objget.engine._downloader import head_with_retry
from objget.engine._single import fetch_small
from objget.testing import Fault, MemoryBackend, no_wait_retry

KEYS = [f"p/{i:02d}" for i in range(10)]


class FlakyLister:
    """A listing of KEYS that raises `errors[n]` instead of the n-th key it would yield
    (counted over all calls), remembering each call's `start_after`."""

    def __init__(self, errors: dict[int, BaseException]) -> None:
        self.errors = errors
        self.starts: list[str | None] = []
        self.given = 0

    def __call__(self, prefix, *, start_after=None):
        self.starts.append(start_after)
        for key in KEYS:
            if start_after is not None and key <= start_after:
                continue
            error = self.errors.pop(self.given, None)
            if error is not None:
                raise error
            self.given += 1
            yield key, 1, f'"{key}"'


def test_listing_resumes_after_the_last_key_seen(caplog):
    lister = FlakyLister({3: TransportError("reset"), 7: TransportError("timeout")})
    with caplog.at_level(logging.INFO, logger="objget"):
        got = [k for k, *_ in list_with_retry(lister, "p/", no_wait_retry(attempts=2))]
    assert got == KEYS
    assert lister.starts == [None, "p/02", "p/06"]
    said = [r.getMessage() for r in caplog.records if "listing" in r.getMessage()]
    assert said == [
        "listing p/ failed (reset); resuming after 'p/02' in 0.00 s",
        "listing p/ failed (timeout); resuming after 'p/06' in 0.00 s",
    ]


def test_listing_without_progress_gives_up_after_the_policy():
    starts = []

    def dead(prefix, *, start_after=None):
        starts.append(start_after)
        raise TransportError(f"reset {len(starts)}")
        yield  # pragma: no cover

    with pytest.raises(RetriesExhausted) as info:
        list(list_with_retry(dead, "p/", no_wait_retry(attempts=3)))
    assert info.value.attempts == 3
    assert str(info.value.last_error) == "reset 3"
    assert starts == [None, None, None]


def test_listing_stops_at_a_final_error():
    lister = FlakyLister({4: AccessDenied("403 on the bucket")})
    got = []
    with pytest.raises(AccessDenied):
        got.extend(k for k, *_ in list_with_retry(lister, "p/", no_wait_retry()))
    assert got == KEYS[:4]
    assert lister.starts == [None]


def _fetch(tmp_path, store, key, attempts):
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    meta = store.head(key)
    try:
        return fetch_small(
            store, key, str(tmp_path / "x.bin"), dir_fd=dir_fd, meta=meta, sha256=None,
            config=DownloadConfig(retry=no_wait_retry(attempts)),
            buf=memoryview(bytearray(64 * 1024)),
        )  # fmt: skip
    finally:
        os.close(dir_fd)


def test_small_object_starts_over_and_counts_its_retries(tmp_path):
    data = os.urandom(300_000)
    store = MemoryBackend({"k": data})
    store.add_faults([Fault.reset_after(100_000), Fault.status_error(503), Fault.short_body(5)])
    result = _fetch(tmp_path, store, "k", attempts=4)
    assert result.retries == 3
    assert (tmp_path / "x.bin").read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["x.bin"]  # no temp file, lock or checkpoint left


def test_small_object_gives_up_after_the_policy(tmp_path):
    store = MemoryBackend({"k": b"x" * 1000})
    store.add_faults([Fault.reset_after(10)] * 3)
    with pytest.raises(RetriesExhausted) as info:
        _fetch(tmp_path, store, "k", attempts=3)
    assert info.value.attempts == 3
    assert not (tmp_path / "x.bin").exists()


def test_small_object_final_error_is_not_retried(tmp_path):
    store = MemoryBackend({"k": b"x" * 1000})
    store.add_faults([Fault.status_error(403), Fault.reset_after(10)])
    with pytest.raises(AccessDenied):
        _fetch(tmp_path, store, "k", attempts=5)
    assert not (tmp_path / "x.bin").exists()


class FlakyHead(MemoryBackend):
    def __init__(self, objects, errors):
        super().__init__(objects)
        self.errors = list(errors)
        self.heads = 0

    def head(self, key, *, version_id=None):
        self.heads += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().head(key, version_id=version_id)


def test_head_retries_transport_errors_until_the_policy_is_spent():
    store = FlakyHead({"k": b"abc"}, [TransportError("reset"), TransportError("503")])
    assert head_with_retry(store, "k", None, no_wait_retry(attempts=3)).size == 3
    assert store.heads == 3
    store = FlakyHead({"k": b"abc"}, [TransportError("reset")] * 3)
    with pytest.raises(RetriesExhausted) as info:
        head_with_retry(store, "k", None, no_wait_retry(attempts=3))
    assert info.value.attempts == 3 and store.heads == 3
    store = FlakyHead({"k": b"abc"}, [AccessDenied("403"), TransportError("reset")])
    with pytest.raises(AccessDenied):
        head_with_retry(store, "k", None, no_wait_retry(attempts=3))
    assert store.heads == 1
