"""HTTPS end to end: nginx with certificates the tests make, the CLI as a subprocess and the
library in-process. Trust options, clear TLS errors, connection reuse, kill-and-resume."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import objget
from objget.engine._checkpoint import CheckpointInvalid, load

from .._servers.util import sha256_file, write_random
from ._tls import CertSet, TlsNginx, access_entries, make_ca, self_signed, sign

MiB = 1024 * 1024
SIZE = 64 * MiB
RESUME_SIZE = 256 * MiB
WARNING = "warning: TLS certificates are NOT verified (--no-verify-tls)"

# trust settings of the environment the tests run in must not leak into the children
_TRUST_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TRUST_ENV}
    env.update(extra)
    return env


def objget_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "objget", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env or child_env(),
    )


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = objget_cli(*args, env=env)
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertSet, Path]:
    """The test CA and the directory to make further certificates in."""
    base = tmp_path_factory.mktemp("pki")
    return make_ca(base / "ca"), base


@pytest.fixture(scope="module")
def site(tmp_path_factory, pki):
    """nginx over TLS with a certificate from the test CA; 64 MiB and 256 MiB objects."""
    ca, base = pki
    root = tmp_path_factory.mktemp("root")
    write_random(root / "big.bin", SIZE, seed=21)
    write_random(root / "resume.bin", RESUME_SIZE, seed=22)
    (root / "small.txt").write_bytes(b"hello over TLS\n")
    good = sign(ca, base / "good", "good")
    with TlsNginx(root, tmp_path_factory.mktemp("nginx"), cert=good, ca=ca.cert) as web:
        yield web, root


@pytest.fixture(scope="module")
def digests(site):
    _, root = site
    return {name: sha256_file(root / name) for name in ("big.bin", "resume.bin")}


def bad_server(root: Path, work: Path, cert: CertSet) -> TlsNginx:
    return TlsNginx(root, work, cert=cert)


def only_dest_dir_is_empty(directory: Path) -> None:
    left = sorted(p.name for p in directory.iterdir())
    assert left == [], f"left behind after a TLS failure: {left}"


# --- verified downloads -----------------------------------------------------------------


def test_cli_with_ca_bundle_downloads_identical_bytes(site, digests, pki, tmp_path):
    web, _ = site
    ca, _ = pki
    dest = tmp_path / "big.bin"
    code, out, err = run_cli(f"{web.url}/big.bin", str(dest), "--ca-bundle", str(ca.cert), "--json")
    assert code == 0, err
    assert sha256_file(dest) == digests["big.bin"]
    assert json.loads(out)["size"] == SIZE
    assert "warning" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]


def test_library_with_ca_bundle_reuses_connections(site, digests, pki, tmp_path):
    web, _ = site
    ca, _ = pki
    skip = len(access_entries(web.access_log))
    config = objget.DownloadConfig(ca_bundle=str(ca.cert), part_size=MiB, max_workers=4)
    with objget.Downloader(config=config) as dl:
        result = dl.download(f"{web.url}/big.bin", tmp_path / "big.bin")
        again = dl.download(f"{web.url}/small.txt", tmp_path / "small.txt")
    assert sha256_file(tmp_path / "big.bin") == digests["big.bin"]
    assert result.size == SIZE and again.size == 15
    entries = access_entries(web.access_log, skip)
    ranged = [e for e in entries if e.range]
    assert len(ranged) >= SIZE // MiB
    assert all(e.protocol.startswith("TLS") for e in entries)
    connections = {e.connection for e in entries}
    # each stream keeps its connection across ranges; a connection is only dropped when its
    # body is cut short (work stealing, a stream retiring), and the second download reuses the pool
    assert len(connections) * 4 <= len(entries), (len(connections), len(entries))
    assert max(e.request_no for e in entries) >= 8


def test_ssl_cert_file_and_dir_are_honoured(site, pki, tmp_path):
    web, _ = site
    ca, base = pki
    url = f"{web.url}/small.txt"
    code, _, err = run_cli(url, str(tmp_path / "a.txt"), env=child_env(SSL_CERT_FILE=str(ca.cert)))
    assert code == 0, err
    assert (tmp_path / "a.txt").read_bytes() == b"hello over TLS\n"

    cadir = base / "cadir"
    cadir.mkdir(exist_ok=True)
    (cadir / "test-ca.pem").write_bytes(ca.cert.read_bytes())
    subprocess.run(["openssl", "rehash", str(cadir)], check=True, timeout=60)
    code, _, err = run_cli(url, str(tmp_path / "b.txt"), env=child_env(SSL_CERT_DIR=str(cadir)))
    assert code == 0, err
    assert (tmp_path / "b.txt").read_bytes() == b"hello over TLS\n"


def test_aws_ca_bundle_is_not_used_for_https_urls(site, pki, tmp_path):
    """AWS_CA_BUNDLE belongs to s3:// sources (as in the AWS tools), not to plain URLs."""
    web, _ = site
    ca, _ = pki
    code, _, err = run_cli(
        f"{web.url}/small.txt", str(tmp_path), env=child_env(AWS_CA_BUNDLE=str(ca.cert))
    )
    assert code == 5, err


# --- TLS failures: exit 5, the host and the reason, no traceback, nothing left ------------


def assert_tls_failure(code: int, err: str, *reason: str) -> None:
    assert code == 5, err
    assert "Traceback" not in err
    assert "TLS error talking to 127.0.0.1" in err
    assert any(r in err for r in reason), err
    assert "run the same command again" not in err  # nothing to resume


def test_unknown_ca_is_a_clear_error(site, tmp_path):
    web, _ = site
    dest = tmp_path / "out"
    dest.mkdir()
    code, _, err = run_cli(f"{web.url}/big.bin", str(dest / "big.bin"))
    assert_tls_failure(code, err, "unable to get local issuer certificate")
    assert "--ca-bundle" in err
    only_dest_dir_is_empty(dest)


def test_library_unknown_ca_raises_tls_error_without_retrying(site, tmp_path):
    web, _ = site
    skip = len(access_entries(web.access_log))
    with pytest.raises(objget.TLSError) as info:
        objget.download(f"{web.url}/big.bin", tmp_path / "big.bin")
    assert "127.0.0.1" in str(info.value)
    assert not isinstance(info.value, objget.RetriesExhausted)
    assert access_entries(web.access_log, skip) == []
    only_dest_dir_is_empty(tmp_path)


def test_wrong_ca_bundle_is_a_clear_error(site, pki, tmp_path):
    web, _ = site
    _, base = pki
    other = make_ca(base / "other-ca", name="some other CA")
    dest = tmp_path / "out"
    dest.mkdir()
    code, _, err = run_cli(f"{web.url}/big.bin", str(dest), "--ca-bundle", str(other.cert))
    assert_tls_failure(code, err, "unable to get local issuer certificate")
    only_dest_dir_is_empty(dest)


def test_self_signed_certificate_is_a_clear_error(site, pki, tmp_path):
    _, root = site
    _, base = pki
    cert = self_signed(base / "self")
    dest = tmp_path / "out"
    dest.mkdir()
    with bad_server(root, tmp_path / "ng", cert) as web:
        code, _, err = run_cli(f"{web.url}/small.txt", str(dest))
        assert_tls_failure(code, err, "self-signed", "self signed")
        only_dest_dir_is_empty(dest)
        # trusting that very certificate makes it work
        code, _, err = run_cli(f"{web.url}/small.txt", str(dest), "--ca-bundle", str(cert.cert))
        assert code == 0, err


def test_wrong_host_name_is_a_clear_error(site, pki, tmp_path):
    _, root = site
    ca, base = pki
    cert = sign(ca, base / "wrong-host", "elsewhere", san="DNS:elsewhere.example")
    dest = tmp_path / "out"
    dest.mkdir()
    with bad_server(root, tmp_path / "ng", cert) as web:
        code, _, err = run_cli(f"{web.url}/small.txt", str(dest), "--ca-bundle", str(ca.cert))
    assert_tls_failure(code, err, "mismatch", "does not match")
    assert "--ca-bundle" not in err  # a CA bundle would not help
    only_dest_dir_is_empty(dest)


def test_expired_certificate_is_a_clear_error(site, pki, tmp_path):
    _, root = site
    ca, base = pki
    cert = sign(
        ca,
        base / "expired",
        "expired",
        not_before="20200101000000Z",
        not_after="20200201000000Z",
    )
    dest = tmp_path / "out"
    dest.mkdir()
    with bad_server(root, tmp_path / "ng", cert) as web:
        code, _, err = run_cli(f"{web.url}/small.txt", str(dest), "--ca-bundle", str(ca.cert))
    assert_tls_failure(code, err, "expired")
    assert "--ca-bundle" not in err
    only_dest_dir_is_empty(dest)


# --- --no-verify-tls ---------------------------------------------------------------------


def test_no_verify_tls_downloads_and_warns_every_time(site, digests, tmp_path):
    web, _ = site
    for attempt in range(2):
        dest = tmp_path / f"big{attempt}.bin"
        code, _, err = run_cli(f"{web.url}/big.bin", str(dest), "--no-verify-tls", "-q")
        assert code == 0, err
        assert err.count(WARNING) == 1, err
        assert "InsecureRequestWarning" not in err  # no per-request warnings from urllib3
        assert sha256_file(dest) == digests["big.bin"]


def test_library_without_verification_logs_once_and_never_warns(site, tmp_path, caplog):
    """pytest runs with -W error: a per-request InsecureRequestWarning would fail this."""
    web, _ = site
    config = objget.DownloadConfig(verify_tls=False, part_size=MiB, max_workers=4)
    with caplog.at_level(logging.WARNING, logger="objget"):
        with objget.Downloader(config=config) as dl:
            dl.download(f"{web.url}/big.bin", tmp_path / "big.bin")
            dl.download(f"{web.url}/small.txt", tmp_path / "small.txt")
    notes = [r for r in caplog.records if "not verified" in r.getMessage()]
    assert len(notes) == 1, [r.getMessage() for r in caplog.records]
    assert (tmp_path / "small.txt").read_bytes() == b"hello over TLS\n"


# --- kill and resume over HTTPS ------------------------------------------------------------


def done_bytes(ckpt: Path) -> int:
    try:
        state = load(str(ckpt))
    except (CheckpointInvalid, OSError):
        return 0
    return 0 if state is None else sum(s.stop - s.start for s in state.spans)


def kill_at(proc: subprocess.Popen[str], ckpt: Path, at: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = done_bytes(ckpt)
        if done >= at:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
            return done
        if proc.poll() is not None:
            pytest.fail(f"objget ended before it was killed: {proc.communicate()}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    pytest.fail("the download never reached the kill point")


def wait_log_quiet(log: Path) -> int:
    """Lines in the access log once nginx stopped adding any (killed connections are logged
    when nginx notices them)."""
    last = -1
    for _ in range(100):
        n = len(access_entries(log))
        if n == last:
            return n
        last = n
        time.sleep(0.1)
    return last


@pytest.mark.interrupt
def test_kill_at_40_percent_then_resume_over_https(site, digests, pki, tmp_path):
    web, _ = site
    ca, _ = pki
    url = f"{web.url}/resume.bin"
    dest = tmp_path / "resume.bin"
    bundle = ("--ca-bundle", str(ca.cert))
    first = objget_cli(url, str(dest), *bundle, "--limit-rate", "64M", "-q")
    killed_at = kill_at(first, Path(f"{dest}.objget-ckpt"), int(0.40 * RESUME_SIZE))
    assert not dest.exists()
    skip = wait_log_quiet(web.access_log)

    code, out, err = run_cli(url, str(dest), *bundle, "--json")
    assert code == 0, err
    wait_log_quiet(web.access_log)
    entries = access_entries(web.access_log, skip)
    refetched = sum(e.sent for e in entries)
    assert refetched <= 0.62 * RESUME_SIZE, (
        f"re-fetched {refetched / RESUME_SIZE:.1%} (killed at {killed_at / RESUME_SIZE:.1%}) in "
        f"{len(entries)} requests on {len({e.connection for e in entries})} connections"
    )
    assert json.loads(out)["bytes_resumed"] >= killed_at
    assert sha256_file(dest) == digests["resume.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume.bin"]


# --- s3:// over TLS: AWS_CA_BUNDLE ----------------------------------------------------------


def test_aws_ca_bundle_is_used_for_s3_sources(seaweed, site, pki, tmp_path):
    """SeaweedFS behind a TLS-terminating nginx; anonymous S3 requests."""
    _, root = site
    ca, base = pki
    data = os.urandom(3 * MiB + 17)
    seaweed.put("test", "over-tls.bin", data)
    proxy = (
        f"proxy_pass http://127.0.0.1:{seaweed.port}; proxy_set_header Host $http_host; "
        'proxy_http_version 1.1; proxy_set_header Connection "";'
    )
    cert = sign(ca, base / "proxy", "proxy")
    aws = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with TlsNginx(root, tmp_path / "ng", extra=proxy, cert=cert, ca=ca.cert) as web:
        args = ("s3://test/over-tls.bin", "--endpoint-url", web.url, "--no-sign-request")
        code, _, err = run_cli(*args, str(tmp_path / "a.bin"), env=child_env(**aws))
        assert_tls_failure(code, err, "unknown CA")

        env = child_env(AWS_CA_BUNDLE=str(ca.cert), **aws)
        code, _, err = run_cli(*args, str(tmp_path / "b.bin"), env=env)
        assert code == 0, err
        assert (tmp_path / "b.bin").read_bytes() == data

        other = make_ca(base / "s3-other-ca", name="not this one")
        env = child_env(AWS_CA_BUNDLE=str(other.cert), **aws)
        code, _, err = run_cli(*args, str(tmp_path / "c.bin"), "--ca-bundle", str(ca.cert), env=env)
        assert code == 0, err  # --ca-bundle wins over AWS_CA_BUNDLE
        assert (tmp_path / "c.bin").read_bytes() == data
