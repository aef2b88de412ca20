"""s3:// downloads from a real SeaweedFS that checks SigV4 (the `seaweed_auth` fixture).

Covers sizes from 0 B to a 300 MiB multipart upload, the three credential sources, wrong
secrets, missing keys, versions, full-object checksums, a proxy that answers 200 to a Range
(aws-cli#2913), a byte flipped in transit, the CLI, and kill-and-resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import objget
from objget.backends import BackendOptions
from objget.engine._verify import file_checks_of

from .._servers.forward import Exchange, Forward, flip_byte

MiB = 1024 * 1024
AK, SK = "objgetAK", "objgetSecret0123456789"
OTHER_AK, OTHER_SK = "otherAK", "otherSecret"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """The test identity in env vars; no real AWS file, profile or metadata lookup is used."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SK)
    return tmp_path


def config(**kw):
    kw.setdefault("retry", objget.RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.1))
    kw.setdefault("timeouts", objget.Timeouts(connect=5, read=30))
    return objget.DownloadConfig(**kw)


def fetch(endpoint, source, dest, cfg=None, **opts):
    with objget.Downloader(
        config=cfg or config(), options=BackendOptions(endpoint=endpoint, **opts)
    ) as dl:
        return dl.download(source, str(dest))


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """300 MiB of random bytes on disk, and their sha256."""
    path = tmp_path_factory.mktemp("s3big") / "big.bin"
    rnd = random.Random(300)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(300):
            chunk = rnd.randbytes(MiB)
            h.update(chunk)
            f.write(chunk)
    return path, h.hexdigest()


# --- sizes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 8 * MiB + 3])
def test_small_and_medium_objects(seaweed_auth, tmp_path, size):
    data = random.Random(size).randbytes(size)
    key = f"sizes/{size}.bin"
    seaweed_auth.put("test", key, data)
    res = fetch(seaweed_auth.s3_url, f"s3://test/{key}", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert res.size == size and res.source == f"s3://test/{key}"
    assert not list(tmp_path.glob("out.objget-*"))


def test_300mib_single_put_and_multipart(seaweed_auth, tmp_path, big_file):
    path, digest = big_file
    seaweed_auth.put("test", "big/single.bin", path)
    etag = seaweed_auth.put_multipart("test", "big/multi.bin", path, part_size=64 * MiB)
    assert etag.strip('"').endswith("-5")
    cfg = config(max_workers=8)
    for key in ("single", "multi"):
        res = fetch(seaweed_auth.s3_url, f"s3://test/big/{key}.bin", tmp_path / key, cfg)
        assert res.size == 300 * MiB
        assert sha256_file(tmp_path / key) == digest
    assert res.etag is not None and res.etag.strip('"').endswith("-5")


def test_key_with_spaces_and_unicode(seaweed_auth, tmp_path):
    key = "dir with space/ünïcode + plus=1&x.bin"
    seaweed_auth.put("test", key, b"odd key")
    fetch(seaweed_auth.s3_url, f"s3://test/{key}", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"odd key"


# --- credentials and errors ----------------------------------------------------------------
def test_wrong_secret_is_access_denied_naming_the_source(seaweed_auth, tmp_path, monkeypatch):
    seaweed_auth.put("test", "secret.bin", b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + SK)
    with pytest.raises(objget.AccessDenied) as info:
        fetch(seaweed_auth.s3_url, "s3://test/secret.bin", tmp_path / "out")
    text = str(info.value)
    assert "credentials from env" in text and "SignatureDoesNotMatch" in text
    assert SK not in text and "wrong-" not in text
    assert info.value.status == 403
    assert not (tmp_path / "out").exists()


def test_identity_without_permission_is_access_denied(seaweed_auth, tmp_path, monkeypatch):
    seaweed_auth.put("test", "private.bin", b"x")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", OTHER_AK)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", OTHER_SK)
    with pytest.raises(objget.AccessDenied, match="AccessDenied") as info:
        fetch(seaweed_auth.s3_url, "s3://test/private.bin", tmp_path / "out")
    assert OTHER_SK not in str(info.value)


def test_missing_key_is_object_not_found(seaweed_auth, tmp_path):
    with pytest.raises(objget.ObjectNotFound, match="s3://test/no/such.key"):
        fetch(seaweed_auth.s3_url, "s3://test/no/such.key", tmp_path / "out")


def test_credentials_from_a_profile_in_temp_files(seaweed_auth, tmp_path, monkeypatch, aws_env):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_env / "aws-credentials").write_text(
        f"[ci]\naws_access_key_id = {AK}\naws_secret_access_key = {SK}\n"
    )
    (aws_env / "aws-config").write_text("[profile ci]\nregion = eu-west-1\n")
    seaweed_auth.put("test", "profile.bin", b"via profile")
    fetch(seaweed_auth.s3_url, "s3://test/profile.bin", tmp_path / "out", profile="ci")
    assert (tmp_path / "out").read_bytes() == b"via profile"
    (aws_env / "aws-credentials").write_text(
        f"[ci]\naws_access_key_id = {AK}\naws_secret_access_key = bad{SK}\n"
    )
    with pytest.raises(objget.AccessDenied, match='shared-credentials-file.*profile "ci"'):
        fetch(seaweed_auth.s3_url, "s3://test/profile.bin", tmp_path / "out2", profile="ci")


def test_credentials_from_a_credential_process(seaweed_auth, tmp_path, monkeypatch, aws_env):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    script = tmp_path / "creds.py"
    script.write_text(
        "import json\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': {AK!r}, 'SecretAccessKey': {SK!r}}}))\n"
    )
    (aws_env / "aws-config").write_text(
        f"[default]\ncredential_process = {sys.executable} {script}\n"
    )
    seaweed_auth.put("test", "process.bin", b"via process")
    fetch(seaweed_auth.s3_url, "s3://test/process.bin", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"via process"


def test_endpoint_from_env(seaweed_auth, tmp_path, monkeypatch):
    seaweed_auth.put("test", "env-endpoint.bin", b"e")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", seaweed_auth.s3_url)
    with objget.Downloader(config=config()) as dl:
        dl.download("s3://test/env-endpoint.bin", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b"e"


# --- versions and checksums ----------------------------------------------------------------
def test_version_id_gets_the_old_version_after_an_overwrite(seaweed_auth, tmp_path):
    c = seaweed_auth.client
    c.create_bucket(Bucket="versioned")
    seaweed_auth.enable_versioning("versioned")
    v1 = c.put_object(Bucket="versioned", Key="k.bin", Body=b"version one")["VersionId"]
    v2 = c.put_object(Bucket="versioned", Key="k.bin", Body=b"version two!")["VersionId"]
    assert v1 != v2
    url = seaweed_auth.s3_url
    res = fetch(url, f"s3://versioned/k.bin?versionId={v1}", tmp_path / "old")
    assert (tmp_path / "old").read_bytes() == b"version one"
    assert res.version_id == v1
    res = fetch(url, "s3://versioned/k.bin", tmp_path / "new")
    assert (tmp_path / "new").read_bytes() == b"version two!"
    assert res.version_id == v2


@pytest.mark.parametrize("algorithm", ["CRC64NVME", "CRC32C", "CRC32"])
def test_full_object_checksums_are_verified(seaweed_auth, tmp_path, algorithm):
    data = random.Random(7).randbytes(5 * MiB + 11)
    key = f"sums/{algorithm}.bin"
    seaweed_auth.client.put_object(Bucket="test", Key=key, Body=data, ChecksumAlgorithm=algorithm)
    res = fetch(seaweed_auth.s3_url, f"s3://test/{key}", tmp_path / "out", config(part_size=MiB))
    assert (tmp_path / "out").read_bytes() == data
    assert res.verified == ("size", algorithm.lower())


def test_multipart_full_object_crc64nvme_is_verified(seaweed_auth, tmp_path):
    c = seaweed_auth.client
    data = random.Random(8).randbytes(12 * MiB + 5)
    key = "sums/multipart-crc64.bin"
    up = c.create_multipart_upload(
        Bucket="test", Key=key, ChecksumAlgorithm="CRC64NVME", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), 5 * MiB), 1):
        r = c.upload_part(
            Bucket="test",
            Key=key,
            UploadId=up,
            PartNumber=number,
            Body=data[start : start + 5 * MiB],
            ChecksumAlgorithm="CRC64NVME",
        )
        parts.append(
            {"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC64NVME": r["ChecksumCRC64NVME"]}
        )
    c.complete_multipart_upload(
        Bucket="test", Key=key, UploadId=up, MultipartUpload={"Parts": parts}
    )
    res = fetch(seaweed_auth.s3_url, f"s3://test/{key}", tmp_path / "out", config(part_size=MiB))
    assert (tmp_path / "out").read_bytes() == data
    assert res.verified == ("size", "crc64nvme")


# --- a proxy in front of SeaweedFS ---------------------------------------------------------
class Proxy(Forward):
    """Forwards every request unchanged (Host header included, so SigV4 still matches) to
    SeaweedFS. mode "full": a ranged GET is answered 200 with the whole object, as broken
    proxies do; mode "flip": one byte of the first ranged answer is flipped."""

    def __init__(self, server, mode: str) -> None:
        self.server = server
        self.mode = mode
        self.flipped = 0
        super().__init__(server.s3_url, self._alter)

    def _alter(self, ex: Exchange) -> None:
        if not (ex.method == "GET" and "range" in ex.request_headers and ex.status == 206):
            return
        if self.mode == "full":
            ex.body = self.server.client.get_object(Bucket="test", Key=ex.key)["Body"].read()
            ex.status = 200
            ex.headers = [(k, v) for k, v in ex.headers if k.lower() != "content-range"]
        if self.mode == "flip":
            with self.lock:
                if self.flipped == 0 and len(ex.body) > 100:
                    ex.body = flip_byte(ex.body, 100, 0x40)
                    self.flipped += 1


def test_proxy_answering_200_to_a_range_writes_no_byte(seaweed_auth, tmp_path):
    data = random.Random(9).randbytes(4 * MiB)
    seaweed_auth.put("test", "proxied.bin", data)
    dest = tmp_path / "out"
    with Proxy(seaweed_auth, "full") as proxy, pytest.raises(objget.RangeNotSupported) as info:
        fetch(proxy.url, "s3://test/proxied.bin", dest, config(part_size=MiB, max_workers=2))
    assert "200" in str(info.value) or info.value.status == 200
    assert not dest.exists()
    part = tmp_path / "out.objget-part"
    if part.exists():
        assert part.read_bytes().count(0) == part.stat().st_size  # nothing but preallocation


def test_byte_flipped_in_transit_is_an_integrity_error(seaweed_auth, tmp_path):
    data = random.Random(10).randbytes(3 * MiB)
    seaweed_auth.client.put_object(
        Bucket="test", Key="flip.bin", Body=data, ChecksumAlgorithm="CRC64NVME"
    )
    dest = tmp_path / "out"
    dest.write_bytes(b"previous contents")
    with Proxy(seaweed_auth, "flip") as proxy, pytest.raises(objget.IntegrityError) as info:
        fetch(proxy.url, "s3://test/flip.bin", dest, config(part_size=MiB))
    assert proxy.flipped == 1
    assert info.value.algorithm == "crc64nvme"
    assert dest.read_bytes() == b"previous contents"


# --- the CLI -------------------------------------------------------------------------------
def cli_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=AK,
        AWS_SECRET_ACCESS_KEY=SK,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.environ["AWS_CONFIG_FILE"],
        AWS_SHARED_CREDENTIALS_FILE=os.environ["AWS_SHARED_CREDENTIALS_FILE"],
        PYTHONPATH=str(REPO / "src"),
    )
    env.update(extra or {})
    return env


def test_cli_json_lists_the_verified_checksum(seaweed_auth, tmp_path):
    data = random.Random(11).randbytes(2 * MiB + 1)
    seaweed_auth.client.put_object(
        Bucket="test", Key="cli.bin", Body=data, ChecksumAlgorithm="CRC32C"
    )
    out = tmp_path / "out.bin"
    proc = subprocess.run(
        [sys.executable, "-m", "objget", "s3://test/cli.bin", str(out),
         "--endpoint-url", seaweed_auth.s3_url, "--json"],
        env=cli_env(), capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["verified"] == ["size", "crc32c"]
    assert result["source"] == "s3://test/cli.bin" and result["size"] == len(data)
    assert out.read_bytes() == data


def test_cli_wrong_secret_exits_3_without_the_secret(seaweed_auth, tmp_path):
    seaweed_auth.put("test", "cli-denied.bin", b"x")
    proc = subprocess.run(
        [sys.executable, "-m", "objget", "s3://test/cli-denied.bin", str(tmp_path / "o"),
         "--endpoint-url", seaweed_auth.s3_url, "-q"],
        env=cli_env({"AWS_SECRET_ACCESS_KEY": "TopSecretWrongValue"}),
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 3
    err = proc.stderr.decode()
    assert "denied" in err and "env" in err and "TopSecretWrongValue" not in err


@pytest.mark.interrupt
def test_kill_and_resume_refetches_at_most_62_percent(seaweed_auth, tmp_path, big_file):
    from objget.engine import _checkpoint as ck

    path, _ = big_file
    size = 256 * MiB
    with open(path, "rb") as f:
        data = f.read(size)
    seaweed_auth.client.put_object(
        Bucket="test", Key="resume.bin", Body=data, ChecksumAlgorithm="CRC64NVME"
    )
    digest = hashlib.sha256(data).hexdigest()
    del data
    out = tmp_path / "resume.bin"
    cmd = [sys.executable, "-m", "objget", "s3://test/resume.bin", str(out),
           "--endpoint-url", seaweed_auth.s3_url, "-q", "--part-size", "8M"]  # fmt: skip
    proc = subprocess.Popen([*cmd, "--limit-rate", "48M"], env=cli_env())
    ckpt = str(out) + ".objget-ckpt"
    done = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                saved = ck.load(ckpt)
            except (ck.CheckpointInvalid, OSError):
                saved = None
            done = sum(s.stop - s.start for s in saved.spans) if saved else 0
            if done >= 0.45 * size:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the download ended before it could be killed"
    assert done >= 0.45 * size
    res = subprocess.run([*cmd, "--json"], env=cli_env(), capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    result = json.loads(res.stdout)
    assert result["bytes_fetched"] <= 0.62 * size
    assert result["bytes_resumed"] >= 0.38 * size
    assert result["verified"] == ["size", "crc64nvme"]
    assert sha256_file(out) == digest


def test_sse_c_round_trip_when_supported(seaweed_auth, tmp_path):
    key = b"0123456789abcdef0123456789ABCDEF"
    c = seaweed_auth.client
    data = random.Random(12).randbytes(MiB + 3)
    try:
        c.put_object(
            Bucket="test",
            Key="ssec.bin",
            Body=data,
            SSECustomerAlgorithm="AES256",
            SSECustomerKey=key.decode(),  # boto3 encodes it and adds the MD5
        )
    except Exception as exc:  # not every S3-compatible store has SSE-C
        pytest.fail(f"SeaweedFS refused an SSE-C upload: {exc}")
    fetch(seaweed_auth.s3_url, "s3://test/ssec.bin", tmp_path / "out", sse_c_key=key)
    assert (tmp_path / "out").read_bytes() == data
    with pytest.raises(objget.RemoteError) as info:
        fetch(seaweed_auth.s3_url, "s3://test/ssec.bin", tmp_path / "nokey")
    assert "--sse-c-key-file" in str(info.value)


# --- post-download checks (the Downloader hook is the lead's; called directly here) --------
def backend_for(endpoint, source, **opts):
    from objget.backends import resolve

    dl = objget.Downloader(config=config(), options=BackendOptions(endpoint=endpoint, **opts))
    return dl, resolve(source, dl.transport, dl.options, {})


def run_checks(dl, found, path):
    meta = found.backend.head(found.key, version_id=found.version_id)
    checks = file_checks_of(found.backend, found.key, meta, size=meta.size)
    fd = os.open(path, os.O_RDONLY)
    try:
        return [(c.name, c.expected, c.compute(fd, meta.size)) for c in checks]
    finally:
        os.close(fd)


def test_composite_crc32c_of_a_multipart_upload_checks_each_part(seaweed_auth, tmp_path):
    c = seaweed_auth.client
    sizes = [5 * MiB, 5 * MiB, 123_457]
    rnd = random.Random(13)
    parts_data = [rnd.randbytes(n) for n in sizes]
    key = "sums/composite.bin"
    up = c.create_multipart_upload(
        Bucket="test", Key=key, ChecksumAlgorithm="CRC32C", ChecksumType="COMPOSITE"
    )["UploadId"]
    parts = []
    for number, body in enumerate(parts_data, 1):
        r = c.upload_part(
            Bucket="test", Key=key, UploadId=up, PartNumber=number, Body=body,
            ChecksumAlgorithm="CRC32C",
        )  # fmt: skip
        parts.append(
            {"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32C": r["ChecksumCRC32C"]}
        )
    c.complete_multipart_upload(
        Bucket="test", Key=key, UploadId=up, MultipartUpload={"Parts": parts}
    )
    source = f"s3://test/{key}"
    res = fetch(seaweed_auth.s3_url, source, tmp_path / "out", config(part_size=MiB))
    assert "crc32c" not in res.verified  # composite: not a combinable full-object CRC
    dl, found = backend_for(seaweed_auth.s3_url, source)
    with dl:
        [(name, expected, actual)] = run_checks(dl, found, tmp_path / "out")
        assert name == "crc32c-composite" and expected.endswith("-3")
        assert actual == expected
        raw = bytearray((tmp_path / "out").read_bytes())
        raw[5 * MiB + 7] ^= 0x80  # a byte in part 2
        (tmp_path / "bad").write_bytes(raw)
        [(_, expected, actual)] = run_checks(dl, found, tmp_path / "bad")
        assert actual != expected


def test_md5_etag_check(seaweed_auth, tmp_path):
    data = random.Random(14).randbytes(3 * MiB)
    seaweed_auth.put("test", "md5.bin", data)
    fetch(seaweed_auth.s3_url, "s3://test/md5.bin", tmp_path / "out")
    dl, found = backend_for(seaweed_auth.s3_url, "s3://test/md5.bin", verify_md5=True)
    with dl:
        assert run_checks(dl, found, tmp_path / "out") == [
            ("md5", hashlib.md5(data).hexdigest(), hashlib.md5(data).hexdigest())
        ]
    dl, found = backend_for(seaweed_auth.s3_url, "s3://test/md5.bin")
    with dl:
        assert run_checks(dl, found, tmp_path / "out") == []  # only with --verify md5
