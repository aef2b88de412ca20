"""`backends.resolve`: one backend object per store (scheme and bucket), reused through the
cache; the key and version come from the URL. No request is sent."""

from __future__ import annotations

import pytest

from objget._config import DownloadConfig
from objget.backends import BackendOptions, resolve
from objget.backends._transport import Transport


@pytest.fixture
def transport():
    t = Transport(DownloadConfig())
    yield t
    t.close()


OPTS = BackendOptions(endpoint="http://127.0.0.1:9", region="r", anonymous=True)


@pytest.mark.parametrize("scheme", ["oss", "s3"])
def test_one_backend_per_bucket_and_the_url_names_key_and_version(transport, scheme):
    cache: dict = {}
    a = resolve(f"{scheme}://bkt1/dir/a.bin?versionId=v7", transport, OPTS, cache)
    b = resolve(f"{scheme}://bkt1/other", transport, OPTS, cache)
    c = resolve(f"{scheme}://bkt2/other", transport, OPTS, cache)
    assert (a.key, a.version_id, b.key, b.version_id) == ("dir/a.bin", "v7", "other", None)
    assert a.backend is b.backend and c.backend is not a.backend
    assert a.backend.bucket == "bkt1" and c.backend.bucket == "bkt2"
    assert set(cache) == {(scheme, "bkt1"), (scheme, "bkt2")}


def test_oss_and_s3_buckets_of_one_name_are_two_stores(transport):
    cache: dict = {}
    oss = resolve("oss://bkt/k", transport, OPTS, cache).backend
    s3 = resolve("s3://bkt/k", transport, OPTS, cache).backend
    assert oss is not s3
    assert type(oss).__name__ == "OssBackend" and type(s3).__name__ == "S3Backend"


@pytest.mark.parametrize(
    ("source", "options", "message"),
    [
        ("ftp://h/k", OPTS, "unsupported source"),
        ("ftp://h/k", BackendOptions(headers={"X-A": "1"}), "unsupported source"),
        ("s3://bkt/k", BackendOptions(headers={"X-A": "1"}), r"apply to http\(s\):// sources only"),
        ("oss://b", OPTS, "needs a bucket and a key"),
    ],
)
def test_what_resolve_refuses(transport, source, options, message):
    with pytest.raises(ValueError, match=message):
        resolve(source, transport, options, {})
