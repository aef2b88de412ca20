"""`objget SOURCE -`: the CLI as a subprocess streams to a pipe, from nginx, SeaweedFS and OSS.

stdout is compared byte for byte (sizes 0, 1, a few MiB, 200 MiB over parallel ranges); the
peak RSS with a slow reader shows the reorder window bounds memory; nothing is written to the
working directory or TMPDIR; a reader that leaves early ends objget at once, by SIGPIPE; a
reset mid-body is retried; a wrong checksum (sha256, S3's CRC, OSS's CRC-64) exits 4 saying the
bytes sent are bad.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .._servers.util import sha256_file, write_random
from ._ranged_app import RangedObject

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
AK, SK = "objgetAK", "objgetSecret0123456789"  # the seaweed_auth fixture's first identity


class Run:
    """One finished `objget ... -` run: what stdout carried, stderr, exit status, peak RSS
    (KiB, when measured)."""

    def __init__(self, returncode: int, size: int, sha256: str, head: bytes, err: str, rss: int):
        self.returncode, self.size, self.sha256 = returncode, size, sha256
        self.head, self.stderr, self.maxrss = head, err, rss

    def json(self) -> dict:
        return json.loads(self.stderr)


def stream(
    *args: str,
    cwd: Path,
    env: dict,
    pause: float = 0.0,
    timeout: float = 240,
    rss_file: Path | None = None,
) -> Run:
    """Run the CLI with stdout on a pipe this test reads (sleeping `pause` s per MiB), hashing
    it as it comes. With `rss_file`, GNU time measures the peak RSS: the rusage of a child
    forked from this (large) test process carries the parent's RSS at the fork into its
    maxrss, so only a child forked from a small process (time) is measured truly."""
    cmd = [sys.executable, "-m", "objget", *args]
    if rss_file is not None:
        if not os.access("/usr/bin/time", os.X_OK):
            pytest.fail("/usr/bin/time is missing: install the Debian package time")
        cmd = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
    err = bytearray()
    t = threading.Thread(target=lambda: err.extend(proc.stderr.read()))
    t.start()
    h, size, head = hashlib.sha256(), 0, bytearray()
    deadline = time.monotonic() + timeout
    try:
        while chunk := proc.stdout.read1(MiB):
            h.update(chunk)
            size += len(chunk)
            if len(head) < 4096:
                head += chunk[: 4096 - len(head)]
            if pause:
                time.sleep(pause * len(chunk) / MiB)
            if time.monotonic() > deadline:
                pytest.fail(f"objget still streaming after {timeout} s")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    t.join(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    rss = int(rss_file.read_text().split()[-1]) if rss_file is not None else 0
    return Run(proc.returncode, size, h.hexdigest(), bytes(head), err.decode(), rss)


@pytest.fixture
def env(tmp_path):
    """A clean environment: its own empty TMPDIR (checked afterwards), the worktree's src."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(
        PYTHONPATH=str(REPO / "src"),
        TMPDIR=str(tmp),
        AWS_ACCESS_KEY_ID=AK,
        AWS_SECRET_ACCESS_KEY=SK,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
    )
    return e


@pytest.fixture
def cwd(tmp_path):
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def no_side_files(cwd: Path, env: dict) -> None:
    assert list(cwd.iterdir()) == [], "objget left files in the working directory"
    assert list(Path(env["TMPDIR"]).iterdir()) == [], "objget left files in TMPDIR"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream-root")
    for name, size in (("empty", 0), ("one", 1), ("few", 3 * MiB + 7), ("big", 200 * MiB)):
        write_random(root / name, size, seed=size)
    return root


# --- nginx ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["empty", "one", "few"])
def test_small_objects_from_nginx(nginx_factory, site, cwd, env, name):
    web = nginx_factory(site)
    run = stream(f"{web.url}/{name}", "-", "--json", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.sha256 == sha256_file(site / name)
    result = run.json()  # --json goes to stderr: stdout carries the bytes only
    assert result["path"] == "-" and result["size"] == (site / name).stat().st_size
    assert result["verified"] == ["size"] and result["resumable"] is False
    no_side_files(cwd, env)


def test_200mib_over_parallel_ranges_from_nginx(nginx_factory, site, cwd, env):
    """20 MB/s per connection: more streams pay off, so ranges arrive out of order and go
    through the reorder window."""
    web = nginx_factory(site, extra="limit_rate 20m;")
    run = stream(f"{web.url}/big", "-", "-v", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.size == 200 * MiB and run.sha256 == sha256_file(site / "big")
    streams = int(re.search(r"up to (\d+) streams?", run.stderr).group(1))
    waited = int(re.search(r"at most (\d+) of them waited", run.stderr).group(1))
    assert streams > 1 and 0 < waited <= 64 * MiB, run.stderr
    assert "Streamed 200.0 MiB to stdout" in run.stderr
    no_side_files(cwd, env)


def test_a_slow_reader_holds_objget_within_the_window(nginx_factory, tmp_path, cwd, env):
    """512 MiB read at ~100 MiB/s while 9 streams could bring more: backpressure, not memory.
    Peak RSS stays under the 64 MiB window plus 40 MiB (the process alone: ~30 MiB)."""
    root = tmp_path / "root512"
    root.mkdir()
    write_random(root / "huge", 512 * MiB, seed=5)
    web = nginx_factory(root, extra="limit_rate 30m;")
    rss = tmp_path / "rss"  # GNU time's report: not in cwd or TMPDIR, which must stay empty
    run = stream(f"{web.url}/huge", "-", "-q", "-v", cwd=cwd, env=env, pause=0.01, rss_file=rss)
    assert run.returncode == 0, run.stderr
    assert run.size == 512 * MiB and run.sha256 == sha256_file(root / "huge")
    waited = int(re.search(r"at most (\d+) of them waited", run.stderr).group(1))
    assert waited > 32 * MiB, "the window never filled: the reader was not the slow side"
    assert waited <= 64 * MiB
    peak = run.maxrss * 1024
    streams = int(re.search(r"over up to (\d+) streams", run.stderr).group(1))
    assert streams > 1
    print(f"peak RSS {peak / MiB:.1f} MiB, {waited / MiB:.1f} MiB waited, {streams} streams")
    assert peak <= 64 * MiB + 40 * MiB, f"peak RSS {peak / MiB:.1f} MiB"
    no_side_files(cwd, env)


def test_a_reader_that_leaves_ends_objget_at_once_by_sigpipe(nginx_factory, site, cwd, env):
    web = nginx_factory(site, extra="limit_rate 20m;")
    cmd = f"{sys.executable} -m objget {web.url}/big - | head -c 100 | wc -c; "
    cmd += 'echo "status ${PIPESTATUS[*]}"'
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - started
    assert done.stdout.split("\n")[:2] == ["100", "status 141 0 0"], done
    assert done.stderr == "", "objget must end quietly"  # no traceback, no message
    assert took < 8, f"objget took {took:.1f} s to notice (10 s of data were left)"
    no_side_files(cwd, env)


def test_help_says_a_stream_cannot_resume(cwd, env):
    done = subprocess.run(
        [sys.executable, "-m", "objget", "--help"], env=env, capture_output=True, text=True
    )
    text = " ".join(done.stdout.split())
    assert "- to stream the object to stdout in order (a stream cannot resume)" in text
    assert "JSON (to stderr if DEST is -)" in text


@pytest.mark.parametrize(
    ("extra", "words"),
    [(["--recursive"], "takes one object"), (["--skip-existing"], "--skip-existing")],
)
def test_options_that_need_a_file_are_refused(cwd, env, extra, words):
    done = subprocess.run(
        [sys.executable, "-m", "objget", *extra, "http://127.0.0.1:9/x", "-"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and words in done.stderr and done.stdout == ""
    no_side_files(cwd, env)


# --- pytest-httpserver: a reset mid-body, a wrong checksum, a final error mid-stream --------
@pytest.fixture(scope="module")
def data():
    return random.Random(17).randbytes(3 * MiB + 11)


def test_a_reset_mid_body_is_retried(httpserver, data, cwd, env):
    """One stream (`-j 1`: with more, another stream may take the part's rest over before
    the reset, and no retry is needed); the bytes that came before the reset are kept."""
    obj = RangedObject(data, script=["reset:1000000"])
    httpserver.expect_request("/obj").respond_with_handler(obj)
    run = stream(httpserver.url_for("/obj"), "-", "--json", "--part-size", "1M", "-j", "1",
                 cwd=cwd, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.sha256 == hashlib.sha256(data).hexdigest()
    assert run.json()["retries"] >= 1
    assert obj.bytes_sent == len(data)  # nothing sent twice
    no_side_files(cwd, env)


def test_a_server_without_ranges_is_restarted_without_a_byte_twice(httpserver, data, cwd, env):
    # the first GET is objget's probe (bytes=0-0) of a server that does not say "ranges"
    obj = RangedObject(data, ranges=False, script=["ok", "reset:1000000"])
    httpserver.expect_request("/obj").respond_with_handler(obj)
    run = stream(httpserver.url_for("/obj"), "-", "--json", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.sha256 == hashlib.sha256(data).hexdigest()
    assert run.json()["retries"] == 1
    assert [r for m, r, _ in obj.log if m == "GET"] == ["bytes=0-0", None, None]


def test_a_checksum_mismatch_exits_4_and_says_the_bytes_sent_are_bad(httpserver, data, cwd, env):
    obj = RangedObject(data)
    httpserver.expect_request("/obj").respond_with_handler(obj)
    run = stream(httpserver.url_for("/obj"), "-", "-q", "--checksum", "sha256:" + "ab" * 32,
                 cwd=cwd, env=env)  # fmt: skip
    assert run.returncode == 4
    assert run.size == len(data)  # verification happens at the end of the stream
    assert f"the {len(data)} bytes already written to stdout are bad" in run.stderr
    assert "Traceback" not in run.stderr
    no_side_files(cwd, env)


def test_a_final_error_mid_stream_says_what_the_reader_got(httpserver, data, cwd, env):
    obj = RangedObject(data, script=["ok", "status:404"])
    httpserver.expect_request("/obj").respond_with_handler(obj)
    run = stream(httpserver.url_for("/obj"), "-", "-q", "--part-size", "1M", "-j", "1",
                 cwd=cwd, env=env)  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert run.size == MiB and run.head == data[:4096]
    assert f"stdout got the first {MiB} bytes" in run.stderr
    assert "a stream cannot resume" in run.stderr
    no_side_files(cwd, env)


# --- SeaweedFS (s3://) ------------------------------------------------------------------------
def s3_args(server, key: str) -> list[str]:
    return [f"s3://test/{key}", "-", "--endpoint-url", server.s3_url]


@pytest.mark.parametrize("size", [0, 1, 3 * MiB + 7])
def test_small_objects_from_seaweedfs(seaweed_auth, cwd, env, size):
    body = random.Random(size).randbytes(size)
    key = f"stream/{size}.bin"
    seaweed_auth.client.put_object(Bucket="test", Key=key, Body=body, ChecksumAlgorithm="CRC32C")
    run = stream(*s3_args(seaweed_auth, key), "--json", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.sha256 == hashlib.sha256(body).hexdigest()
    assert run.json()["verified"] == (["size", "crc32c"] if size else ["size"])
    no_side_files(cwd, env)


def test_200mib_from_seaweedfs_with_its_crc(seaweed_auth, site, cwd, env):
    key = "stream/big.bin"
    with open(site / "big", "rb") as f:
        seaweed_auth.client.put_object(
            Bucket="test", Key=key, Body=f.read(), ChecksumAlgorithm="CRC64NVME"
        )
    run = stream(*s3_args(seaweed_auth, key), "--json", "--part-size", "8M", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.size == 200 * MiB and run.sha256 == sha256_file(site / "big")
    assert run.json()["verified"] == ["size", "crc64nvme"]
    no_side_files(cwd, env)


def test_a_byte_flipped_in_transit_exits_4_after_the_stream(seaweed_auth, cwd, env):
    from .test_s3 import Proxy

    body = random.Random(4).randbytes(3 * MiB)
    seaweed_auth.client.put_object(
        Bucket="test", Key="stream/flip.bin", Body=body, ChecksumAlgorithm="CRC64NVME"
    )
    with Proxy(seaweed_auth, "flip") as proxy:
        run = stream("s3://test/stream/flip.bin", "-", "--endpoint-url", proxy.url, "-q",
                     cwd=cwd, env=env)  # fmt: skip
    assert proxy.flipped == 1
    assert run.returncode == 4, run.stderr
    assert "crc64nvme mismatch" in run.stderr
    assert f"the {len(body)} bytes already written to stdout are bad" in run.stderr
    no_side_files(cwd, env)


def test_sigpipe_exit_is_the_shells_141_not_a_traceback(nginx_factory, site, cwd, env):
    """The same as above without a shell: the process dies of SIGPIPE."""
    web = nginx_factory(site, extra="limit_rate 20m;")
    proc = subprocess.Popen(
        [sys.executable, "-m", "objget", f"{web.url}/big", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
    )  # fmt: skip
    assert proc.stdout.read(100)
    proc.stdout.close()
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGPIPE
    assert err == b""


# --- OSS (the OSS-protocol server in front of SeaweedFS: CRC-64 on every answer) ------------
@pytest.fixture(scope="module")
def oss_bucket(oss):
    oss.create_bucket("streamed")
    return "streamed"


def oss_stream(oss, key: str, *args: str, cwd: Path, env: dict) -> Run:
    from .._servers.oss_fixture import cli_env

    e = cli_env(oss)
    e["TMPDIR"] = env["TMPDIR"]
    return stream(f"oss://streamed/{key}", "-", *args, cwd=cwd, env=e)


def test_oss_stream_is_verified_by_its_crc64(oss, oss_bucket, cwd, env):
    body = random.Random(64).randbytes(20 * MiB + 3)
    oss.put(oss_bucket, "crc.bin", body)
    run = oss_stream(oss, "crc.bin", "--json", "--part-size", "1M", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.sha256 == hashlib.sha256(body).hexdigest()
    assert run.json()["verified"] == ["size", "crc64ecma"]
    no_side_files(cwd, env)


def test_oss_corrupted_byte_exits_4_after_the_stream(oss, oss_bucket, cwd, env):
    body = random.Random(65).randbytes(5 * MiB)
    oss.put(oss_bucket, "bad.bin", body)
    oss.corrupt(oss_bucket, "bad.bin", 3 * MiB + 5)
    run = oss_stream(oss, "bad.bin", "-q", cwd=cwd, env=env)
    assert run.returncode == 4, run.stderr
    assert run.size == len(body) and run.sha256 != hashlib.sha256(body).hexdigest()
    assert "crc64ecma mismatch" in run.stderr
    assert f"the {len(body)} bytes already written to stdout are bad" in run.stderr
    no_side_files(cwd, env)


def test_an_object_of_unknown_size_streams_to_its_end(httpserver, data, cwd, env):
    """No HEAD, no Content-Length (a chunked answer, also to objget's probe): one stream to
    the end of the body."""
    from werkzeug.wrappers import Response

    def handler(request):
        if request.method == "HEAD":
            return Response(b"", status=405)
        view = memoryview(data)
        return Response(bytes(view[i : i + 65536]) for i in range(0, len(data), 65536))

    httpserver.expect_request("/chunked").respond_with_handler(handler)
    run = stream(httpserver.url_for("/chunked"), "-", "--json", cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    assert run.sha256 == hashlib.sha256(data).hexdigest()
    assert run.json()["size"] == len(data)
    no_side_files(cwd, env)


def test_a_closed_stdout_is_refused_before_any_byte(nginx_factory, site, cwd, env):
    """With descriptor 1 closed at start, the number may belong to a socket by the time the
    first byte comes: objget must not write there."""
    web = nginx_factory(site)
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m objget {web.url}/few - >&-"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 6, done.stderr
    assert done.stderr == "objget: DEST -: stdout is not open\n"
    no_side_files(cwd, env)
