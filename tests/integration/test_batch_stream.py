"""The listing streams into the downloads: objects of the first listing page are fetched
while the next page is still held back (SeaweedFS behind the counting proxy); manifest
entries take one request each (pytest-httpserver)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from objget import DownloadConfig, download_many
from objget.backends import BackendOptions

from ._batch_proxy import BatchProxy
from ._ranged_app import RangedObject

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


@pytest.mark.timeout(120)
def test_a_manifest_of_small_http_objects_takes_one_request_each(httpserver, tmp_path):
    """Nothing is at the destinations: one whole GET per entry tells size and ETag (no HEAD
    first); a large answer is let go and that entry fetched the usual way (HEAD, ranges)."""
    small = {f"/d/s{i}.bin": RangedObject(os.urandom(3000 + i), etag=f'"e{i}"') for i in range(6)}
    big = RangedObject(os.urandom(9 * 1024 * 1024), etag='"big"')
    served = {**small, "/d/big.bin": big}
    for path, obj in served.items():
        httpserver.expect_request(path).respond_with_handler(obj)
    manifest = tmp_path / "m.txt"
    manifest.write_text("".join(f"{httpserver.url_for(p)}\n" for p in served))
    result = download_many(None, tmp_path / "out", manifest=manifest)
    assert not result.failed, [f.error for f in result.failed]
    for path, obj in served.items():
        assert (tmp_path / "out" / path.lstrip("/")).read_bytes() == obj.data
    for obj in small.values():
        assert [(m, r) for m, r, _t in obj.log] == [("GET", None)]  # 6 requests, not 12
    assert any(m == "HEAD" for m, _r, _t in big.log)
    assert result.objects[0].etag is not None
    again = download_many(None, tmp_path / "out", manifest=manifest)  # up to date: HEADs only
    assert len(again.skipped) == len(served)
    for obj in small.values():
        assert [m for m, _r, _t in obj.log] == ["GET", "HEAD"]
