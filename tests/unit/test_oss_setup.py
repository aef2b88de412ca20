"""oss:// URL parsing, endpoint and region resolution, addressing, and the credential chain."""

from __future__ import annotations

import sys
import types

import pytest

from objget import DownloadError
from objget.backends import BackendOptions
from objget.backends._oss_auth import OssCredentials, OssRequest
from objget.backends._oss_setup import (
    NativeSigner,
    find_credentials,
    parse_oss_url,
    resolve_target,
)
from objget.backends.oss import OssTarget


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OSS_ENDPOINT", "OSS_REGION", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OSS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("OSSUTIL_CONFIG_FILE", "/nonexistent/ossutilconfig")  # not the user's
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials", None)  # not installed
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials.client", None)


# --- URLs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "bucket", "key", "version"),
    [
        ("oss://b/k", "b", "k", None),
        ("oss://my-bucket/dir/sub dir/a+b%20c.txt", "my-bucket", "dir/sub dir/a+b%20c.txt", None),
        ("oss://b/q?x=1#frag", "b", "q?x=1#frag", None),
        ("oss://b/a//b", "b", "a//b", None),
        ("OSS://b/k?versionId=CAEQ1xiBgID", "b", "k", "CAEQ1xiBgID"),
        ("oss://b/k?x=1?versionId=v2", "b", "k?x=1", "v2"),
    ],
)
def test_parse_oss_url(url, bucket, key, version):
    loc = parse_oss_url(url)
    assert (loc.bucket, loc.key, loc.version_id) == (bucket, key, version)


@pytest.mark.parametrize("url", ["oss://bucket", "oss://bucket/", "oss:///key", "s3://b/k"])
def test_bad_oss_urls(url):
    with pytest.raises(ValueError, match="oss://"):
        parse_oss_url(url)


# --- endpoints, regions, addressing ----------------------------------------------------------
def target(**opts):
    return resolve_target("bkt", BackendOptions(**opts))


def test_region_gives_the_public_endpoint_virtual_hosted():
    t, region = target(region="cn-hangzhou")
    assert (t.endpoint, t.path_style, t.cname, region) == (
        "https://oss-cn-hangzhou.aliyuncs.com",
        False,
        False,
        "cn-hangzhou",
    )
    assert t.url("a b/c+d", {}) == "https://bkt.oss-cn-hangzhou.aliyuncs.com/a%20b%2Fc%2Bd"


def test_env_endpoint_and_region(monkeypatch):
    monkeypatch.setenv("OSS_ENDPOINT", "oss-eu-central-1.aliyuncs.com")
    t, region = target()
    assert (t.endpoint, region) == ("https://oss-eu-central-1.aliyuncs.com", "eu-central-1")
    monkeypatch.setenv("OSS_REGION", "eu-west-1")
    assert target()[1] == "eu-west-1"  # an explicit region wins over the host name
    t, region = target(endpoint="http://other.example:8080", region="cn-beijing")
    assert (t.endpoint, region) == ("http://other.example:8080", "cn-beijing")  # options win


def test_internal_endpoint_names_its_region():
    t, region = target(endpoint="oss-cn-shanghai-internal.aliyuncs.com")
    assert (t.endpoint, region) == ("https://oss-cn-shanghai-internal.aliyuncs.com", "cn-shanghai")
    assert t.url("k", {}) == "https://bkt.oss-cn-shanghai-internal.aliyuncs.com/k"


@pytest.mark.parametrize(
    "host", ["oss-accelerate.aliyuncs.com", "oss-accelerate-overseas.aliyuncs.com"]
)
def test_accelerate_endpoint_needs_an_explicit_region_for_v4(host):
    t, region = target(endpoint=host)
    assert region is None and t.url("k", {}) == f"https://bkt.{host}/k"
    creds = OssCredentials("AK", "SK")
    with pytest.raises(ValueError, match="--region"):
        NativeSigner(creds, version="4", region=region)
    NativeSigner(creds, version="1", region=None)  # V1 needs none
    assert target(endpoint=host, region="cn-hangzhou")[1] == "cn-hangzhou"


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"]
)
def test_ip_and_localhost_endpoints_use_path_style(endpoint):
    t, _ = target(endpoint=endpoint, region="cn-hangzhou")
    assert t.path_style
    assert t.url("dir/k", {"versionId": "v 1"}) == f"{endpoint}/bkt/dir%2Fk?versionId=v+1"


def test_custom_domain_is_virtual_hosted_and_cname_targets_use_the_host():
    t, region = target(endpoint="https://oss.example.com/")
    assert (t.endpoint, t.path_style, region) == ("https://oss.example.com", False, None)
    assert t.url("k", {}) == "https://bkt.oss.example.com/k"
    cname = OssTarget(endpoint="https://cdn.example.com", bucket="bkt", cname=True)
    assert cname.url("k", {}) == "https://cdn.example.com/k"


@pytest.mark.parametrize(
    "key", ["a/../obj", "../obj", "./x", "a/./b", "..", ".", "a//b", "a/.", "a/..", "/x"]
)
@pytest.mark.parametrize(
    ("endpoint", "path_style", "cname"),
    [
        ("https://oss-cn-hangzhou.aliyuncs.com", False, False),
        ("http://127.0.0.1:9000", True, False),
        ("https://cdn.example.com", False, True),
    ],
    ids=["virtual", "path", "cname"],
)
def test_dot_segment_keys_are_written_as_oss2_writes_them(key, endpoint, path_style, cname):
    """oss2 quotes the whole key (`/` too), so only a key that is all dots is a dot segment
    in the URL; it stays literal (the transport sends it so), never resolved away."""
    from oss2.api import _UrlMaker

    t = OssTarget(endpoint=endpoint, bucket="bkt", path_style=path_style, cname=cname)
    assert t.url(key, {}) == _UrlMaker(endpoint, cname, path_style)("bkt", key)
    assert t.url(key, {}).endswith("/" + key.replace("/", "%2F"))


def test_no_endpoint_and_no_region_is_a_usage_error():
    with pytest.raises(ValueError, match="OSS_ENDPOINT or OSS_REGION"):
        target()


# --- credentials -----------------------------------------------------------------------------
def test_env_credentials_with_and_without_token(monkeypatch):
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "LTAIkey")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "very-secret")
    creds = find_credentials(BackendOptions())
    assert creds is not None and creds.security_token is None
    assert creds.describe() == "access key **** (from env OSS_ACCESS_KEY_ID)"  # masked
    monkeypatch.setenv("OSS_SESSION_TOKEN", "CAIS-t0k3n")
    creds = find_credentials(BackendOptions())
    assert creds is not None and creds.security_token == "CAIS-t0k3n"
    assert creds.describe().startswith("STS access key ****")
    signer = NativeSigner(creds, version="4", region="cn-hangzhou")
    assert "very-secret" not in repr(signer) + signer.description
    assert "CAIS-t0k3n" not in repr(creds) + repr(signer) + signer.description
    assert find_credentials(BackendOptions(anonymous=True)) is None


def test_nothing_found_is_anonymous():
    assert find_credentials(BackendOptions()) is None
    signer = NativeSigner(None, version="4", region=None)
    assert signer.description == "no credentials (anonymous)"
    request = OssRequest(method="GET", bucket="b", key="k", headers={"x": "1"})
    assert signer.sign(request) == {"x": "1"}


def fake_chain(monkeypatch, get_credential):
    client_mod = types.ModuleType("alibabacloud_credentials.client")

    class Client:
        def get_credential(self):
            return get_credential()

    client_mod.Client = Client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials", types.ModuleType("x"))
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials.client", client_mod)


def test_alibaba_cloud_default_chain_is_used_after_env(monkeypatch):
    cred = types.SimpleNamespace(
        access_key_id="STS.role", access_key_secret="s", security_token="t", type="ecs_ram_role"
    )
    fake_chain(monkeypatch, lambda: cred)
    creds = find_credentials(BackendOptions())
    assert creds is not None
    assert (creds.access_key_id, creds.security_token) == ("STS.role", "t")
    assert creds.source == "Alibaba Cloud credential chain (ecs_ram_role)"
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "LTAIenv")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "e")
    assert find_credentials(BackendOptions()).access_key_id == "LTAIenv"  # env first


def test_a_failing_default_chain_is_an_error_naming_the_cause(monkeypatch):
    """Not anonymous access in silence (issue 14 item 9): the requests would go unsigned and
    fail as "access denied" with no word about the broken chain."""

    def boom():
        raise RuntimeError("profile file ~/.aliyun/config.json: invalid JSON at line 3")

    fake_chain(monkeypatch, boom)
    with pytest.raises(DownloadError) as info:
        find_credentials(BackendOptions())
    text = str(info.value)
    assert "Alibaba Cloud credential chain failed" in text and "invalid JSON at line 3" in text
    assert "--no-sign-request" in text
    assert find_credentials(BackendOptions(anonymous=True)) is None  # asked: no chain at all


def test_a_chain_without_a_key_is_an_error(monkeypatch):
    cred = types.SimpleNamespace(access_key_id="", access_key_secret="", security_token=None)
    fake_chain(monkeypatch, lambda: cred)
    with pytest.raises(DownloadError, match="gave no access key"):
        find_credentials(BackendOptions())
