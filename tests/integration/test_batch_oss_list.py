"""OSS ListObjectsV2 over real TCP (pytest-httpserver as the store): signed bucket GETs,
pagination with a percent-encoded continuation token, percent-encoded keys."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from werkzeug.wrappers import Request, Response

from objget import DownloadConfig
from objget.backends import BackendOptions, Transport, resolve


def page(keys, *, token=None):
    items = "".join(
        f'<Contents><Key>{quote(k, safe="")}</Key><ETag>"E{i}"</ETag><Size>{len(k)}</Size>'
        "</Contents>"
        for i, k in enumerate(keys)
    )
    trunc = "true" if token else "false"
    tok = f"<NextContinuationToken>{quote(token, safe='')}</NextContinuationToken>" if token else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name>'
        f"<Prefix>p/</Prefix><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>"
        f"<IsTruncated>{trunc}</IsTruncated>{tok}{items}</ListBucketResult>"
    )


@pytest.mark.parametrize("version", ["1", "4"])
def test_oss_listing_pages_and_decodes(httpserver, monkeypatch, version):
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "SK")
    seen = []

    def handler(request: Request) -> Response:
        seen.append((request.path, dict(request.args), request.headers.get("Authorization", "")))
        if request.args.get("continuation-token") is None:
            return Response(page(["p/a b.txt", "p/x+y"], token="p/x+y next"), 200)
        assert request.args["continuation-token"] == "p/x+y next"
        return Response(page(["p/ü/ñ"]), 200)

    httpserver.expect_request("/bkt/").respond_with_handler(handler)
    options = BackendOptions(
        endpoint=httpserver.url_for("/").rstrip("/"),
        region="cn-hangzhou",
        signature_version=version,
    )
    transport = Transport(DownloadConfig())
    try:
        found = resolve("oss://bkt/p/placeholder", transport, options, {})
        listed = list(found.backend.list_objects("p/"))
    finally:
        transport.close()
    assert [(o.key, o.size) for o in listed] == [("p/a b.txt", 9), ("p/x+y", 5), ("p/ü/ñ", 5)]
    assert len(seen) == 2
    first = seen[0][1]
    assert first == {"list-type": "2", "prefix": "p/", "max-keys": "100", "encoding-type": "url"}
    assert all(
        auth.startswith("OSS4-HMAC-SHA256 " if version == "4" else "OSS AK:") for *_, auth in seen
    )
