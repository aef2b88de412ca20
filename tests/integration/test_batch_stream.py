"""The listing streams into the downloads: objects of the first listing page are fetched
while the next page is still held back (SeaweedFS behind the counting proxy)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from objget import DownloadConfig, download_many
from objget.backends import BackendOptions

from ._batch_proxy import BatchProxy

BUCKET = "test"
PREFIX = "stream/"


@pytest.fixture
def proxy(seaweed):
    with BatchProxy(seaweed.s3_url, put=seaweed.put) as p:
        yield p


@pytest.mark.timeout(120)
def test_the_first_get_starts_before_the_listing_ends(seaweed, proxy, tmp_path):
    data = {f"{PREFIX}k{i:02d}.bin": os.urandom(4096 + i) for i in range(12)}
    for key, value in data.items():
        seaweed.put(BUCKET, key, value)
    proxy.max_keys = 5  # three pages: 5, 5, 2
    gets_before_page_2: list[int] = []
    released = threading.Event()

    def gate() -> None:
        # hold the 2nd page until a GET of the 1st page's objects came in (bounded)
        if not released.is_set():
            deadline = time.monotonic() + 10
            while not proxy.gets() and time.monotonic() < deadline:
                time.sleep(0.01)
            gets_before_page_2.append(sum(proxy.gets().values()))
            released.set()

    proxy.list_gate = gate
    result = download_many(
        f"s3://{BUCKET}/{PREFIX}",
        tmp_path / "out",
        config=DownloadConfig(max_workers=4),
        options=BackendOptions(endpoint=proxy.url, anonymous=True),
    )
    assert not result.failed, [f.error for f in result.failed]
    assert len(result.downloaded) == len(data)
    for key, value in data.items():
        assert (tmp_path / "out" / key.removeprefix(PREFIX)).read_bytes() == value
    assert gets_before_page_2 and gets_before_page_2[0] >= 1, "no GET before the 2nd page"
    assert proxy.requests[("GET", f"LIST {BUCKET}")] == 3
    assert sum(proxy.gets().values()) == len(data)  # one request per object, no HEAD
    assert not any(m == "HEAD" for (m, _k) in proxy.requests)
