"""`--recursive --skip-existing` against SeaweedFS through the counting proxy: every batch file
gets its object's Last-Modified (small ones, fetched in one GET each, and a 9 MiB one through the
Downloader); with the journal gone (files another tool left), nothing is fetched again; a file
with another mtime is. The single and batch paths share `_sync.up_to_date`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from ._batch_proxy import BatchProxy

BUCKET = "test"
PREFIX = "sync-batch/"
MiB = 1024 * 1024


@pytest.fixture
def proxy(seaweed):
    with BatchProxy(seaweed.s3_url, put=seaweed.put) as p:
        yield p


def run(proxy: BatchProxy, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "objget", "--endpoint-url", proxy.url, "--no-sign-request",
           "--retries", "2", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def last_modified(seaweed, key: str) -> int:
    req = urllib.request.Request(f"{seaweed.s3_url}/{BUCKET}/{key}", method="HEAD")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the test's own server
        return int(parsedate_to_datetime(resp.headers["Last-Modified"]).timestamp())


def forget(root: Path) -> None:
    """Drop the batch journal: DIR now holds files as another tool (or run) left them."""
    for name in (".objget-batch.db", ".objget-batch.db-wal", ".objget-batch.db-shm"):
        (root / name).unlink(missing_ok=True)


def test_batch_skip_existing_uses_the_same_rule(seaweed, proxy, tmp_path):
    rng = random.Random(23)
    objs = {f"{PREFIX}s{i}.bin": rng.randbytes(64 * 1024 + i) for i in range(3)}
    objs[f"{PREFIX}big.bin"] = rng.randbytes(9 * MiB)
    for key, data in objs.items():
        seaweed.put(BUCKET, key, data)
    stamps = {key: last_modified(seaweed, key) for key in objs}
    root = tmp_path / "out"
    args = ["--recursive", "--json", f"s3://{BUCKET}/{PREFIX}", f"{root}/"]
    first = run(proxy, *args)
    assert first.returncode == 0, first.stderr
    for key, data in objs.items():
        path = root / key.removeprefix(PREFIX)
        assert path.read_bytes() == data
        assert int(path.stat().st_mtime) == stamps[key], key

    forget(root)
    proxy.reset()
    again = run(proxy, *args, "--skip-existing")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])
    assert summary["skipped"] == len(objs) and summary["downloaded"] == 0, summary
    assert not proxy.gets()

    forget(root)
    os.utime(root / "s1.bin", (0, 0))
    os.utime(root / "big.bin", (0, 0))
    proxy.reset()
    third = run(proxy, *args, "--skip-existing")
    assert third.returncode == 0, third.stderr
    assert set(proxy.gets()) == {f"{PREFIX}s1.bin", f"{PREFIX}big.bin"}
    for key in (f"{PREFIX}s1.bin", f"{PREFIX}big.bin"):
        assert int((root / key.removeprefix(PREFIX)).stat().st_mtime) == stamps[key]

    proxy.reset()
    without = run(proxy, *args)  # the journal again knows them all: no request either
    assert without.returncode == 0, without.stderr
    assert not proxy.gets()
