"""Forward proxies (issue 17 item 1), against real servers over real TCP: a counting forward
proxy (`tests/_servers/proxy.py`) in front of nginx (http and https) and SeaweedFS (s3://).

- http goes to the proxy in absolute form; https through a CONNECT tunnel;
- the environment is read as curl reads it (`http_proxy` lowercase only, `https_proxy` /
  `HTTPS_PROXY`, `NO_PROXY`), `DownloadConfig(proxy=..., no_proxy=...)` replaces it;
- proxy credentials become `Proxy-Authorization: Basic` and are shown nowhere;
- the batch's lean plain-http client does not bypass a proxy.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import objget
from objget import DownloadConfig

from .._servers.nginx import Nginx
from .._servers.proxy import ForwardProxy
from .._servers.util import sha256_file, write_random
from ._tls import SAN_LOCAL, TlsNginx, make_ca, sign

MiB = 1024 * 1024
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
               "ALL_PROXY", "no_proxy", "NO_PROXY")  # fmt: skip
SECRET = "pr0xyS3cret"


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as p:
        yield p


@pytest.fixture
def site(tmp_path: Path, nginx_factory: Callable[..., Nginx]) -> tuple[Nginx, Path]:
    root = tmp_path / "www"
    root.mkdir()
    src = root / "big.bin"
    write_random(src, 3 * MiB + 123)
    return nginx_factory(root), src


def _config(**kw: object) -> DownloadConfig:
    return DownloadConfig(part_size=MiB, max_workers=4, **kw)  # type: ignore[arg-type]


def test_http_goes_through_the_proxy_in_absolute_form(site, proxy, tmp_path):
    web, src = site
    dest = tmp_path / "out.bin"
    result = objget.download(f"{web.url}/big.bin", dest, config=_config(proxy=proxy.url))
    assert sha256_file(dest) == sha256_file(src)
    assert result.size == src.stat().st_size
    targets = [t for _, t in proxy.requests]
    assert targets and all(t == f"{web.url}/big.bin" for t in targets)
    assert {m for m, _ in proxy.requests} >= {"HEAD", "GET"}
    assert len(proxy.requests) >= 4  # a HEAD and one GET per part at least
    assert proxy.connects == []


def test_http_proxy_from_the_environment_lowercase_only(site, proxy, tmp_path, monkeypatch):
    web, _ = site
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # CGI-unsafe: ignored as curl ignores it
    objget.download(f"{web.url}/big.bin", tmp_path / "a.bin", config=_config())
    assert proxy.requests == []
    monkeypatch.setenv("http_proxy", proxy.url)
    objget.download(f"{web.url}/big.bin", tmp_path / "b.bin", config=_config())
    assert proxy.requests


def test_no_proxy_is_honoured(site, proxy, tmp_path, monkeypatch):
    web, src = site
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.0/8")
    objget.download(f"{web.url}/big.bin", tmp_path / "a.bin", config=_config())
    assert proxy.requests == []
    # the explicit list replaces the environment's, as curl's --noproxy
    objget.download(f"{web.url}/big.bin", tmp_path / "b.bin", config=_config(no_proxy=""))
    assert proxy.requests
    # and proxy="" turns every proxy off
    before = len(proxy.requests)
    monkeypatch.delenv("NO_PROXY")
    objget.download(f"{web.url}/big.bin", tmp_path / "c.bin", config=_config(proxy=""))
    assert len(proxy.requests) == before
    assert sha256_file(tmp_path / "c.bin") == sha256_file(src)


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[TlsNginx, Path, Path]]:
    ca = make_ca(tmp_path / "ca")
    cert = sign(ca, tmp_path / "srv", "server", san=SAN_LOCAL)
    root = tmp_path / "www"
    root.mkdir()
    src = root / "big.bin"
    write_random(src, 2 * MiB + 7)
    with TlsNginx(root, tmp_path / "ng", cert=cert, ca=ca.cert) as web:
        yield web, src, ca.cert


def test_https_goes_through_connect(tls_site, proxy, tmp_path, monkeypatch):
    web, src, ca = tls_site
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    dest = tmp_path / "out.bin"
    objget.download(f"{web.url}/big.bin", dest, config=_config(ca_bundle=str(ca)))
    assert sha256_file(dest) == sha256_file(src)
    assert proxy.connects and set(proxy.connects) == {web.url.split("://", 1)[1]}
    assert proxy.requests == []  # the proxy saw no request line: they were in the tunnel
    # unverified TLS takes its own pool class; through the tunnel all the same
    before = len(proxy.connects)
    objget.download(f"{web.url}/big.bin", tmp_path / "k.bin", config=_config(verify_tls=False))
    assert sha256_file(tmp_path / "k.bin") == sha256_file(src)
    assert len(proxy.connects) > before and proxy.requests == []


def test_proxy_credentials_are_sent_and_shown_nowhere(tls_site, tmp_path):
    web, src, ca = tls_site
    with ForwardProxy(auth=("alice", SECRET)) as proxy:
        config = _config(ca_bundle=str(ca), proxy=proxy.url_with("alice", SECRET))
        assert SECRET not in repr(config) and SECRET not in str(config)
        with objget.Downloader(config=config) as dl:
            dl.download(f"{web.url}/big.bin", tmp_path / "out.bin")
            from ..faults._reprwalk import reprs

            assert SECRET not in reprs(dl)
        token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
        assert proxy.connects and set(proxy.auth_seen) == {f"Basic {token}"}
        assert sha256_file(tmp_path / "out.bin") == sha256_file(src)

        wrong = _config(ca_bundle=str(ca), proxy=proxy.url_with("alice", "wrong" + SECRET))
        with pytest.raises(objget.AccessDenied) as info:
            objget.download(f"{web.url}/big.bin", tmp_path / "x.bin", config=wrong)
        assert "407" in str(info.value) and "wrong" + SECRET not in str(info.value)
        assert "REDACTED@127.0.0.1" in str(info.value)


def test_http_with_wrong_proxy_credentials_is_access_denied(site, tmp_path):
    web, _ = site
    with ForwardProxy(auth=("alice", SECRET)) as proxy:
        wrong = _config(proxy=proxy.url_with("alice", "wrong" + SECRET))
        with pytest.raises(objget.AccessDenied) as info:
            objget.download(f"{web.url}/big.bin", tmp_path / "x.bin", config=wrong)
        assert "407" in str(info.value) and SECRET not in str(info.value)
        assert proxy.requests == []  # refused before anything was forwarded
        token = base64.b64encode(f"alice:wrong{SECRET}".encode()).decode()
        assert proxy.auth_seen == [f"Basic {token}"]  # final: not retried


def test_proxy_down_is_a_transport_error_naming_the_proxy(site, tmp_path):
    web, _ = site
    with ForwardProxy() as gone:
        url = gone.url_with("bob", SECRET)
    config = _config(proxy=url, retry=objget.RetryPolicy(attempts=1))
    with pytest.raises(objget.DownloadError) as info:
        objget.download(f"{web.url}/big.bin", tmp_path / "x.bin", config=config)
    text = str(info.value)
    assert "proxy" in text and SECRET not in text
    assert isinstance(info.value, (objget.TransportError, objget.RetriesExhausted))


def test_cli_proxy_and_noproxy_options(site, tmp_path):
    web, src = site
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["PYTHONPATH"] = str(Path(objget.__file__).resolve().parents[1])
    with ForwardProxy(auth=("carol", SECRET)) as proxy:
        purl = proxy.url_with("carol", SECRET)
        cmd = [sys.executable, "-m", "objget", f"{web.url}/big.bin", str(tmp_path / "a.bin")]
        done = subprocess.run(
            [*cmd, "--proxy", purl, "--json", "-vv"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["size"] == src.stat().st_size
        assert SECRET not in done.stdout + done.stderr
        assert proxy.requests
        seen = len(proxy.requests)
        done = subprocess.run(
            [*cmd[:-1], str(tmp_path / "b.bin"), "--proxy", purl, "--noproxy", "127.0.0.1"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(proxy.requests) == seen
        # @FILE keeps the password out of argv
        secret_file = tmp_path / "proxy.url"
        secret_file.write_text(purl + "\n")
        done = subprocess.run(
            [*cmd[:-1], str(tmp_path / "c.bin"), "--proxy", f"@{secret_file}", "-vv"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(proxy.requests) > seen and SECRET not in done.stdout + done.stderr
