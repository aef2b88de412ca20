"""The oss2 drop-in and the CLI across an endpoint change: two OSS-protocol servers in front of
one SeaweedFS are two endpoints of one bucket. The checkpoint is keyed (drop-in: by bucket,
key and destination, like oss2) and labelled (`oss://bucket/key`) without the endpoint, so a
run stopped on one endpoint resumes on the other, asking only for the missing bytes."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import oss2
import oss2.exceptions as oe
import pytest

import objget
from objget.engine import _checkpoint as ck

from .._servers.oss_fixture import AK, REGION, SK, MiB, cli_env, make_bucket, run_cli
from .._servers.oss_server import Fault, OssServer, RequestInfo
from .._servers.seaweed import SeaweedFS
from .._servers.util import sha256_file, write_random

BUCKET = "objget-oss-endpoint"
SIZE = 16 * MiB


@pytest.fixture(scope="module")
def other(seaweed: SeaweedFS, oss: OssServer) -> Iterator[OssServer]:
    """A second endpoint of the same store (and bucket)."""
    oss.create_bucket(BUCKET)
    with OssServer(seaweed.s3_url, keys={AK: SK}, region=REGION) as server:
        yield server


def deny_after(oss: OssServer, key: str, gets: int) -> None:
    """Answer 403 AccessDenied (final) to every GET of `key` after the first `gets`."""
    seen = 0
    lock = threading.Lock()

    def hook(r: RequestInfo) -> Fault | None:
        nonlocal seen
        if r.method != "GET" or r.key != key:
            return None
        with lock:
            seen += 1
            return Fault(code="AccessDenied") if seen > gets else None

    oss.on_request = hook


def test_dropin_stopped_on_one_endpoint_resumes_on_another(oss, other, tmp_path):
    key = "endpoint/dropin.bin"
    src = write_random(tmp_path / "src.bin", SIZE, seed=23)
    oss.put(BUCKET, key, src)
    out = tmp_path / "out.bin"
    store = oss2.ResumableDownloadStore(root=str(tmp_path / "store"))
    kw = {"multiget_threshold": MiB, "part_size": MiB, "num_threads": 1, "store": store}
    deny_after(oss, key, 6)
    with pytest.raises(oe.AccessDenied):
        objget.resumable_download(make_bucket(oss, BUCKET), key, str(out), **kw)
    oss.clear_faults()
    (name,) = os.listdir(store.dir)
    saved = ck.load(os.path.join(store.dir, name))
    assert saved is not None and saved.source == f"oss://{BUCKET}/{key}"
    have = sum(s.stop - s.start for s in saved.spans)
    assert have >= 4 * MiB
    objget.resumable_download(make_bucket(other, BUCKET), key, str(out), **kw)
    assert other.bytes_served(BUCKET, key) == SIZE - have
    assert sha256_file(out) == sha256_file(src)
    assert not os.listdir(store.dir)


def test_cli_stopped_on_one_endpoint_resumes_on_another(oss, other, tmp_path):
    key = "endpoint/cli.bin"
    src = write_random(tmp_path / "src.bin", SIZE, seed=29)
    oss.put(BUCKET, key, src)
    out = tmp_path / "out.bin"
    args = [f"oss://{BUCKET}/{key}", str(out), "--part-size", "1M", "-j", "1", "--json"]
    deny_after(oss, key, 6)
    first = run_cli(args, cli_env(oss))
    assert first.returncode == 3, first.stderr
    oss.clear_faults()
    saved = ck.load(f"{out}.objget-ckpt")
    assert saved is not None
    have = sum(s.stop - s.start for s in saved.spans)
    again = run_cli(args, cli_env(other))
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["bytes_resumed"] == have and result["resumed_from"] is None  # same source
    assert other.bytes_served(BUCKET, key) == SIZE - have
    assert sha256_file(out) == sha256_file(src)
