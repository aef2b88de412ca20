"""Exact-byte HTTP scenarios over real TCP (pytest-httpserver)."""

from __future__ import annotations

import logging
import random

import pytest

import objget

from ._ranged_app import RangedObject

MiB = 1024 * 1024


def payload(size, seed=3):
    return random.Random(seed).randbytes(size)


@pytest.fixture
def serve(httpserver):
    def make(obj: RangedObject, path="/obj.bin"):
        httpserver.expect_request(path).respond_with_handler(obj)
        return httpserver.url_for(path)

    return make


def download(url, dest, **cfg):
    cfg.setdefault("retry", objget.RetryPolicy(attempts=5, backoff=0.01, max_backoff=0.05))
    cfg.setdefault("part_size", MiB)
    cfg.setdefault("max_workers", 2)
    cfg.setdefault("timeouts", objget.Timeouts(connect=5, read=10))
    return objget.download(url, str(dest), config=objget.DownloadConfig(**cfg))


def test_reset_mid_part_is_retried_from_the_last_byte(serve, tmp_path):
    data = payload(3 * MiB)
    obj = RangedObject(data, script=["reset:300000"])
    res = download(serve(obj), tmp_path / "out", max_workers=1)
    assert (tmp_path / "out").read_bytes() == data
    assert res.retries == 1
    ranges = [r for m, r, _ in obj.log if m == "GET"]
    assert ranges[0] == "bytes=0-1048575"
    # the retry starts at a byte the first answer had not delivered yet, not at 0
    resumed_from = int(ranges[1].split("=")[1].split("-")[0])
    assert 0 < resumed_from <= 300000


def test_503_with_retry_after_twice_then_206(serve, tmp_path):
    data = payload(MiB)
    obj = RangedObject(data, script=["status:503:1", "status:503:1"])
    res = download(
        serve(obj),
        tmp_path / "out",
        max_workers=1,
        retry=objget.RetryPolicy(attempts=5, backoff=0.01, max_backoff=5),
    )
    assert (tmp_path / "out").read_bytes() == data
    assert res.retries == 2
    gets = [t for m, _, t in obj.log if m == "GET"]
    assert gets[1] - gets[0] >= 0.95  # Retry-After: 1 was honoured
    assert gets[2] - gets[1] >= 0.95


def test_200_to_a_range_is_refused_before_any_byte(serve, tmp_path):
    obj = RangedObject(payload(2 * MiB), script=["full"])
    with pytest.raises(objget.RangeNotSupported, match="status 200"):
        download(serve(obj), tmp_path / "out", max_workers=1)
    assert not (tmp_path / "out").exists()
    part = tmp_path / "out.objget-part"
    assert not part.exists() or part.read_bytes().count(0) == part.stat().st_size


def test_server_that_never_advertised_ranges_gets_one_stream(serve, tmp_path):
    data = payload(2 * MiB)
    obj = RangedObject(data, ranges=False)
    res = download(serve(obj), tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert not res.resumable
    assert [r for m, r, _ in obj.log if m == "GET" and r != "bytes=0-0"] == [None]


@pytest.mark.parametrize("fault", ["badrange", "short:1000", "extra"])
def test_lying_answers_never_write_wrong_bytes(serve, tmp_path, fault):
    data = payload(2 * MiB)
    obj = RangedObject(data, script=[fault])
    try:
        download(serve(obj), tmp_path / "out", max_workers=1)
    except objget.RangeNotSupported:
        assert fault == "badrange"
        assert not (tmp_path / "out").exists()
        return
    assert fault != "badrange"
    assert (tmp_path / "out").read_bytes() == data


def test_not_found_and_forbidden(httpserver, tmp_path):
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    httpserver.expect_request("/secret").respond_with_data("no", status=403)
    with pytest.raises(objget.ObjectNotFound):
        download(httpserver.url_for("/missing"), tmp_path / "a")
    with pytest.raises(objget.AccessDenied):
        download(httpserver.url_for("/secret"), tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_presigned_query_is_redacted(httpserver, tmp_path):
    httpserver.expect_request("/p").respond_with_data("no", status=403)
    url = httpserver.url_for("/p") + "?X-Amz-Signature=deadbeefsecret&X-Amz-Credential=AKIA"
    with pytest.raises(objget.AccessDenied) as info:
        download(url, tmp_path / "p")
    assert "deadbeefsecret" not in str(info.value)
    assert "deadbeefsecret" not in (info.value.source or "")


def test_a_redirect_is_logged_without_the_presigned_query(httpserver, tmp_path, caplog):
    """urllib3 logs a redirect (INFO, `urllib3.poolmanager`) and its retry state (DEBUG,
    `urllib3.util.retry`) with both URLs: neither query may reach a handler."""
    data = b"x" * 4096
    sig_a, sig_b = "a1" * 32, "b2" * 32
    httpserver.expect_request("/final").respond_with_data(data)
    target = httpserver.url_for("/final") + f"?X-Amz-Signature={sig_b}"
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": target}
    )
    url = httpserver.url_for("/start") + f"?X-Amz-Signature={sig_a}"
    with caplog.at_level(logging.DEBUG):
        download(url, tmp_path / "r")
    assert (tmp_path / "r").read_bytes() == data
    ours = "\n".join(  # the test server's own access log (werkzeug) is not the client's
        logging.Formatter().format(r) for r in caplog.records if r.name != "werkzeug"
    )
    assert "Redirecting" in ours, ours
    assert sig_a not in ours and sig_b not in ours, ours
