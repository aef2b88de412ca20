"""Downloads that are interrupted: the object overwritten mid-download (412, as in oss2) and
the drop-in SIGKILLed at about 40 % and called again, against the OSS-protocol test server."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import oss2
import oss2.exceptions as oe
import pytest

import objget
from objget.engine import _checkpoint as ck

from .._servers.oss_fixture import (
    AK,
    REGION,
    SK,
    MiB,
    cli_env,
    covered,
    gets,
    make_bucket,
    no_leftovers,
    run_cli,
    span_of,
)
from .._servers.oss_server import Fault, OssServer, RequestInfo
from .._servers.seaweed import own_seaweed
from .._servers.util import sha256_file, wait_until, write_random

BUCKET = "objget-oss-resume"


@pytest.fixture(scope="module")
def bucket_name(oss: OssServer) -> str:
    oss.create_bucket(BUCKET)
    return BUCKET


def dropin(oss: OssServer, key: str, dest, **kw) -> None:
    objget.resumable_download(make_bucket(oss, BUCKET), key, str(dest), **kw)


# --- the object changes during a download ----------------------------------------------------
def overwrite_on_second_get(oss: OssServer, key: str, new: bytes) -> threading.Event:
    """Hold the first GET of `key` mid-body; when the second GET arrives, overwrite the object
    first (that GET then fails its If-Match with 412). Returns an event set after the put."""
    done = threading.Event()
    seen = 0
    lock = threading.Lock()

    def hook(r: RequestInfo) -> Fault | None:
        nonlocal seen
        if r.method != "GET" or r.key != key:
            return None
        with lock:
            seen += 1
            n = seen
            if n == 2:
                oss.put(BUCKET, key, new)
                done.set()
        return Fault(pause_after=256 * 1024, pause=1.0) if n == 1 else None

    oss.on_request = hook
    return done


@pytest.mark.interrupt
def test_dropin_object_overwritten_mid_download_is_precondition_failed(oss, bucket_name, tmp_path):
    old, new = random.Random(5).randbytes(8 * MiB), random.Random(6).randbytes(8 * MiB)
    key = "changing/dropin.bin"
    oss.put(BUCKET, key, old)
    out = tmp_path / "out.bin"
    out.write_bytes(b"previous contents")
    store = oss2.ResumableDownloadStore(root=str(tmp_path / "store"))
    kw = {"multiget_threshold": MiB, "part_size": MiB, "store": store}
    replaced = overwrite_on_second_get(oss, key, new)
    with pytest.raises(oe.PreconditionFailed) as err:
        dropin(oss, key, out, **kw)
    assert replaced.is_set()
    assert err.value.status == 412 and isinstance(err.value.__cause__, objget.ObjectChanged)
    assert out.read_bytes() == b"previous contents"
    oss.clear_faults()
    mark = len(oss.log)
    dropin(oss, key, out, **kw)  # restarts cleanly: only the new bytes
    assert out.read_bytes() == new
    assert covered(gets(oss, BUCKET, key, mark)) == [(0, len(new))]
    assert not os.listdir(store.dir)
    no_leftovers(out)


@pytest.mark.interrupt
def test_cli_object_overwritten_mid_download_exits_3_then_gets_the_new_bytes(
    oss, bucket_name, tmp_path
):
    old, new = random.Random(7).randbytes(8 * MiB), random.Random(8).randbytes(8 * MiB)
    key = "changing/cli.bin"
    oss.put(BUCKET, key, old)
    out = tmp_path / "out.bin"
    args = [f"oss://{BUCKET}/{key}", str(out), "--part-size", "1M", "-j", "4"]
    replaced = overwrite_on_second_get(oss, key, new)
    proc = run_cli(args, cli_env(oss))
    assert replaced.is_set()
    assert proc.returncode == 3, proc.stderr
    assert "changed" in proc.stderr
    assert not out.exists()
    oss.clear_faults()
    proc = run_cli([*args, "--json"], cli_env(oss))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == new
    assert json.loads(proc.stdout)["bytes_resumed"] == 0


# --- kill and resume through the drop-in -----------------------------------------------------
CHILD = """\
import sys
import oss2
import objget

endpoint, bucket_name, key, dest, root = sys.argv[1:]
bucket = oss2.Bucket(oss2.AuthV4({ak!r}, {sk!r}), endpoint, bucket_name, region={region!r})
objget.resumable_download(
    bucket, key, dest, multiget_threshold=1024 * 1024, part_size=1024 * 1024, num_threads=4,
    store=oss2.ResumableDownloadStore(root=root),
)
"""


@pytest.mark.interrupt
def test_dropin_killed_at_40_percent_resumes_with_the_rest(oss, bucket_name, tmp_path):
    size = 64 * MiB
    src = write_random(tmp_path / "src.bin", size, seed=64)
    key = "resume/dropin.bin"
    oss.put(BUCKET, key, src)
    digest = sha256_file(src)
    src.unlink()
    out = tmp_path / "out.bin"
    root = str(tmp_path / "store")
    store = oss2.ResumableDownloadStore(root=root)
    ckpt = os.path.join(
        store.dir, store.make_store_key(BUCKET, key, os.path.abspath(out)) + ".objget-ckpt"
    )
    started = 0
    lock = threading.Lock()

    def slow(r: RequestInfo) -> Fault | None:  # 0.5 s per 1 MiB part and stream
        nonlocal started
        if r.method == "GET" and r.key == key:
            with lock:
                started += 1
            return Fault(delay=0.5)
        return None

    oss.on_request = slow
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(ak=AK, sk=SK, region=REGION))
    env = cli_env(oss)
    cmd = [sys.executable, str(script), oss.endpoint, BUCKET, key, str(out), root]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            try:
                saved = ck.load(ckpt)
            except (ck.CheckpointInvalid, OSError):
                saved = None
            done = sum(s.stop - s.start for s in saved.spans) if saved else 0
            if done >= 0.4 * size:
                break
            time.sleep(0.02)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"the child ended before the kill: {err!r}"
    assert 0.4 * size <= done < size
    oss.clear_faults()

    def settled() -> bool:  # every GET the child started is in the log
        with lock:
            return len(gets(oss, BUCKET, key)) == started

    wait_until(settled, 30, what="the killed child's GETs to finish on the server")
    first = oss.bytes_served(BUCKET, key)
    saved = ck.load(ckpt)  # what the killed run left: the resume must not ask for it again
    assert saved is not None
    mark = len(oss.log)
    again = subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr.decode()
    refetched = oss.bytes_served(BUCKET, key) - first
    assert sha256_file(out) == digest
    assert refetched <= 0.62 * size
    asked = [span_of(e) for e in gets(oss, BUCKET, key, mark)]
    assert not [(a, b) for a, b in asked for s in saved.spans if a < s.stop and s.start < b]
    assert not os.path.exists(ckpt) and not os.listdir(store.dir)
    no_leftovers(out)
    print(f"first run served {first / MiB:.1f} MiB, killed at {done / size:.0%} saved; "
          f"resume fetched {refetched / MiB:.1f} MiB ({refetched / size:.0%})")  # fmt: skip


# A SeaweedFS of this module's own (see `own_seaweed`), in place of the session one.
seaweed = pytest.fixture(scope="module", name="seaweed")(own_seaweed)
