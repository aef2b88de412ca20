"""Security: no secret (S3 secret key, session token, SSE-C key, presigned signature, OSS
secret and STS token) in any DEBUG log line (`-vv`), error message, `repr`, checkpoint file or
`--json` output; checkpoint and lock files mode 0600; TLS verified by default (`--ca-bundle`
trusts a private CA); object keys from a listing that would escape the directory refused.
"""

from __future__ import annotations

import base64
import os
import random
import stat
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import objget

from .._servers.oss_fixture import SK as OSS_SK
from .._servers.oss_fixture import STS_SK, TOKEN, cli_env, oss, oss_faults
from ..conftest import AUTH_IDENTITIES, BUCKET
from ._harness import ENV, MiB, ckpt_done, kill, run, same, start, typed_error, wait_for
from ._rawserver import RawRequest, RawServer, Reply, http_reply
from ._reprwalk import reprs

__all__ = ["oss", "oss_faults"]  # the fixtures, imported for this module

AK, SK = AUTH_IDENTITIES[0]
SESSION_TOKEN = "FwoGZXIvYXdzEObjgetSessionToken+/=Secret"
SSE_KEY = b"0123456789abcdef0123456789ABCDEF"
SIZE = 24 * MiB
ROW = "security: no secret in logs/errors/repr/checkpoint/--json"


def variants(secret: str | bytes) -> list[str]:
    raw = secret.decode() if isinstance(secret, bytes) else secret
    b = secret if isinstance(secret, bytes) else secret.encode()
    return [raw, quote(raw, safe=""), base64.b64encode(b).decode()]


def leaks(texts: dict[str, str], secrets: dict[str, str | bytes]) -> list[tuple[str, str]]:
    return [
        (name, where)
        for name, secret in secrets.items()
        for v in variants(secret)
        for where, text in texts.items()
        if v in text
    ]


def s3_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=AK,
        AWS_SECRET_ACCESS_KEY=SK,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.update(extra)
    return env


def interrupted(args: list[object], dest: Path, env: dict[str, str], log: Path) -> dict[str, str]:
    """Run `args` with -vv until a checkpoint holds bytes, kill it; its log, checkpoint and
    the modes of its checkpoint and lock files."""
    proc = start([*args, "-vv", "--limit-rate", "8M"], log, env=env)
    ckpt, lock = Path(f"{dest}.objget-ckpt"), Path(f"{dest}.objget-lock")
    try:
        assert wait_for(lambda: ckpt_done(dest) > 0 and lock.exists(), 60, proc=proc)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (ckpt, lock)}
    finally:
        kill(proc)
    assert modes == {ckpt.name: 0o600, lock.name: 0o600}, modes
    return {"killed run -vv": log.read_text(), "checkpoint": ckpt.read_text(errors="replace")}


def check_no_leaks(
    summary, texts: dict[str, str], secrets: dict[str, str | bytes], row: str = ROW
) -> None:
    found = leaks(texts, secrets)
    for _ in texts:
        summary.trial(row, typed=not found)
    assert not found, found


def test_s3_secret_token_and_sse_c_key(seaweed_auth, tmp_path, summary, monkeypatch):
    client = seaweed_auth.client
    data = random.Random(31).randbytes(SIZE)
    client.put_object(Bucket=BUCKET, Key="sec/plain.bin", Body=data)
    client.put_object(
        Bucket=BUCKET,
        Key="sec/ssec.bin",
        Body=data,
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=SSE_KEY.decode(),
    )
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    keyfile = tmp_path / "sse.key"
    keyfile.write_bytes(SSE_KEY)
    ep = ["--endpoint-url", seaweed_auth.s3_url]
    texts: dict[str, str] = {}
    for name, extra in (("plain", []), ("ssec", ["--sse-c-key-file", keyfile])):
        dest = tmp_path / f"{name}.bin"
        args: list[object] = [f"s3://{BUCKET}/sec/{name}.bin", dest, *ep, *extra]
        texts.update(
            {
                f"{name}: {k}": v
                for k, v in interrupted(args, dest, s3_env(), tmp_path / f"{name}.log").items()
            }
        )
        done = run([*args, "-vv", "--json"], env=s3_env())
        assert done.rc == 0 and same(dest, source), done.err[-2000:]
        texts[f"{name}: resumed -vv stderr"], texts[f"{name}: --json"] = done.err, done.out
    wrong = run(
        [f"s3://{BUCKET}/sec/plain.bin", tmp_path / "w", *ep, "-vv"],
        env=s3_env(AWS_SECRET_ACCESS_KEY="Wrong" + SK),
    )
    assert typed_error(wrong, 3, "denied"), wrong.err[-2000:]
    texts["wrong secret -vv"] = wrong.err
    token = run(
        [f"s3://{BUCKET}/sec/plain.bin", tmp_path / "t", *ep, "-vv", "--json"],
        env=s3_env(AWS_SESSION_TOKEN=SESSION_TOKEN),
    )
    texts["session token -vv"] = token.err + token.out
    # in-process: the error, its chain and reprs of what holds the secrets
    for k, v in s3_env(AWS_SECRET_ACCESS_KEY="Wrong" + SK).items():
        monkeypatch.setenv(k, v)
    options = objget.BackendOptions(endpoint=seaweed_auth.s3_url, sse_c_key=SSE_KEY)
    try:
        with objget.Downloader(options=options) as dl:
            dl.download(f"s3://{BUCKET}/sec/ssec.bin", str(tmp_path / "inproc.bin"))
            raise AssertionError("a wrong secret was accepted")
    except objget.AccessDenied as exc:
        chain: list[BaseException] = []
        e: BaseException | None = exc
        while e is not None and len(chain) < 10:
            chain.append(e)
            e = e.__cause__ or e.__context__
        texts["exception chain"] = " | ".join(f"{c}\n{c!r}" for c in chain)
        texts["repr of options, backends"] = f"{options!r} {reprs(dl)}"
    secrets = {
        "S3 secret": SK,
        "wrong S3 secret": "Wrong" + SK,
        "session token": SESSION_TOKEN,
        "SSE-C key": SSE_KEY,
    }
    check_no_leaks(summary, texts, secrets)


def test_presigned_signature(seaweed_auth, tmp_path, summary):
    data = random.Random(32).randbytes(SIZE)
    seaweed_auth.client.put_object(Bucket=BUCKET, Key="sec/presigned.bin", Body=data)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    def presign(key: str) -> tuple[str, str]:
        url = seaweed_auth.client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=900
        )
        return url, parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]

    url, signature = presign("sec/presigned.bin")
    dest = tmp_path / "presigned.bin"
    texts = interrupted([url, dest], dest, ENV, tmp_path / "p.log")
    done = run([url, dest, "-vv", "--json"])
    assert done.rc == 0 and same(dest, source), done.err[-2000:]
    texts.update({"resumed -vv": done.err, "--json": done.out})
    missing_url, missing_sig = presign("sec/missing.bin")
    missing = run([missing_url, tmp_path / "m.bin", "-vv"])
    assert typed_error(missing, 3, "not found"), missing.err[-2000:]
    texts["404 -vv"] = missing.err
    try:
        objget.download(missing_url, str(tmp_path / "m2.bin"))
    except objget.ObjectNotFound as exc:
        texts["exception"] = f"{exc} {exc!r} {exc.source}"
    check_no_leaks(summary, texts, {"signature": signature, "404 signature": missing_sig})


def test_presigned_signature_through_a_redirect(seaweed_auth, tmp_path, summary):
    """A presigned URL that answers 302 with another presigned URL (a download service in
    front of a store): at -v and -vv, urllib3 logs the redirect (INFO) and its retry state
    (DEBUG) with both URLs. Neither signature nor credential may appear anywhere."""
    data = random.Random(34).randbytes(SIZE)
    seaweed_auth.client.put_object(Bucket=BUCKET, Key="sec/redirected.bin", Body=data)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    target = seaweed_auth.client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "sec/redirected.bin"}, ExpiresIn=900
    )
    query = parse_qs(urlsplit(target).query)
    front_sig, front_cred = "f" * 64, "AKIAFRONTDOOR0000000/20260101/us-east-1/s3/aws4_request"

    def answer(req: RawRequest) -> Reply:
        return http_reply("302 Found", {"Location": target, "Content-Length": "0"})

    with RawServer(answer) as front:
        url = (
            f"{front.url}/dl/redirected.bin?X-Amz-Credential={quote(front_cred, safe='')}"
            f"&X-Amz-Signature={front_sig}&X-Amz-Expires=900"
        )
        dest = tmp_path / "redirected.bin"
        texts = interrupted([url, dest], dest, ENV, tmp_path / "r.log")
        done = run([url, dest, "-vv", "--json"])
        assert done.rc == 0 and same(dest, source), done.err[-2000:]
        texts.update({"resumed -vv": done.err, "--json": done.out})
        info = run([url, tmp_path / "again.bin", "-v"])
        assert info.rc == 0 and same(tmp_path / "again.bin", source), info.err[-2000:]
        texts["-v"] = info.err + info.out
        redirected = [r for r in front.requests if r.path.startswith("/dl/")]
    assert "Redirecting" in done.err or "302" in done.err, done.err[-3000:]  # it was logged
    assert len(redirected) >= 2, len(redirected)
    secrets: dict[str, str | bytes] = {
        "redirect target signature": query["X-Amz-Signature"][0],
        "redirect target credential": query["X-Amz-Credential"][0],
        "front signature": front_sig,
        "front credential": front_cred,
    }
    check_no_leaks(summary, texts, secrets, "security: no secret through a 302 at -v/-vv/--json")


def test_oss_secret_and_sts_token(oss, tmp_path, summary):
    data = random.Random(33).randbytes(SIZE)
    oss.create_bucket("sec")
    oss.put("sec", "o.bin", data)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    texts: dict[str, str] = {}
    for auth in ("v4", "sts"):
        env = {**cli_env(oss, auth), "PYTHONDONTWRITEBYTECODE": "1"}
        dest = tmp_path / f"{auth}.bin"
        args: list[object] = ["oss://sec/o.bin", dest]
        texts.update(
            {
                f"{auth}: {k}": v
                for k, v in interrupted(args, dest, env, tmp_path / f"{auth}.log").items()
            }
        )
        done = run([*args, "-vv", "--json"], env=env)
        assert done.rc == 0 and same(dest, source), done.err[-2000:]
        texts[f"{auth}: resumed -vv"], texts[f"{auth}: --json"] = done.err, done.out
    wrong = run(
        ["oss://sec/o.bin", tmp_path / "w.bin", "-vv"],
        env=cli_env(oss, "v4", OSS_ACCESS_KEY_SECRET="Wrong" + OSS_SK),
    )
    assert typed_error(wrong, 3, "denied"), wrong.err[-2000:]
    texts["wrong secret -vv"] = wrong.err
    secrets = {
        "OSS secret": OSS_SK,
        "wrong OSS secret": "Wrong" + OSS_SK,
        "STS secret": STS_SK,
        "STS token": TOKEN,
    }
    check_no_leaks(summary, texts, secrets)


def test_tls_is_verified_by_default(nginx_factory, make_object, site_root, tmp_path, summary):
    source = make_object("tls.bin", 4 * MiB)
    web = nginx_factory(site_root, tls=True)
    url = f"{web.url}/tls.bin"
    dest = tmp_path / "tls.bin"
    refused = run([url, dest, "-q"])
    typed = typed_error(refused, 5, "certificate verify failed", "--ca-bundle")
    typed = typed and not dest.exists()
    summary.trial("security: TLS verified by default (self-signed CA)", typed=typed)
    assert typed, refused.err
    trusted = run([url, dest, "-q", "--ca-bundle", web.ca_path])
    ok = trusted.rc == 0 and same(dest, source)
    summary.trial("security: --ca-bundle trusts the private CA", correct=ok)
    assert ok, trusted.err


EVIL_KEYS = [
    "trav/a/../../../escape.bin",
    "trav/..",
    "trav/../escape2.bin",
    "trav//tmp/objget-abs.bin",
    "trav/a\x00b.bin",
    "trav/x.bin.objget-part",
    "trav/./y.bin",
]


def listing(keys: list[str]) -> bytes:
    items = "".join(
        f"<Contents><Key>{quote(k, safe='/')}</Key><LastModified>2024-01-01T00:00:00.000Z"
        f'</LastModified><ETag>"e1"</ETag><Size>11</Size></Contents>'
        for k in keys
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>trav-bucket</Name>'
        f"<Prefix>trav/</Prefix><KeyCount>{len(keys)}</KeyCount><MaxKeys>1000</MaxKeys>"
        f"<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>{items}"
        "</ListBucketResult>"
    ).encode()


def test_listed_keys_cannot_escape_the_directory(tmp_path, summary):
    """A store (here a raw-socket fake S3) lists keys with `..`, absolute paths, NUL and
    objget's own suffixes: only the safe key is written, inside the directory."""
    keys = ["trav/ok.bin", *EVIL_KEYS]
    body = b"hello world"

    def answer(req: RawRequest) -> Reply:
        if "list-type=2" in req.path:
            page = listing(keys)
            return http_reply("200 OK", {"Content-Length": str(len(page))}, page)
        headers = {"Content-Length": "11", "ETag": '"e1"', "Accept-Ranges": "bytes"}
        if req.method == "HEAD":
            return http_reply("200 OK", headers)
        if "range" not in req.headers:  # as S3: a whole-object GET is a 200
            return http_reply("200 OK", headers, body)
        headers["Content-Range"] = "bytes 0-10/11"
        return http_reply("206 Partial Content", headers, body)

    out = tmp_path / "x" / "y" / "out"
    out.mkdir(parents=True)
    with RawServer(answer) as srv:
        done = run(
            [
                "--recursive",
                "s3://trav-bucket/trav/",
                f"{out}/",
                "-q",
                "--no-sign-request",
                "--endpoint-url",
                srv.url,
                "--region",
                "us-east-1",
            ],
            env=s3_env(),
        )
    files = sorted(
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file() and ".objget-batch" not in p.name
    )
    inside = files == ["x/y/out/ok.bin"] and (out / "ok.bin").read_bytes() == body
    inside = inside and not Path("/tmp/objget-abs.bin").exists() and done.rc == 8
    for _ in EVIL_KEYS:
        summary.trial("security: listed keys with '..', '/', NUL refused", typed=inside)
    assert inside, (files, done.rc, done.err[-1500:])
