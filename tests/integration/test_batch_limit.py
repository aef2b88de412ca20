"""Batches on SeaweedFS through the counting proxy: `--limit-rate` caps the whole batch (one
limiter for every object), a batch in which every object succeeded leaves DEST clean (no
`.objget-*` file: the journal is removed) and its re-run fetches nothing; a batch with a
failure keeps its journal and its re-run fetches only what is left (issue 17 item 6)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._batch_proxy import BatchProxy

BUCKET = "test"
MiB = 1024 * 1024


@pytest.fixture
def proxy(seaweed):
    with BatchProxy(seaweed.s3_url, put=seaweed.put) as p:
        yield p


def run(proxy: BatchProxy, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "objget", "--endpoint-url", proxy.url, "--no-sign-request",
           "--retries", "2", "--json", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    (line,) = [x for x in map(json.loads, done.stdout.splitlines()) if x["type"] == "summary"]
    return dict(line)


def side_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".objget-" in p.name)


def upload(seaweed, prefix: str, sizes: dict[str, int], seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    objs = {f"{prefix}{name}": rng.randbytes(size) for name, size in sizes.items()}
    for key, data in objs.items():
        seaweed.put(BUCKET, key, data)
    return objs


def check(root: Path, prefix: str, objs: dict[str, bytes]) -> None:
    for key, data in objs.items():
        assert (root / key.removeprefix(prefix)).read_bytes() == data, key


def test_limit_rate_caps_the_whole_batch(seaweed, proxy, tmp_path):
    """Two 9 MiB objects (engine, ranged) and eight of 384 KiB (one GET each), 21 MiB under
    6 MiB/s: at least 85% of 3.5 s. With one limiter per object it took about 1.5 s."""
    prefix = "limit-batch/"
    sizes = {f"big{i}.bin": 9 * MiB for i in range(2)}
    sizes.update({f"small/s{i}.bin": 384 * 1024 for i in range(8)})
    objs = upload(seaweed, prefix, sizes, seed=61)
    limit = 6 * MiB
    root = tmp_path / "out"
    started = time.monotonic()
    done = run(proxy, "--recursive", "--limit-rate", "6M", f"s3://{BUCKET}/{prefix}", f"{root}/")
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    elapsed = float(summary(done)["elapsed"])  # type: ignore[arg-type]
    total = sum(sizes.values())
    print(f"limit-rate batch: {total} bytes at {limit} B/s in {elapsed:.2f} s ({wall:.2f} s wall)")
    assert elapsed >= 0.85 * total / limit, (elapsed, total / limit)
    assert wall < 4 * total / limit, wall  # limited, not stalled
    check(root, prefix, objs)
    assert side_files(root) == []


def test_a_successful_batch_leaves_dest_clean_and_its_rerun_fetches_nothing(
    seaweed, proxy, tmp_path
):
    prefix = "clean-batch/"
    sizes = {f"d{i % 3}/f{i}.bin": 1000 + 97 * i for i in range(12)}
    sizes["big.bin"] = 9 * MiB  # through the engine: its checkpoint and lock go too
    objs = upload(seaweed, prefix, sizes, seed=62)
    root = tmp_path / "out"
    args = ["--recursive", f"s3://{BUCKET}/{prefix}", f"{root}/"]
    first = run(proxy, *args)
    assert first.returncode == 0, first.stderr
    check(root, prefix, objs)
    assert side_files(root) == []  # no .objget-batch.db, -wal, -shm, .objget-batch.lock

    proxy.reset()
    again = run(proxy, *args)  # the journal is gone: known by size + mtime, no request
    assert again.returncode == 0, again.stderr
    s = summary(again)
    assert s["skipped"] == len(objs) and s["downloaded"] == 0, s
    assert proxy.touched() == set()
    assert side_files(root) == []
    check(root, prefix, objs)


def test_a_manifest_rerun_after_success_asks_one_head_per_entry_and_no_get(
    seaweed, proxy, tmp_path
):
    """Manifest entries come without a size: the re-run learns it with a HEAD, never a GET."""
    prefix = "clean-manifest/"
    objs = upload(seaweed, prefix, {f"m{i}.bin": 2000 + i for i in range(5)}, seed=63)
    manifest = tmp_path / "m.txt"
    manifest.write_text("".join(f"s3://{BUCKET}/{key}\n" for key in objs))
    root = tmp_path / "out"
    first = run(proxy, "--manifest", str(manifest), f"{root}/")
    assert first.returncode == 0, first.stderr
    assert side_files(root) == []
    proxy.reset()
    again = run(proxy, "--manifest", str(manifest), f"{root}/")
    assert again.returncode == 0, again.stderr
    assert summary(again)["skipped"] == len(objs)
    assert not proxy.gets()
    assert {k: n for (m, k), n in proxy.requests.items() if m == "HEAD"} == dict.fromkeys(objs, 1)
    assert side_files(root) == []


def test_a_batch_with_a_failure_keeps_its_journal_and_the_rerun_fetches_only_what_is_left(
    seaweed, proxy, tmp_path
):
    prefix = "fail-batch/"
    objs = upload(seaweed, prefix, {f"f{i}.bin": 3000 + i for i in range(8)}, seed=64)
    denied = f"{prefix}f3.bin"
    proxy.deny.add(denied)
    root = tmp_path / "out"
    args = ["--recursive", f"s3://{BUCKET}/{prefix}", f"{root}/"]
    first = run(proxy, *args)
    assert first.returncode == 8, first.stderr
    assert (root / ".objget-batch.db").is_file()
    assert ".objget-batch.lock" in side_files(root)

    proxy.deny.clear()
    proxy.reset()
    again = run(proxy, *args)
    assert again.returncode == 0, again.stderr
    assert set(proxy.gets()) == {denied}
    s = summary(again)
    assert s["downloaded"] == 1 and s["skipped"] == len(objs) - 1, s
    check(root, prefix, objs)
    assert side_files(root) == []  # now that every object is done the journal goes
