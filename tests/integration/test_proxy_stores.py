"""Proxies for the stores and the batch (issue 17 item 1): signed s3:// requests through a
counting forward proxy in front of SeaweedFS (the signature still matches: the Host header and
the path reach the store as signed), a dot-segment key sent in absolute form exactly as
written, and a batch of plain-http objects whose lean client leaves every request to the proxy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import objget
from objget import DownloadConfig, download_many
from objget.backends import BackendOptions
from objget.batch import BatchItem

from .._servers.nginx import Nginx
from .._servers.proxy import ForwardProxy
from .._servers.seaweed import SeaweedFS
from .._servers.util import sha256_file, write_random

MiB = 1024 * 1024
AK, SK = "objgetAK", "objgetSecret0123456789"  # the seaweed_auth identity
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
               "ALL_PROXY", "no_proxy", "NO_PROXY")  # fmt: skip


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_",)) or name in _PROXY_VARS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SK)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as p:
        yield p


def _options(server: SeaweedFS) -> BackendOptions:
    return BackendOptions(endpoint=server.s3_url, region="us-east-1", addressing_style="path")


def test_signed_s3_download_through_the_proxy(seaweed_auth, proxy, tmp_path, monkeypatch):
    data = os.urandom(3 * MiB + 5)
    seaweed_auth.put("test", "proxied/obj.bin", data)
    monkeypatch.setenv("http_proxy", proxy.url)
    dest = tmp_path / "out.bin"
    config = DownloadConfig(part_size=MiB, max_workers=4)
    with objget.Downloader(config=config, options=_options(seaweed_auth)) as dl:
        dl.download("s3://test/proxied/obj.bin", dest)
    assert dest.read_bytes() == data
    gets = [t for m, t in proxy.requests if m == "GET"]
    assert len(gets) >= 3
    assert all(t == f"{seaweed_auth.s3_url}/test/proxied/obj.bin" for t in gets)


def test_dot_segment_key_goes_through_the_proxy_as_written(seaweed_auth, proxy, tmp_path):
    """urllib3 would resolve `/test/dots/../obj` to `/test/obj` in an absolute-form target:
    the proxy must receive the path as signed, and the store's answer is about that key."""
    seaweed_auth.put("test", "obj", b"the object the normalised path names")
    config = DownloadConfig(proxy=proxy.url, retry=objget.RetryPolicy(attempts=1))
    with (
        objget.Downloader(config=config, options=_options(seaweed_auth)) as dl,
        pytest.raises(objget.DownloadError) as info,
    ):
        dl.download("s3://test/dots/../obj", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert proxy.requests
    assert {t for _, t in proxy.requests} == {f"{seaweed_auth.s3_url}/test/dots/../obj"}
    assert "SignatureDoesNotMatch" not in str(info.value)


def test_batch_plain_http_goes_through_the_proxy(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], proxy: ForwardProxy
) -> None:
    root = tmp_path / "www"
    root.mkdir()
    names = [f"small-{i}.bin" for i in range(12)]
    for name in names:
        write_random(root / name, 40_000 + len(name))
    web = nginx_factory(root)
    items = [BatchItem(source=f"{web.url}/{n}") for n in names]
    result = download_many(
        items, tmp_path / "out", config=DownloadConfig(proxy=proxy.url, max_workers=4)
    )
    assert len(result.downloaded) == len(names) and not result.failed
    for name in names:
        assert sha256_file(tmp_path / "out" / name) == sha256_file(root / name)
    fetched = {t.rsplit("/", 1)[1] for m, t in proxy.requests if m == "GET"}
    assert fetched == set(names)
    # and with the proxy's host excepted, the lean client connects directly again
    before = len(proxy.requests)
    download_many(
        items,
        tmp_path / "again",
        config=DownloadConfig(proxy=proxy.url, no_proxy="127.0.0.1", max_workers=4),
    )
    assert len(proxy.requests) == before


def test_oss_cli_through_the_environment_proxy(oss, proxy, tmp_path):
    from .._servers.oss_fixture import cli_env, run_cli

    oss.create_bucket("proxied")
    data = os.urandom(2 * MiB + 3)
    oss.put("proxied", "dir/obj.bin", data)
    env = {k: v for k, v in cli_env(oss).items() if k not in _PROXY_VARS}
    env["http_proxy"] = proxy.url
    out = tmp_path / "out.bin"
    done = run_cli(["oss://proxied/dir/obj.bin", str(out), "--part-size", "1M", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == data
    gets = [t for m, t in proxy.requests if m == "GET"]
    assert len(gets) >= 2 and all(t.startswith(oss.endpoint) for t in gets)
