"""oss:// and the oss2 drop-in against the OSS-protocol test server, over real TCP.

The server (tests/_servers/oss_server.py) checks OSS V1 / V4 / STS signatures with the real
algorithms, announces `x-oss-hash-crc64ecma`, answers OSS error XML and stores the bytes in the
session's SeaweedFS. Here the CLI runs as a subprocess with credentials in its environment and
the drop-in (`objget.resumable_download`) gets real `oss2.Bucket` objects; every download is
compared with the uploaded bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import oss2
import oss2.exceptions as oe
import pytest

import objget

from .._servers.oss_fixture import (
    AK,
    SK,
    STS_AK,
    TOKEN,
    MiB,
    cli_env,
    covered,
    gets,
    make_bucket,
    no_leftovers,
    run_cli,
    span_of,
)
from .._servers.oss_server import Fault, OssServer
from .._servers.util import sha256_file, write_random

BUCKET = "objget-oss-it"
SIZES = {"0B": 0, "1B": 1, "99MiB": 99 * MiB, "100MiB+1": 100 * MiB + 1, "300MiB": 300 * MiB}
MID = "100MiB+1"


@pytest.fixture(scope="module")
def bucket_name(oss: OssServer) -> str:
    oss.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="module")
def objects(
    oss: OssServer, bucket_name: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, str]]:
    """Every size in SIZES uploaded once: name -> (key, sha256)."""
    d = tmp_path_factory.mktemp("oss-objects")
    out = {}
    for name, size in SIZES.items():
        path = write_random(d / name, size, seed=size)
        key = f"sizes/{name}.bin"
        oss.put(BUCKET, key, path)
        out[name] = (key, sha256_file(path))
        path.unlink()
    return out


@pytest.fixture(scope="module")
def tiny(oss: OssServer, bucket_name: str) -> str:
    """A one-byte object's key, for the error cases."""
    oss.put(BUCKET, "tiny.bin", b"t")
    return "tiny.bin"


def dropin(oss: OssServer, key: str, dest: Path, auth: str = "v4", **kw) -> None:
    kw.setdefault("store", oss2.ResumableDownloadStore(root=str(dest.parent / "store")))
    objget.resumable_download(make_bucket(oss, BUCKET, auth), key, str(dest), **kw)


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The OSS_* variables of a CLI environment, for library calls in this process."""
    for name in list(os.environ):
        if name.startswith(("OSS_", "ALIBABA_CLOUD_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(("OSS_", "ALIBABA_CLOUD_")):
            monkeypatch.setenv(name, value)


# --- sizes: CLI and drop-in, V4 ------------------------------------------------------------
@pytest.mark.parametrize("name", list(SIZES))
def test_cli_and_dropin_are_byte_identical(oss, objects, tmp_path, name):
    key, digest = objects[name]
    size = SIZES[name]
    cli_out, drop_out = tmp_path / "cli.bin", tmp_path / "drop.bin"
    proc = run_cli([f"oss://{BUCKET}/{key}", str(cli_out), "--json"], cli_env(oss))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["size"] == size and result["source"] == f"oss://{BUCKET}/{key}"
    assert result["verified"] == (["size", "crc64ecma"] if size else ["size"])
    mark = len(oss.log)
    dropin(oss, key, drop_out)  # oss2 defaults: threshold 100 MiB, 4 threads, no part_size
    assert drop_out.stat().st_size == size
    assert sha256_file(cli_out) == sha256_file(drop_out) == digest
    no_leftovers(cli_out)
    no_leftovers(drop_out)
    served = gets(oss, BUCKET, key, mark)
    if 0 < size < 100 * MiB:  # below oss2's threshold: one GET, as oss2 does
        assert len(served) == 1 and served[0].body_bytes == size
    elif size >= 100 * MiB:  # the ranged path: requests sized as they start (no part_size)
        assert len(served) >= 2
        assert all(e.status == 206 for e in served)
        assert covered(served) == [(0, size)]
    cli_out.unlink()
    drop_out.unlink()


def auth_header(entry) -> str:
    return entry.request.headers.get("authorization", "")


@pytest.mark.parametrize("auth", ["v1", "sts"])
def test_cli_with_v1_and_sts_credentials(oss, objects, tmp_path, auth):
    key, digest = objects[MID]
    out = tmp_path / "out.bin"
    args = [f"oss://{BUCKET}/{key}", str(out), "-q"]
    if auth == "v1":
        args += ["--signature-version", "1"]
    mark = len(oss.log)
    proc = run_cli(args, cli_env(oss, auth))
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(out) == digest
    served = gets(oss, BUCKET, key, mark)
    assert served and all(e.status == 206 for e in served)
    if auth == "v1":
        assert all(auth_header(e).startswith(f"OSS {AK}:") for e in served)
    else:
        assert all(e.request.access_key_id == STS_AK for e in served)
        assert all(e.request.headers["x-oss-security-token"] == TOKEN for e in served)
        assert all(auth_header(e).startswith("OSS4-HMAC-SHA256 ") for e in served)
    out.unlink()


@pytest.mark.parametrize("auth", ["v1", "sts", "sts-v4"])
def test_dropin_with_v1_and_sts_credentials(oss, objects, tmp_path, auth):
    key, digest = objects[MID]
    out = tmp_path / "out.bin"
    mark = len(oss.log)
    dropin(oss, key, out, auth)
    assert sha256_file(out) == digest
    served = gets(oss, BUCKET, key, mark)
    assert len(served) >= 2  # the ranged path: every one of its GETs signed
    scheme = "OSS4-HMAC-SHA256 " if auth == "sts-v4" else "OSS "
    assert all(auth_header(e).startswith(scheme) for e in served)
    if auth.startswith("sts"):
        assert all(e.request.access_key_id == STS_AK for e in served)
    out.unlink()


# --- errors ----------------------------------------------------------------------------------
def oss2_raises(call: Callable[[], object]) -> type[BaseException]:
    try:
        call()
    except oe.OssError as exc:
        return type(exc)
    raise AssertionError("oss2 did not raise")


@pytest.mark.parametrize("version", ["1", "4"])
def test_wrong_secret_is_access_denied_naming_the_source(oss, tiny, tmp_path, monkeypatch, version):
    key = tiny
    wrong = "Wrong" + SK[5:] + "X"
    out = tmp_path / "out.bin"
    out.write_bytes(b"keep me")
    env = cli_env(oss, OSS_ACCESS_KEY_SECRET=wrong)
    proc = run_cli([f"oss://{BUCKET}/{key}", str(out), "--signature-version", version], env)
    assert proc.returncode == 3, proc.stderr
    text = proc.stdout + proc.stderr
    assert "denied" in text and "env OSS_ACCESS_KEY_ID" in text
    assert "SignatureDoesNotMatch" in text and "request id" in text
    assert wrong not in text and SK not in text
    assert AK not in text and f"access key ****{AK[-4:]}" in text  # masked, as S3 messages
    assert out.read_bytes() == b"keep me"
    use_env(monkeypatch, env)
    options = objget.BackendOptions(signature_version=version)
    with objget.Downloader(options=options) as dl, pytest.raises(objget.AccessDenied) as info:
        dl.download(f"oss://{BUCKET}/{key}", str(out))
    assert info.value.status == 403 and info.value.code == "SignatureDoesNotMatch"
    assert wrong not in str(info.value) and info.value.request_id
    assert AK not in str(info.value)
    # the drop-in raises what oss2 raises for the same bucket (a ServerError, 403)
    bucket = make_bucket(oss, BUCKET, f"wrong-v{version}")
    expected = oss2_raises(lambda: oss2.resumable_download(bucket, key, str(tmp_path / "oss2.bin")))
    assert expected is oe.SignatureDoesNotMatch
    with pytest.raises(oe.ServerError) as err:
        objget.resumable_download(bucket, key, str(out))
    assert type(err.value) is expected
    assert err.value.status == 403 and err.value.code == "SignatureDoesNotMatch"
    assert err.value.request_id and isinstance(err.value.__cause__, objget.AccessDenied)
    assert out.read_bytes() == b"keep me"


def test_identity_without_rights_is_oss2_access_denied(oss, tiny, tmp_path):
    """A refused (not mis-signed) request: OSS answers AccessDenied, oss2 raises AccessDenied."""
    key = tiny
    oss.on_request = lambda r: Fault(code="AccessDenied") if r.key == key else None
    bucket = make_bucket(oss, BUCKET)
    assert oss2_raises(lambda: oss2.resumable_download(bucket, key, str(tmp_path / "o"))) is (
        oe.AccessDenied
    )
    with pytest.raises(oe.AccessDenied) as err:
        objget.resumable_download(bucket, key, str(tmp_path / "d"))
    assert err.value.status == 403 and isinstance(err.value.__cause__, objget.AccessDenied)
    proc = run_cli([f"oss://{BUCKET}/{key}", str(tmp_path / "c")], cli_env(oss))
    assert proc.returncode == 3 and "AccessDenied" in proc.stderr


def test_missing_key_is_not_found(oss, bucket_name, tmp_path, monkeypatch):
    key = "no/such/key.bin"
    proc = run_cli([f"oss://{BUCKET}/{key}", str(tmp_path / "out")], cli_env(oss))
    assert proc.returncode == 3
    assert f"oss://{BUCKET}/{key}" in proc.stderr and "NoSuchKey" in proc.stderr
    use_env(monkeypatch, cli_env(oss))
    with pytest.raises(objget.ObjectNotFound), objget.Downloader() as dl:
        dl.download(f"oss://{BUCKET}/{key}", str(tmp_path / "out"))
    bucket = make_bucket(oss, BUCKET)
    assert oss2_raises(lambda: oss2.resumable_download(bucket, key, str(tmp_path / "o"))) is (
        oe.NoSuchKey
    )
    with pytest.raises(oe.NoSuchKey) as err:
        objget.resumable_download(bucket, key, str(tmp_path / "d"))
    assert err.value.status == 404 and isinstance(err.value.__cause__, objget.ObjectNotFound)
    assert not list(tmp_path.iterdir())


# --- integrity -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["single-get", "parts"])
def test_corrupt_byte_is_an_integrity_error_and_the_destination_is_untouched(
    oss, bucket_name, tmp_path, path
):
    data = random.Random(4).randbytes(6 * MiB + 5)
    key = f"corrupt/{path}.bin"
    oss.put(BUCKET, key, data)
    oss.corrupt(BUCKET, key, 5 * MiB + 3)
    out = tmp_path / "out.bin"
    out.write_bytes(b"previous contents")
    extra = ["--part-size", "1M"] if path == "parts" else ["-j", "1"]
    proc = run_cli([f"oss://{BUCKET}/{key}", str(out), *extra], cli_env(oss))
    assert proc.returncode == 4, proc.stderr
    assert "crc64ecma mismatch" in proc.stderr
    assert out.read_bytes() == b"previous contents"
    no_leftovers(out)
    kw = {"multiget_threshold": MiB, "part_size": MiB} if path == "parts" else {}
    store = oss2.ResumableDownloadStore(root=str(tmp_path / "store"))
    with pytest.raises(oe.InconsistentError) as err:
        dropin(oss, key, out, store=store, **kw)
    assert isinstance(err.value.__cause__, objget.IntegrityError)
    assert err.value.__cause__.algorithm == "crc64ecma"
    assert out.read_bytes() == b"previous contents"
    no_leftovers(out)
    assert not os.listdir(store.dir)
    with pytest.raises(oe.InconsistentError):  # oss2 agrees
        oss2.resumable_download(
            make_bucket(oss, BUCKET), key, str(tmp_path / "oss2.bin"), store=store, **kw
        )
    oss.clear_faults()
    dropin(oss, key, out, store=store, **kw)
    assert out.read_bytes() == data


# --- request options, versions, gzip ---------------------------------------------------------
@pytest.mark.parametrize("value", ["819199", "838860801", "0", "-1"])
def test_traffic_limit_outside_the_oss_range_is_a_usage_error(oss, tiny, tmp_path, value):
    out = tmp_path / "out"
    proc = run_cli(
        [f"oss://{BUCKET}/{tiny}", str(out), f"--oss-traffic-limit={value}"], cli_env(oss)
    )
    assert proc.returncode == 2, proc.stderr
    assert "819,200" in proc.stderr and "838,860,800" in proc.stderr
    assert not out.exists()


def test_traffic_limit_and_request_payer_headers_are_sent(oss, bucket_name, tmp_path):
    data = random.Random(9).randbytes(3 * MiB)
    key = "headers/limit.bin"
    oss.put(BUCKET, key, data)
    for limit in ("819200", "838860800"):
        mark = len(oss.log)
        out = tmp_path / f"cli-{limit}.bin"
        args = [f"oss://{BUCKET}/{key}", str(out), "--part-size", "1M"]
        proc = run_cli([*args, "--oss-traffic-limit", limit, "--request-payer"], cli_env(oss))
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == data
        sent = [e.request.headers for e in oss.log[mark:] if e.request and e.request.key == key]
        assert {e.method for e in oss.log[mark:] if e.request} == {"HEAD", "GET"}
        assert all(h.get("x-oss-request-payer") == "requester" for h in sent)
        assert all(h.get("x-oss-traffic-limit") == limit for h in sent)
    mark = len(oss.log)
    proc = run_cli([f"oss://{BUCKET}/{key}", str(tmp_path / "plain.bin")], cli_env(oss))
    assert proc.returncode == 0, proc.stderr
    sent = [e.request.headers for e in oss.log[mark:] if e.request and e.request.key == key]
    assert not any("x-oss-request-payer" in h or "x-oss-traffic-limit" in h for h in sent)
    mark = len(oss.log)
    dropin(  # the drop-in passes on the two headers oss2 passes on, and only those
        oss, key, tmp_path / "drop.bin", multiget_threshold=MiB, part_size=MiB,
        headers={"x-oss-request-payer": "requester", "x-oss-traffic-limit": "819200",
                 "x-oss-meta-ignored": "1", "Range": "bytes=0-0"},
    )  # fmt: skip
    assert (tmp_path / "drop.bin").read_bytes() == data
    sent = [e.request.headers for e in oss.log[mark:] if e.request and e.request.key == key]
    assert len(sent) >= 4
    assert all(h.get("x-oss-request-payer") == "requester" for h in sent)
    assert all(h.get("x-oss-traffic-limit") == "819200" for h in sent)
    assert not any("x-oss-meta-ignored" in h for h in sent)
    served = gets(oss, BUCKET, key, mark)  # an explicit part_size is kept: one GET per part
    assert sorted(span_of(e) for e in served) == [(i * MiB, (i + 1) * MiB) for i in range(3)]


@pytest.fixture(scope="module")
def versions(oss: OssServer, seaweed) -> tuple[str, str, str]:
    """A versioned bucket with two versions of `v.bin`: (bucket, first id, second id)."""
    name = "objget-oss-versions"
    oss.create_bucket(name)
    seaweed.enable_versioning(name)
    bucket = make_bucket(oss, name)
    first = bucket.put_object("v.bin", b"first version").versionid
    second = bucket.put_object("v.bin", b"second version!").versionid
    assert first and second and first != second
    return name, first, second


def test_version_ids_get_the_old_version(oss, versions, tmp_path):
    name, first, second = versions
    env = cli_env(oss)
    runs = {
        "url": [f"oss://{name}/v.bin?versionId={first}", str(tmp_path / "url.bin")],
        "flag": [f"oss://{name}/v.bin", str(tmp_path / "flag.bin"), "--version-id", first],
        "latest": [f"oss://{name}/v.bin", str(tmp_path / "latest.bin")],
    }
    for label, args in runs.items():
        proc = run_cli([*args, "--json"], env)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        want = (b"second version!", second) if label == "latest" else (b"first version", first)
        assert (Path(args[1]).read_bytes(), result["version_id"]) == want
        assert result["verified"] == ["size", "crc64ecma"]
    objget.resumable_download(
        make_bucket(oss, name), "v.bin", str(tmp_path / "drop.bin"),
        store=oss2.ResumableDownloadStore(root=str(tmp_path / "store")),
        params={"versionId": first},
    )  # fmt: skip
    assert (tmp_path / "drop.bin").read_bytes() == b"first version"
    proc = run_cli([f"oss://{name}/v.bin", str(tmp_path / "x"), "--version-id", "nope"], env)
    assert proc.returncode == 3 and "NoSuchVersion" in proc.stderr


def test_gzip_stored_object_is_downloaded_as_stored(oss, bucket_name, tmp_path):
    stored = gzip.compress(random.Random(10).randbytes(2000) * 500)
    key = "gzip/page.html.gz"
    make_bucket(oss, BUCKET).put_object(key, stored, headers={"Content-Encoding": "gzip"})
    proc = run_cli([f"oss://{BUCKET}/{key}", str(tmp_path / "cli.gz"), "--json"], cli_env(oss))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cli.gz").read_bytes() == stored
    assert json.loads(proc.stdout)["verified"] == ["size", "crc64ecma"]
    for kw in ({}, {"multiget_threshold": 64 * 1024, "part_size": 64 * 1024}):
        dest = tmp_path / f"drop{len(kw)}.gz"
        dropin(oss, key, dest, **kw)
        assert dest.read_bytes() == stored
    sent = [e.request.headers for e in oss.log if e.request and e.request.key == key]
    assert all(h.get("accept-encoding") == "identity" for h in sent if "range" in h)
    with pytest.raises(oe.InconsistentError):  # oss2 lets requests decode it, then fails
        oss2.resumable_download(
            make_bucket(oss, BUCKET), key, str(tmp_path / "oss2.gz"),
            store=oss2.ResumableDownloadStore(root=str(tmp_path / "store")),
        )  # fmt: skip
