"""OSS credentials that last (issue 17 item 2): expiry in the middle of a download, and
ossutil's config file with `--profile` for the CLI.

The credentials come from the Alibaba Cloud credential chain (`alibabacloud-credentials`, its
own `Client`) over a fake provider the test controls; the OSS-protocol test server answers
`403 SecurityTokenExpired` to the old token from a moment the test picks, as OSS does when an
STS token runs out. The download must span the expiry and succeed, the new token signing the
requests after the renewal: the server's log shows both tokens.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from alibabacloud_credentials import client as chain_client
from alibabacloud_credentials.provider.refreshable import Credentials
from alibabacloud_credentials_api import ICredentialsProvider

import objget

from .._servers.background import Background
from .._servers.oss_fixture import (
    AK,
    REGION,
    SK,
    STS_AK,
    STS_SK,
    TOKEN,
    MiB,
    cli_env,
    gets,
    run_cli,
)
from .._servers.oss_server import Fault, OssServer, RequestInfo
from .._servers.util import sha256_file, write_random

BUCKET = "objget-oss-creds"
KEY = "expiring/big.bin"
SIZE = 6 * MiB
PART = 256 * 1024
NEW_AK, NEW_SK, NEW_TOKEN = "STS.NUobjgetRenewed", "renewedSecret42", "CAIS-renewed/token=="


class FakeProvider(ICredentialsProvider):
    """An STS provider: the first temporary key until `rotate()`, the renewed one after."""

    def __init__(self) -> None:
        self.calls = 0
        self.rotated = False
        self._lock = threading.Lock()

    def rotate(self) -> None:
        self.rotated = True

    def get_credentials(self) -> Credentials:
        with self._lock:
            self.calls += 1
        ak, sk, token = (NEW_AK, NEW_SK, NEW_TOKEN) if self.rotated else (STS_AK, STS_SK, TOKEN)
        return Credentials(
            access_key_id=ak,
            access_key_secret=sk,
            security_token=token,
            provider_name="fake_sts",
        )

    async def get_credentials_async(self) -> Credentials:
        return self.get_credentials()

    def get_provider_name(self) -> str:
        return "fake_sts"


@pytest.fixture(scope="module")
def source(oss: OssServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    oss.create_bucket(BUCKET)
    path = write_random(tmp_path_factory.mktemp("creds") / "big.bin", SIZE, seed=17)
    oss.put(BUCKET, KEY, path)
    return f"oss://{BUCKET}/{KEY}", sha256_file(path)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, oss: OssServer) -> FakeProvider:
    """The chain's `Client()` gives the fake provider's credentials; nothing from the real
    user's environment or files; the server knows the first token again (and not yet its
    expiry) and the renewed key."""
    for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OSSUTIL_CONFIG_FILE", "/nonexistent/ossutilconfig")
    fake = FakeProvider()
    real = chain_client.Client
    monkeypatch.setattr(chain_client, "Client", lambda: real(provider=fake))
    oss.add_sts(STS_AK, STS_SK, TOKEN)
    oss.add_sts(NEW_AK, NEW_SK, NEW_TOKEN)
    yield fake
    oss.add_sts(STS_AK, STS_SK, TOKEN)
    oss.sts.pop(NEW_AK, None)


def expire_at_get(oss: OssServer, nth: int, then: object = None) -> None:
    """From the `nth` GET of the object on, the first token is expired at the server (and
    `then()` runs once, at that moment)."""
    seen = 0
    lock = threading.Lock()

    def hook(req: RequestInfo) -> None:
        nonlocal seen
        if req.method != "GET" or req.key != KEY:
            return None
        with lock:
            seen += 1
            if seen == nth:
                oss.add_sts(
                    STS_AK,
                    STS_SK,
                    TOKEN,
                    expires=datetime.now(timezone.utc) - timedelta(seconds=1),
                )
                if callable(then):
                    then()
        return None

    oss.on_request = hook


def run(oss: OssServer, src: str, dest: Path, **config: object) -> objget.DownloadResult:
    options = objget.BackendOptions(endpoint=oss.endpoint, region=REGION)
    cfg = objget.DownloadConfig(part_size=PART, max_workers=2, **config)  # type: ignore[arg-type]
    with objget.Downloader(config=cfg, options=options) as dl:
        return dl.download(src, dest)


def test_download_spans_the_token_expiry_and_the_renewed_token_signs_after_it(
    oss, source, provider, tmp_path
):
    src, sha = source
    since = len(oss.log)
    expire_at_get(oss, 4, then=provider.rotate)  # the chain has the new token from then on
    result = run(oss, src, tmp_path / "out.bin")
    assert sha256_file(tmp_path / "out.bin") == sha
    log = gets(oss, BUCKET, KEY, since)
    refused = [e for e in oss.log[since:] if e.status == 403]
    assert refused, "the old token was never refused: the test did not span the expiry"
    assert all(e.security_token == TOKEN for e in refused)
    served = {e.security_token for e in log if e.status in (200, 206)}
    assert served == {TOKEN, NEW_TOKEN}  # both tokens signed data requests
    last = [e for e in log if e.status == 206][-1]
    assert last.security_token == NEW_TOKEN and last.request.access_key_id == NEW_AK
    assert provider.calls == 2  # the first answer, and one renewal for all the workers
    assert result.retries >= 1 and result.retries <= len(refused)


def test_expired_before_the_head_renews_there_too(oss, source, provider, tmp_path):
    """The token is already expired when the download starts: the HEAD (whose error comes in
    the base64 `x-oss-err` header) renews it and is sent again."""
    src, sha = source
    since = len(oss.log)
    oss.add_sts(STS_AK, STS_SK, TOKEN, expires=datetime.now(timezone.utc) - timedelta(seconds=1))
    real = provider.get_credentials

    def first_old_then_new() -> Credentials:
        creds = real()
        provider.rotate()
        return creds

    provider.get_credentials = first_old_then_new  # type: ignore[method-assign]
    run(oss, src, tmp_path / "out.bin")
    assert sha256_file(tmp_path / "out.bin") == sha
    heads = [e for e in oss.log[since:] if e.method == "HEAD"]
    assert [(e.status, e.security_token) for e in heads[:2]] == [(403, TOKEN), (200, NEW_TOKEN)]
    assert {e.security_token for e in gets(oss, BUCKET, KEY, since)} == {NEW_TOKEN}


def test_a_chain_with_nothing_newer_is_a_final_access_denied(oss, source, provider, tmp_path):
    """The token expired and the chain gives the same one again: no retry loop, an
    AccessDenied naming the expiry and the chain."""
    src, _ = source
    since = len(oss.log)
    expire_at_get(oss, 2)  # never rotated
    with pytest.raises(objget.AccessDenied) as info:
        run(oss, src, tmp_path / "out.bin")
    text = str(info.value)
    assert "SecurityTokenExpired" in text and "Alibaba Cloud credential chain" in text
    assert STS_SK not in text and TOKEN not in text
    refused = [e for e in oss.log[since:] if e.status == 403]
    assert 1 <= len(refused) <= 2  # one per worker at most: asked once each, not retried
    assert provider.calls <= 1 + len(refused)


def ossutil_env(oss: OssServer, config: Path) -> dict[str, str]:
    """The CLI's environment with no OSS_* credentials, endpoint or region: only the ossutil
    config file at `config` names them."""
    env = cli_env(oss, OSSUTIL_CONFIG_FILE=str(config))
    for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_ENDPOINT", "OSS_REGION"):
        env.pop(name)
    return env


def test_cli_profile_reads_ossutils_config_file(oss, source, tmp_path):
    src, sha = source
    config = tmp_path / "ossutilconfig"
    config.write_text(
        f"[default]\nregion = {REGION}\nendpoint = {oss.endpoint}\n\n"
        f"[profile dev]\nregion = {REGION}\nendpoint = {oss.endpoint}\n"
        f"accessKeyId = {AK}\naccessKeySecret = {SK}\n"
    )
    out = tmp_path / "out.bin"
    proc = run_cli([src, str(out), "--profile", "dev", "-q"], ossutil_env(oss, config))
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(out) == sha
    assert SK not in proc.stdout + proc.stderr


def test_cli_profile_that_is_not_there_is_an_error_naming_it(oss, source, tmp_path):
    src, _ = source
    config = tmp_path / "ossutilconfig"
    config.write_text(f"[default]\nregion = {REGION}\nendpoint = {oss.endpoint}\n")
    proc = run_cli([src, str(tmp_path / "o"), "--profile", "prod"], ossutil_env(oss, config))
    assert proc.returncode == 2  # a usage error, as for an AWS profile that is not there
    assert "ossutil profile 'prod' not found" in proc.stderr, proc.stderr


class CredentialsUri(Background):
    """`ALIBABA_CLOUD_CREDENTIALS_URI` for the chain: the first answer is the first STS key,
    which the chain holds for `fresh` seconds (it renews 15 minutes before the `Expiration` it
    is told); every later answer is the renewed key, valid for an hour."""

    def __init__(self, fresh: float) -> None:
        self.fresh = fresh
        self.served: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                now = time.time()
                first = not outer.served
                outer.served.append(now)
                ak, sk, token = (STS_AK, STS_SK, TOKEN) if first else (NEW_AK, NEW_SK, NEW_TOKEN)
                life = 900 + outer.fresh if first else 3600
                ends = datetime.fromtimestamp(now + life, timezone.utc)
                body = json.dumps(
                    {
                        "Code": "Success",
                        "AccessKeyId": ak,
                        "AccessKeySecret": sk,
                        "SecurityToken": token,
                        "Expiration": ends.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.url += "/sts"


@pytest.fixture
def sts_keys(oss: OssServer) -> Iterator[None]:
    oss.add_sts(STS_AK, STS_SK, TOKEN)
    oss.add_sts(NEW_AK, NEW_SK, NEW_TOKEN)
    yield
    oss.add_sts(STS_AK, STS_SK, TOKEN)
    oss.sts.pop(NEW_AK, None)


def test_cli_renews_chain_credentials_that_expire_mid_download(oss, source, sts_keys, tmp_path):
    """The real chain end to end, in the CLI: its credentials URI hands out an STS key that
    it renews after 2 s; the server stops accepting that key 3 s in, while the download (slow
    GETs) is still running. The download succeeds; the server saw both keys sign data."""
    src, sha = source
    since = len(oss.log)
    with CredentialsUri(fresh=2.0) as uri:
        expired = threading.Event()

        def hook(req: RequestInfo) -> Fault | None:
            if req.method != "GET" or req.key != KEY:
                return None
            if uri.served and time.time() >= uri.served[0] + 3.0 and not expired.is_set():
                expired.set()
                past = datetime.now(timezone.utc) - timedelta(seconds=1)
                oss.add_sts(STS_AK, STS_SK, TOKEN, expires=past)
            return Fault(delay=0.4)  # slow enough that the download spans the expiry

        oss.on_request = hook
        env = cli_env(oss, "sts", ALIBABA_CLOUD_CREDENTIALS_URI=uri.url)
        for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"):
            env.pop(name)
        env["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"] = "true"
        env["OSSUTIL_CONFIG_FILE"] = os.devnull
        extra = os.environ.get("PYTHONPATH")  # where the chain's package is, if not installed
        if extra:
            env["PYTHONPATH"] += os.pathsep + extra
        out = tmp_path / "out.bin"
        args = [src, str(out), "-j", "2", "--part-size", str(PART), "--json"]
        proc = run_cli(args, env)
        assert proc.returncode == 0, proc.stderr
        assert sha256_file(out) == sha
        assert expired.is_set(), "the download ended before the key expired"
        assert len(uri.served) == 2  # the first key, then one renewal
    log = gets(oss, BUCKET, KEY, since)
    assert any(e.status == 403 and e.security_token == TOKEN for e in oss.log[since:])
    assert {e.security_token for e in log if e.status == 206} == {TOKEN, NEW_TOKEN}
    assert json.loads(proc.stdout)["retries"] >= 1
    for secret in (STS_SK, NEW_SK, TOKEN, NEW_TOKEN):
        assert secret not in proc.stdout + proc.stderr
