"""HTTP-level faults over real TCP: a scripted server (pytest-httpserver) that answers 200 to a
Range, a wrong Content-Range, a short body, 416, 403/404, 429/503 with Retry-After, a redirect
loop and more bytes than asked; nginx with the object overwritten mid-download.

Every trial starts with an old file at the destination: a typed error must leave it as it was.
"""

from __future__ import annotations

import json
import os
import random

import pytest
from werkzeug.wrappers import Response

from ..integration._ranged_app import RangedObject
from ._harness import (
    MiB,
    ckpt_done,
    ckpt_lies,
    dest_wrong_bytes,
    kill,
    run,
    same,
    start,
    typed_error,
    wait_for,
)

SIZE = 2 * MiB
OLD = b"the previous contents of the destination\n"
ARGS = ("-q", "-j", "2", "--part-size", "512K", "--retries", "3", "--stall-timeout", "10")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("http-faults") / "object.bin"
    path.write_bytes(random.Random(8).randbytes(SIZE))
    return path


def serve(httpserver, script):
    obj = RangedObject(b"", script=script)
    httpserver.expect_request("/obj.bin").respond_with_handler(obj)
    return obj, httpserver.url_for("/obj.bin")


# (class, script, expected exit code, words in the message or None when it must succeed)
CASES = [
    ("http: 200 to a Range", ["full"], 3, "status 200 to a Range request"),
    ("http: wrong Content-Range", ["badrange"], 3, "does not match the requested"),
    ("http: short body", ["short:100000", "short:5"], 0, None),
    ("http: 416 mid-download", ["ok", "status:416"], 3, "HTTP 416"),
    ("http: 403 mid-download", ["ok", "status:403"], 3, "denied (HTTP 403)"),
    ("http: 404 mid-download", ["ok", "status:404"], 3, "not found (HTTP 404)"),
    ("http: 429 and 503 with Retry-After", ["status:429:1", "status:503:1"], 0, None),
    ("http: more bytes than asked", ["extra", "extra", "extra"], 0, None),
]


@pytest.mark.parametrize(("row", "script", "code", "words"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.interrupt
def test_scripted_answer(httpserver, data, tmp_path, summary, row, script, code, words):
    obj, url = serve(httpserver, script)
    obj.data = data.read_bytes()
    dest = tmp_path / "out.bin"
    dest.write_bytes(OLD)
    done = run([url, dest, *ARGS, "--json"])
    if words is None:
        result = json.loads(done.out) if done.rc == 0 else {}
        retried = result.get("retries", 0) >= 1 or "extra" in script  # extra bytes: no retry
        ok = done.rc == 0 and same(dest, data) and retried
        summary.trial(row, correct=ok, wrong_bytes=dest_wrong_bytes(dest, data))
        assert ok, (done.rc, done.err, obj.log)
        return
    typed = typed_error(done, code, words) and dest.read_bytes() == OLD
    lies = ckpt_lies(dest, data)
    # the same command again, against a server that now behaves, ends with the right file
    again = run([url, dest, *ARGS])
    ok = again.rc == 0 and same(dest, data)
    summary.trial(
        row,
        typed=typed and ok,
        ckpt_lies=lies,
        wrong_bytes=dest_wrong_bytes(dest, data, before=None if ok else OLD),
    )
    assert typed and lies == 0, (done.rc, done.err)
    assert ok, again.err


def test_redirect_loop(httpserver, tmp_path, summary):
    httpserver.expect_request("/loop").respond_with_handler(
        lambda request: Response("", status=302, headers={"Location": "/loop"})
    )
    dest = tmp_path / "loop.bin"
    dest.write_bytes(OLD)
    done = run([httpserver.url_for("/loop"), dest, *ARGS])
    ok = typed_error(done, 3, "too many redirects") and dest.read_bytes() == OLD
    summary.trial("http: redirect loop", typed=ok, wrong_bytes=0 if ok else len(OLD))
    assert ok, done.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.bin"]


@pytest.mark.interrupt
def test_object_overwritten_mid_download(web, site_root, tmp_path, summary, trials):
    """nginx keeps sending the old bytes on open connections; the next If-Match fails (412):
    exit 3, nothing of the old version stays, and the next run gets the new version."""
    for i in range(trials(1, 3)):
        name = f"overwritten-{i}.bin"
        src = site_root / name
        src.write_bytes(random.Random(i).randbytes(16 * MiB))
        url = f"{web.url}/{name}"
        dest = tmp_path / name
        dest.write_bytes(OLD)
        proc = start([url, dest, "-q", "-j", "2", "--limit-rate", "4M"], tmp_path / f"{i}.log")
        try:
            assert wait_for(lambda: ckpt_done(dest) >= 2 * MiB, 60, proc=proc)  # noqa: B023
            new = tmp_path / "new.tmp"
            new.write_bytes(random.Random(100 + i).randbytes(15 * MiB + 7))
            os.replace(new, src)  # a new inode, size and mtime: a new ETag
            status = proc.wait(timeout=120)
        finally:
            kill(proc)
        log = (tmp_path / f"{i}.log").read_text()
        typed = status == 3 and "changed during the download" in log and dest.read_bytes() == OLD
        leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name))
        again = run([url, dest, "-q"])
        ok = again.rc == 0 and same(dest, src)
        summary.trial(
            "http: object overwritten mid-download (nginx)",
            typed=typed and ok,
            wrong_bytes=dest_wrong_bytes(dest, src),
        )
        assert typed, (status, log)
        assert leftovers == [name], "the old version's temp file or checkpoint was kept"
        assert ok, again.err
