"""Security, in process: the objects that hold secrets while they are in use (backends, the
transport, signers, credentials) show none in the repr or str of anything reachable from the
Downloader, walked in the middle of a download and after it, before the Downloader closes
(issue 14). The command-line side is test_security.py."""

from __future__ import annotations

import dataclasses
import os
import random
from urllib.parse import parse_qs, urlsplit

import objget

from .._servers.oss_fixture import SK as OSS_SK
from .._servers.oss_fixture import STS_SK, TOKEN, cli_env, oss, oss_faults
from ..conftest import BUCKET
from ._harness import MiB
from ._reprwalk import reprs
from .test_security import SESSION_TOKEN, SK, SSE_KEY, check_no_leaks, s3_env

__all__ = ["oss", "oss_faults"]  # the fixtures, imported for this module

SIZE = 6 * MiB
CONFIG = objget.DownloadConfig(part_size=MiB, max_workers=4)
ROW = "security: no secret in reprs of live backends/signers"
API_KEY = "ApiKey-0bjget-Secret-Value-42"


class Walker:
    """A progress listener that walks the Downloader once, mid-download."""

    def __init__(self, texts: dict[str, str], name: str) -> None:
        self.texts, self.name, self.dl = texts, name, None

    def __call__(self, p: objget.Progress) -> None:
        if self.dl is not None and p.done > 0 and self.name not in self.texts:
            self.texts[self.name] = reprs(self.dl)


def test_live_s3_and_http_backends(seaweed_auth, tmp_path, summary, monkeypatch):
    client = seaweed_auth.client
    data = random.Random(35).randbytes(SIZE)
    client.put_object(
        Bucket=BUCKET, Key="sec/live-ssec.bin", Body=data,
        SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_KEY.decode(),
    )  # fmt: skip
    client.put_object(Bucket=BUCKET, Key="sec/live.bin", Body=data)
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "sec/live.bin"}, ExpiresIn=900
    )
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    for k, v in s3_env().items():
        monkeypatch.setenv(k, v)
    options = objget.BackendOptions(endpoint=seaweed_auth.s3_url, sse_c_key=SSE_KEY)
    texts: dict[str, str] = {}
    with objget.Downloader(config=CONFIG, options=options) as dl:
        for name, source in (("s3", f"s3://{BUCKET}/sec/live-ssec.bin"), ("http", url)):
            walker = Walker(texts, f"{name}: mid-download")
            walker.dl = dl
            dest = tmp_path / f"{name}.bin"
            dl.download(source, str(dest), on_progress=walker)
            assert dest.read_bytes() == data
        texts["s3+http: after, still open"] = reprs(dl)
    assert {"s3: mid-download", "http: mid-download"} <= set(texts), list(texts)
    if "headers" in {f.name for f in dataclasses.fields(objget.BackendOptions)}:
        # user headers (-H) for http(s):// sources, one that looks like a credential
        with_key = objget.BackendOptions(headers={"X-Api-Key": API_KEY})
        with objget.Downloader(config=CONFIG, options=with_key) as dl:
            walker = Walker(texts, "http -H: mid-download")
            walker.dl = dl
            dl.download(url, str(tmp_path / "h.bin"), on_progress=walker)
            texts["http -H: after, still open"] = reprs(dl)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)  # the store refuses it: no matter
    with objget.Downloader(config=CONFIG, options=options) as dl:
        try:
            dl.download(f"s3://{BUCKET}/sec/live-ssec.bin", str(tmp_path / "token.bin"))
        except objget.DownloadError as exc:
            texts["session token: error"] = f"{exc} {exc!r}"
        texts["session token: after, still open"] = reprs(dl)
    secrets = {
        "S3 secret": SK,
        "session token": SESSION_TOKEN,
        "SSE-C key": SSE_KEY,
        "presigned signature": signature,
        "API key header": API_KEY,
    }
    check_no_leaks(summary, texts, secrets, ROW)


def sts_through_the_chain(monkeypatch) -> None:
    """The environment's STS key moved into the chain's `Client` (the real library's static
    STS provider), no OSS_* keys left for objget to find first."""
    from alibabacloud_credentials import client as chain_client
    from alibabacloud_credentials.provider import StaticSTSCredentialsProvider

    provider = StaticSTSCredentialsProvider(
        access_key_id=os.environ["OSS_ACCESS_KEY_ID"],
        access_key_secret=os.environ["OSS_ACCESS_KEY_SECRET"],
        security_token=os.environ["OSS_SESSION_TOKEN"],
    )
    for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    real = chain_client.Client
    monkeypatch.setattr(chain_client, "Client", lambda: real(provider=provider))


def test_live_oss_backend(oss, tmp_path, summary, monkeypatch):
    data = random.Random(36).randbytes(SIZE)
    oss.create_bucket("seclive")
    oss.put("seclive", "o.bin", data)
    texts: dict[str, str] = {}
    for auth in ("v4", "sts", "chain"):
        for k, v in cli_env(oss, "sts" if auth == "chain" else auth).items():
            monkeypatch.setenv(k, v)
        if auth == "chain":  # the STS key through the Alibaba Cloud credential chain
            sts_through_the_chain(monkeypatch)
        with objget.Downloader(config=CONFIG) as dl:
            walker = Walker(texts, f"{auth}: mid-download")
            walker.dl = dl
            dest = tmp_path / f"{auth}.bin"
            dl.download("oss://seclive/o.bin", str(dest), on_progress=walker)
            assert dest.read_bytes() == data
            texts[f"{auth}: after, still open"] = reprs(dl)
    assert len(texts) == 6, list(texts)
    secrets = {"OSS secret": OSS_SK, "STS secret": STS_SK, "STS token": TOKEN}
    check_no_leaks(summary, texts, secrets, ROW)
