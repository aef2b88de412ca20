"""S3 full-object SHA-256/SHA-1 and COMPOSITE digests against a real SeaweedFS (which stores
what boto3 uploads with ChecksumAlgorithm=SHA256/SHA1 and answers them to HEAD and to a
whole-object GET with `x-amz-checksum-mode: ENABLED`, never to a ranged GET): verified, their
values in the result and `--json`, a wrong byte an IntegrityError (exit 4) with DEST untouched,
and small objects of a batch checked like large ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import objget
from objget import DownloadConfig, download_many
from objget.backends import BackendOptions
from objget.integrity.s3crc import crc_function, encode_checksum

from .._servers.forward import Exchange, Forward, flip_byte
from .test_s3 import MiB, aws_env, cli_env, config, fetch

__all__ = ["aws_env"]  # the autouse fixture: env credentials only


def b64(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


class FlipProxy(Forward):
    """Forwards every request to SeaweedFS unchanged (SigV4 still matches) and records the
    GETs; the first GET answer (ranged from byte 0, or whole) for a key in `flip` gets byte
    100 flipped."""

    def __init__(self, server, flip=()):
        self.flip = set(flip)
        self.flipped: list[str] = []
        self.gets: list[tuple[str, dict[str, str]]] = []
        super().__init__(server.s3_url, self._alter)

    def _alter(self, ex: Exchange) -> None:
        if ex.method != "GET" or "?" in ex.path:
            return
        rng = ex.request_headers.get("range", "")
        with self.lock:
            self.gets.append((ex.key, ex.request_headers))
            first = ex.status == 200 or (ex.status == 206 and rng.startswith("bytes=0-"))
            if ex.key in self.flip and first and len(ex.body) > 100:
                self.flip.discard(ex.key)
                self.flipped.append(ex.key)
                ex.body = flip_byte(ex.body, 100, 0x08)


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1"])
def test_full_object_digest_is_verified_and_its_value_reported(seaweed_auth, tmp_path, algorithm):
    data = random.Random(21).randbytes(3 * MiB + 7)
    key = f"shasums/{algorithm}.bin"
    seaweed_auth.client.put_object(Bucket="test", Key=key, Body=data, ChecksumAlgorithm=algorithm)
    res = fetch(seaweed_auth.s3_url, f"s3://test/{key}", tmp_path / "out", config(part_size=MiB))
    name = algorithm.lower()
    assert (tmp_path / "out").read_bytes() == data
    assert res.verified == ("size", name)
    assert dict(res.checksums) == {name: b64(name, data)}
    assert res.to_dict()["checksums"] == {name: b64(name, data)}


def test_flipped_byte_fails_the_sha256_and_leaves_dest_untouched(seaweed_auth, tmp_path):
    data = random.Random(22).randbytes(2 * MiB + 3)
    key = "shasums/flip.bin"
    seaweed_auth.client.put_object(Bucket="test", Key=key, Body=data, ChecksumAlgorithm="SHA256")
    dest = tmp_path / "out"
    dest.write_bytes(b"previous contents")
    with FlipProxy(seaweed_auth, flip=[key]) as proxy:
        with pytest.raises(objget.IntegrityError) as info:
            fetch(proxy.url, f"s3://test/{key}", dest, config(part_size=MiB))
    assert proxy.flipped == [key]
    assert info.value.algorithm == "sha256"
    assert info.value.expected == b64("sha256", data)
    assert dest.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_composite_sha256_of_a_multipart_upload_is_verified(seaweed_auth, tmp_path):
    c = seaweed_auth.client
    sizes = [5 * MiB, 5 * MiB, 4321]
    rnd = random.Random(23)
    parts_data = [rnd.randbytes(n) for n in sizes]
    key = "shasums/composite.bin"
    up = c.create_multipart_upload(Bucket="test", Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    parts = []
    for number, body in enumerate(parts_data, 1):
        r = c.upload_part(
            Bucket="test", Key=key, UploadId=up, PartNumber=number, Body=body,
            ChecksumAlgorithm="SHA256",
        )  # fmt: skip
        parts.append(
            {"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]}
        )
    c.complete_multipart_upload(
        Bucket="test", Key=key, UploadId=up, MultipartUpload={"Parts": parts}
    )
    joined = b"".join(hashlib.sha256(p).digest() for p in parts_data)
    composite = b64("sha256", joined) + "-3"
    res = fetch(seaweed_auth.s3_url, f"s3://test/{key}", tmp_path / "out", config(part_size=MiB))
    assert (tmp_path / "out").read_bytes() == b"".join(parts_data)
    assert res.verified == ("size", "sha256-composite")  # not claimed as a full-object SHA-256
    assert dict(res.checksums) == {"sha256-composite": composite}


def run_cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "objget", *map(str, args)],
        env=cli_env(), capture_output=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_cli_json_carries_the_value_and_a_wrong_byte_exits_4(seaweed_auth, tmp_path):
    data = random.Random(24).randbytes(MiB + 5)
    key = "shasums/cli.bin"
    seaweed_auth.client.put_object(Bucket="test", Key=key, Body=data, ChecksumAlgorithm="SHA1")
    out = tmp_path / "out.bin"
    proc = run_cli(f"s3://test/{key}", out, "--endpoint-url", seaweed_auth.s3_url, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["verified"] == ["size", "sha1"]
    assert result["checksums"] == {"sha1": b64("sha1", data)}
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"keep me")
    with FlipProxy(seaweed_auth, flip=[key]) as proxy:
        proc = run_cli(f"s3://test/{key}", bad, "--endpoint-url", proxy.url, "-q")
    assert proc.returncode == 4, proc.stderr.decode()
    assert "sha1 mismatch" in proc.stderr.decode()
    assert bad.read_bytes() == b"keep me"


def test_small_objects_of_a_batch_ask_for_and_check_checksums(seaweed_auth, tmp_path):
    c = seaweed_auth.client
    rnd = random.Random(25)
    objects = {}
    for i, algorithm in enumerate(["SHA256", "SHA1", "CRC32C", "SHA256"]):
        key = f"shabatch/o{i}.bin"
        objects[key] = (algorithm.lower(), rnd.randbytes(20_000 + i))
        c.put_object(Bucket="test", Key=key, Body=objects[key][1], ChecksumAlgorithm=algorithm)
    flip = "shabatch/o3.bin"
    dest = tmp_path / "b"
    with FlipProxy(seaweed_auth, flip=[flip]) as proxy:
        result = download_many(
            ["s3://test/shabatch/"], dest, options=BackendOptions(endpoint=proxy.url),
            config=DownloadConfig(max_workers=2, retry=objget.RetryPolicy(attempts=2)),
        )  # fmt: skip
    by = {o.source.removeprefix("s3://test/"): o for o in result.objects}
    assert by[flip].status == "failed" and by[flip].error_kind == "integrity"
    assert by[flip].path is not None and not os.path.exists(by[flip].path)
    for key, (name, data) in objects.items():
        if key == flip:
            continue
        got = by[key].result
        assert got is not None and Path(got.path).read_bytes() == data
        assert got.verified == ("size", name)
        if name == "crc32c":
            fn = crc_function("crc32c")
            expected = encode_checksum("crc32c", fn(0, memoryview(data))) if fn else ""
        else:
            expected = b64(name, data)
        assert dict(got.checksums) == {name: expected}
    # one whole-object GET per small object, asking for its checksums
    for key, headers in proxy.gets:
        assert "range" not in headers, key
        assert headers.get("x-amz-checksum-mode") == "ENABLED"
    assert sorted(k for k, _ in proxy.gets) == sorted(objects)


# --- --checksum-file -----------------------------------------------------------------------
def test_checksum_file_for_one_download(seaweed_auth, tmp_path):
    data = random.Random(26).randbytes(MiB + 9)
    seaweed_auth.put("test", "sumfile/obj.bin", data)
    good = hashlib.sha256(data).hexdigest()
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  other.bin\n{good}  renamed.bin\n{good} *obj.bin\n")
    url = ["--endpoint-url", seaweed_auth.s3_url]
    # the entry named like DEST
    proc = run_cli("s3://test/sumfile/obj.bin", tmp_path / "renamed.bin", *url, "--json",
                   "--checksum-file", sums)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["verified"] == ["size", "sha256"] and result["checksums"] == {"sha256": good}
    # up to date: skipped, after reading the file against the list
    proc = run_cli("s3://test/sumfile/obj.bin", tmp_path / "renamed.bin", *url, "--json",
                   "--skip-existing", "--checksum-file", sums)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["skipped"] is True and result["checksums"] == {"sha256": good}
    # DEST not listed: the entry named like the object
    proc = run_cli("s3://test/sumfile/obj.bin", tmp_path / "x.bin", *url, "-q",
                   "--checksum-file", sums)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    # a wrong sum: exit 4, DEST untouched
    (tmp_path / "other.bin").write_bytes(b"old")
    proc = run_cli("s3://test/sumfile/obj.bin", tmp_path / "other.bin", *url, "-q",
                   "--checksum-file", sums)  # fmt: skip
    assert proc.returncode == 4, proc.stderr.decode()
    assert (tmp_path / "other.bin").read_bytes() == b"old"
    assert not (tmp_path / "other.bin.objget-part").exists()
    # no entry at all: a usage error before any request
    only = tmp_path / "ONLY"
    only.write_text(f"{good}  unrelated.bin\n")
    proc = run_cli("s3://test/sumfile/obj.bin", tmp_path / "y.bin", *url, "-q",
                   "--checksum-file", only)  # fmt: skip
    assert proc.returncode == 2
    assert "lists no entry named 'y.bin' or 'obj.bin'" in proc.stderr.decode()
    assert not (tmp_path / "y.bin").exists()


def test_checksum_file_for_a_batch(seaweed_auth, tmp_path):
    rnd = random.Random(27)
    data = {f"o{i}.bin": rnd.randbytes(30_000 + i) for i in range(4)}
    data["big.bin"] = rnd.randbytes(17 * MiB)  # the engine's path, not the small one
    for name, body in data.items():
        seaweed_auth.put("test", f"sumbatch/{name}", body)
    sums = tmp_path / "SHA256SUMS"
    lines = [f"{hashlib.sha256(data[n]).hexdigest()}  {n}" for n in ("o0.bin", "big.bin")]
    lines.append(f"{'0' * 64}  ./o1.bin")  # wrong
    sums.write_text("\n".join(lines) + "\n")
    dest = tmp_path / "d"
    cmd = ["--recursive", "s3://test/sumbatch/", dest, "--endpoint-url", seaweed_auth.s3_url,
           "--json", "--checksum-file", sums]  # fmt: skip
    proc = run_cli(*cmd, timeout=240)
    assert proc.returncode == 8, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    objects = {os.path.basename(r["path"]): r for r in rows if r["type"] == "object"}
    assert objects["o0.bin"]["verified"] == ["size", "sha256"]
    assert objects["o0.bin"]["checksum_file"] == "checked"
    assert objects["big.bin"]["checksums"]["sha256"] == hashlib.sha256(data["big.bin"]).hexdigest()
    assert (
        objects["o1.bin"]["status"] == "failed" and objects["o1.bin"]["error_kind"] == "integrity"
    )
    assert not (dest / "o1.bin").exists()
    for name in ("o2.bin", "o3.bin"):  # not listed: downloaded, reported unchecked
        assert objects[name]["status"] == "downloaded"
        assert objects[name]["checksum_file"] == "unchecked"
        assert (dest / name).read_bytes() == data[name]
    [summary] = [r for r in rows if r["type"] == "summary"]
    assert summary["checksum_file_unchecked"] == 2 and summary["checksum_file_missing"] == []

    # a listed path the batch does not have fails the run; done objects are read from disk
    (dest / "o0.bin").write_bytes(b"x" * len(data["o0.bin"]))  # changed behind objget's back
    os.utime(dest / "o0.bin", ns=(0, 0))
    sums.write_text(sums.read_text().replace("./o1.bin", "o1.bin") + f"{'1' * 64}  gone.bin\n")
    proc = run_cli(*cmd[:-1], sums, timeout=240)
    assert proc.returncode == 8
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    objects = {os.path.basename(r["path"] or ""): r for r in rows if r["type"] == "object"}
    [summary] = [r for r in rows if r["type"] == "summary"]
    assert summary["checksum_file_missing"] == ["gone.bin"]
    assert "gone.bin" in proc.stderr.decode()
    assert (
        objects["o0.bin"]["status"] == "failed" and objects["o0.bin"]["error_kind"] == "integrity"
    )
    assert "earlier run" in objects["o0.bin"]["error"]
    assert (dest / "o0.bin").read_bytes() == b"x" * len(data["o0.bin"])  # left alone
    assert objects["big.bin"]["status"] == "skipped"  # done before, and matches
