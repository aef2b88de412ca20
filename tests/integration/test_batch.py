"""Batch downloads against SeaweedFS through a counting proxy: 2,000 listed objects, a hostile
key, SIGKILL at about half and resume, a 403 and an object changed mid-download."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from objget import DownloadConfig, download_many
from objget.backends import BackendOptions
from objget.batch import BatchItem

from ._batch_data import BAD_KEY, BIG_KEY, PREFIX, Dataset, build
from ._batch_proxy import BatchProxy

BUCKET = "test"


@pytest.fixture(scope="module")
def dataset(seaweed) -> Dataset:
    return build(seaweed, BUCKET)


@pytest.fixture
def proxy(seaweed):
    with BatchProxy(seaweed.s3_url, put=seaweed.put) as p:
        yield p


def cli(proxy: BatchProxy, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "objget", "--endpoint-url", proxy.url, "--no-sign-request",
        "--retries", "2", *args,
    ]  # fmt: skip


def run(cmd: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def json_lines(stdout: str) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    objects = [x for x in lines if x["type"] == "object"]
    (summary,) = [x for x in lines if x["type"] == "summary"]
    return objects, summary


def nothing_named_evil(top: Path) -> None:
    for _, dirs, files in os.walk(top):
        assert "evil.txt" not in files and "evil.txt" not in dirs


def journal_done(dest: Path) -> set[str]:
    db = sqlite3.connect(f"file:{dest / '.objget-batch.db'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT source FROM objects WHERE state='done'")}
    finally:
        db.close()


def test_recursive_downloads_every_valid_object_and_refuses_the_bad_key(dataset, proxy, tmp_path):
    proxy.inject = [(BAD_KEY, 4, "0123")]
    dest = tmp_path / "out"
    done = run(cli(proxy, "--recursive", "--json", f"s3://{BUCKET}/{PREFIX}", str(dest)))
    assert done.returncode == 8, done.stderr
    objects, summary = json_lines(done.stdout)
    assert summary["downloaded"] == 1999 and summary["failed"] == 1
    (bad,) = [o for o in objects if o["status"] == "failed"]
    assert bad["source"] == f"s3://{BUCKET}/{BAD_KEY}" and bad["error_kind"] == "unsafe-path"
    assert "'..'" in bad["error"]
    assert BAD_KEY in done.stderr and "1 failed" in done.stderr
    dataset.check(dest)
    nothing_named_evil(tmp_path)
    assert BAD_KEY not in proxy.touched()
    big = next(o for o in objects if o["source"].endswith(BIG_KEY))
    assert big["verified"][0] == "size" and big["bytes_fetched"] == 64 * 1024 * 1024

    # a re-run: every object is unchanged, so nothing but the listing is requested
    proxy.reset()
    again = run(cli(proxy, "--recursive", "--json", f"s3://{BUCKET}/{PREFIX}", str(dest)))
    assert again.returncode == 8, again.stderr
    _, summary = json_lines(again.stdout)
    assert summary["skipped"] == 1999 and summary["downloaded"] == 0
    assert proxy.touched() == set()


@pytest.mark.interrupt
def test_sigkill_at_half_then_rerun_fetches_no_finished_object_again(dataset, proxy, tmp_path):
    dest = tmp_path / "out"
    proxy.throttle[BIG_KEY] = 24 * 1024 * 1024  # the big one is still running at the kill
    cmd = cli(proxy, "--recursive", "--json", "-j", "8", f"s3://{BUCKET}/{PREFIX}", str(dest))
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(proxy.gets()) < 1000 and time.monotonic() < deadline:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        if child.stderr:
            child.stderr.close()
    finished = journal_done(dest)
    assert 200 < len(finished) < 1999, len(finished)
    big_partial = (dest / "big" / "model 64M.bin.objget-ckpt").exists()

    proxy.reset()
    del proxy.throttle[BIG_KEY]
    done = run(cmd)
    assert done.returncode == 0, done.stderr
    objects, summary = json_lines(done.stdout)
    assert summary["failed"] == 0
    assert summary["skipped"] + summary["downloaded"] == 1999
    assert summary["skipped"] >= len(finished)
    fetched_again = {k for k in proxy.gets() if f"s3://{BUCKET}/{k}" in finished}
    assert fetched_again == set()
    dataset.check(dest)
    if big_partial:
        big = next(o for o in objects if o["source"].endswith(BIG_KEY))
        assert big["bytes_resumed"] > 0 and big["bytes_fetched"] < 64 * 1024 * 1024


@pytest.fixture
def small_prefix(seaweed):
    prefix = "b403/"
    data = {f"{prefix}o{i:02d}.bin": os.urandom(1000 + i) for i in range(28)}
    data[f"{prefix}secret.bin"] = b"top secret"
    data[f"{prefix}moving.bin"] = b"old bytes" * 1000
    for key, value in data.items():
        seaweed.put(BUCKET, key, value)
    return prefix, data


@pytest.mark.interrupt
def test_a_403_and_a_changing_object_fail_alone_and_are_named(small_prefix, proxy, tmp_path):
    prefix, data = small_prefix
    secret, moving = f"{prefix}secret.bin", f"{prefix}moving.bin"
    proxy.deny.add(secret)
    proxy.change_on_get[moving] = b"new bytes" * 1000
    dest = tmp_path / "out"
    done = run(cli(proxy, "--recursive", "--json", f"s3://{BUCKET}/{prefix}", str(dest)))
    assert done.returncode == 8, done.stderr
    objects, summary = json_lines(done.stdout)
    failed = {o["source"].rsplit("/", 1)[1]: o["error_kind"] for o in objects if o.get("error")}
    assert failed == {"secret.bin": "access-denied", "moving.bin": "changed"}
    assert summary["downloaded"] == 28
    assert secret in done.stderr and moving in done.stderr and "2 failed" in done.stderr
    for key, value in data.items():
        if key not in (secret, moving):
            assert (dest / key[len(prefix) :]).read_bytes() == value

    # the store is fixed: a re-run fetches only the two failed objects
    proxy.deny.clear()
    proxy.reset()
    again = run(cli(proxy, "--recursive", "--json", f"s3://{BUCKET}/{prefix}", str(dest)))
    assert again.returncode == 0, again.stderr
    assert set(proxy.gets()) == {secret, moving}
    assert (dest / "moving.bin").read_bytes() == b"new bytes" * 1000
    assert (dest / "secret.bin").read_bytes() == b"top secret"


def test_manifest_with_sha256_include_exclude_and_dry_run(small_prefix, seaweed, tmp_path):
    prefix, data = small_prefix
    good = f"{prefix}o01.bin"
    manifest = tmp_path / "m.jsonl"
    lines = [
        json.dumps({"source": f"s3://{BUCKET}/{good}", "dest": "x/one.bin",
                    "sha256": hashlib.sha256(data[good]).hexdigest()}),
        json.dumps({"source": f"s3://{BUCKET}/{prefix}o02.bin", "sha256": "0" * 64}),
        f"s3://{BUCKET}/{prefix}o03.bin",
        json.dumps({"source": f"s3://{BUCKET}/{prefix}o04.bin", "dest": "../escape"}),
    ]  # fmt: skip
    manifest.write_text("\n".join(lines) + "\n")
    options = BackendOptions(endpoint=seaweed.s3_url, anonymous=True)
    dest = tmp_path / "m"
    plan = download_many(None, dest, manifest=manifest, options=options, dry_run=True)
    assert sorted(o.status for o in plan.objects) == ["failed", "planned", "planned", "planned"]
    assert not dest.exists()
    result = download_many(
        None, dest, manifest=manifest, options=options, config=DownloadConfig(max_workers=4)
    )
    kinds = sorted((o.status, o.error_kind) for o in result.objects)
    assert kinds == [
        ("downloaded", None), ("downloaded", None), ("failed", "integrity"),
        ("failed", "unsafe-path"),
    ]  # fmt: skip
    assert (dest / "x/one.bin").read_bytes() == data[good]
    assert (dest / prefix / "o03.bin").read_bytes() == data[f"{prefix}o03.bin"]
    assert not (dest / prefix / "o02.bin").exists()
    nothing_named_evil(tmp_path)
    assert not (tmp_path / "escape").exists()

    # a manifest re-run checks identities with HEAD only, and retries the failure
    again = download_many(None, dest, manifest=manifest, options=options)
    assert sorted(o.status for o in again.objects) == ["failed", "failed", "skipped", "skipped"]

    filtered = download_many(
        [f"s3://{BUCKET}/{prefix}", BatchItem(source=f"s3://{BUCKET}/{good}", dest="extra.bin")],
        tmp_path / "f",
        include=["o1*", "extra.bin"],
        exclude=["o15*"],
        options=options,
    )
    names = sorted(os.path.basename(o.path or "") for o in filtered.objects)
    assert names == ["extra.bin"] + [f"o1{i}.bin" for i in range(10) if i != 5]


SIDE_NAMES = [
    "x.bin.objget-part",
    "x.bin.objget-ckpt",
    "x.bin.objget-ckpt.tmp",
    "x.bin.objget-ckpt-live",
    "x.bin.objget-lock",
    "x.bin.objget-r0.ckpt",
    "x.bin.objget-r0.lock",
    ".objget-batch.db",
    "sub/.objget-batch.db-wal",
    "y.objget-part/inside",
    "sub/Z.OBJGET-CKPT",
]


def test_keys_with_the_side_file_marker_are_refused_named_and_never_touched(
    seaweed, proxy, tmp_path
):
    """Every key with a component containing `.objget-` is refused (exit 8, named in the
    summary); its siblings download as usual and no side file is written from a key."""
    prefix = "side/"
    x, big = os.urandom(3000), os.urandom(17 * 1024 * 1024)  # a small and an engine object
    seaweed.put(BUCKET, f"{prefix}x.bin", x)
    seaweed.put(BUCKET, f"{prefix}sub/big.bin", big)
    for name in SIDE_NAMES:
        seaweed.put(BUCKET, f"{prefix}{name}", b"not objget's: " + name.encode())
    dest = tmp_path / "out"
    done = run(cli(proxy, "--recursive", "--json", f"s3://{BUCKET}/{prefix}", str(dest)))
    assert done.returncode == 8, done.stderr
    objects, summary = json_lines(done.stdout)
    refused = {o["source"] for o in objects if o.get("error_kind") == "unsafe-path"}
    assert refused == {f"s3://{BUCKET}/{prefix}{n}" for n in SIDE_NAMES}
    assert summary["downloaded"] == 2 and summary["failed"] == len(SIDE_NAMES)
    assert f"{len(SIDE_NAMES)} failed" in done.stderr
    for name in SIDE_NAMES:
        assert f"{prefix}{name}" in done.stderr
    assert (dest / "x.bin").read_bytes() == x
    assert (dest / "sub" / "big.bin").read_bytes() == big
    files = sorted(
        str(p.relative_to(dest)) for p in dest.rglob("*") if not p.name.startswith(".objget-batch")
    )
    assert files == ["sub", "sub/big.bin", "x.bin"]
    assert not {f"{prefix}{n}" for n in SIDE_NAMES} & proxy.touched()
