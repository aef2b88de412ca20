"""Credential sources, region and endpoint resolution, and what error messages reveal."""

from __future__ import annotations

import json
import os
import sys

import pytest

from objget.backends._s3_auth import S3Signer

SECRET = "s3cr3t/VALUE+that-must-never-show"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_env_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEY1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    signer = S3Signer(profile=None, anonymous=False, region=None)
    text = signer.describe()
    assert text.startswith("credentials from env (environment variables)")
    assert "****1234" in text and SECRET not in text
    assert signer.region == "us-east-1"
    headers = signer.sign("GET", "http://127.0.0.1:1/b/k", {"Range": "bytes=0-0"})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAENVKEY1234/")
    assert "/us-east-1/s3/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert SECRET not in repr(signer) and SECRET not in json.dumps(headers)


def test_profile_in_temp_files(aws_env):
    (aws_env / "credentials").write_text(
        f"[dev]\naws_access_key_id = AKIAPROFILE9876\naws_secret_access_key = {SECRET}\n"
    )
    (aws_env / "config").write_text(
        "[profile dev]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:9\n"
    )
    signer = S3Signer(profile="dev", anonymous=False, region=None)
    text = signer.describe()
    assert "shared-credentials-file" in text and 'profile "dev"' in text
    assert "****9876" in text and SECRET not in text
    assert signer.region == "eu-west-3"
    assert signer.configured_endpoint() == "http://127.0.0.1:9"
    assert S3Signer(profile="dev", anonymous=False, region="us-west-2").region == "us-west-2"


def test_credential_process(aws_env):
    script = aws_env / "creds.py"
    script.write_text(
        "import json\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': 'AKIAPROCESS5555', "
        f"'SecretAccessKey': {SECRET!r}}}))\n"
    )
    (aws_env / "config").write_text(
        f"[profile proc]\ncredential_process = {sys.executable} {script}\n"
    )
    signer = S3Signer(profile="proc", anonymous=False, region=None)
    text = signer.describe()
    assert "custom-process" in text and 'profile "proc"' in text and "****5555" in text
    assert SECRET not in text
    assert "Credential=AKIAPROCESS5555/" in signer.sign("HEAD", "http://h/b/k", {})["Authorization"]


def test_failing_credential_process_is_a_clear_error(aws_env):
    (aws_env / "config").write_text(f"[profile bad]\ncredential_process = {sys.executable} -c 1\n")
    signer = S3Signer(profile="bad", anonymous=False, region=None)
    with pytest.raises(Exception, match='could not load AWS credentials \\(profile "bad"\\)'):
        signer.sign("GET", "http://h/b/k", {})


def test_unknown_profile():
    with pytest.raises(ValueError, match="'nope' was not found"):
        S3Signer(profile="nope", anonymous=False, region=None)


def test_no_credentials_means_unsigned_and_says_so():
    signer = S3Signer(profile=None, anonymous=False, region=None)
    assert "Authorization" not in signer.sign("GET", "http://h/b/k", {})
    assert signer.describe().startswith("no credentials: none were found")


def test_anonymous_never_loads_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEY1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    signer = S3Signer(profile=None, anonymous=True, region=None)
    assert signer.sign("GET", "http://h/b/k", {"A": "1"}) == {"A": "1"}
    assert "anonymous" in signer.describe()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"AWS_ENDPOINT_URL_S3": "http://s3only:1", "AWS_ENDPOINT_URL": "http://all:2"},
            "http://s3only:1",
        ),
        ({"AWS_ENDPOINT_URL": "http://all:2"}, "http://all:2"),
        ({"AWS_ENDPOINT_URL": "http://all:2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, None),
        ({}, None),
    ],
)
def test_configured_endpoint(monkeypatch, env, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert S3Signer(profile=None, anonymous=True, region=None).configured_endpoint() == expected


def test_region_from_env(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert S3Signer(profile=None, anonymous=True, region=None).region == "sa-east-1"


# --- the native SigV4 signer against botocore's ------------------------------------------

import datetime  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from unittest import mock  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from objget.backends._s3_sigv4 import SigningKeys, sign_s3_request  # noqa: E402

_HEADER_NAMES = [
    "Range", "If-Match", "Accept-Encoding", "x-amz-checksum-mode", "x-amz-request-payer",
    "User-Agent", "Expect", "X-Amz-Date", "Authorization", "X-Amz-Security-Token",
    "X-Amz-Content-SHA256", "x-amz-server-side-encryption-customer-key", "Host",
    "Content-Type", "x-amz-meta-Thing", "Connection",
]  # fmt: skip
_VALUE = st.lists(st.sampled_from(list("ab Z09-=/+\"'\t,;:*") + ["  "]), max_size=12).map("".join)
_URL_CHARS = st.sampled_from(list("abZ09-_.~!$'()*+,;:@") + ["%2F", "%20", "%C3%BC", "/"])


def botocore_sign(method, url, headers, *, ak, sk, token, region, when):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    request = AWSRequest(method=method, url=url, headers=dict(headers))
    request.context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": False})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        S3SigV4Auth(ReadOnlyCredentials(ak, sk, token), "s3", region).add_auth(request)
    return list((str(k), str(v)) for k, v in request.headers.items())


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "get"]),
    base=st.sampled_from(
        [
            "http://s3.amazonaws.com",
            "https://b.s3.eu-west-3.amazonaws.com",
            "http://127.0.0.1:8333",
            "https://Example.COM:443",
            "http://minio.local:80",
            "https://user:pw@h.example:9000",
        ]
    ),  # fmt: skip
    path=st.lists(_URL_CHARS, max_size=10).map("".join),
    query=st.lists(
        st.tuples(
            st.sampled_from(["versionId", "list-type", "prefix", "a", "A", "x y"]),
            st.one_of(st.none(), st.lists(_URL_CHARS, max_size=4).map("".join)),
        ),
        max_size=4,
    ),  # fmt: skip
    headers=st.dictionaries(st.sampled_from(_HEADER_NAMES), _VALUE, max_size=6),
    token=st.sampled_from([None, "", "FwoGZXIvYXdzE+token/=="]),
    region=st.sampled_from(["us-east-1", "eu-west-3", "cn-north-1"]),
    when=st.datetimes(
        min_value=datetime.datetime(2020, 1, 1), max_value=datetime.datetime(2035, 12, 31)
    ),
)
def test_native_sigv4_equals_botocore(method, base, path, query, headers, token, region, when):
    url = f"{base}/{path}"
    if query:
        url += "?" + "&".join(k if v is None else f"{k}={v}" for k, v in query)
    ak, sk = "AKIAEXAMPLE12345", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    when = when.replace(microsecond=0)
    mine = sign_s3_request(
        method, url, headers, access_key=ak, secret_key=sk, token=token, region=region,
        timestamp=when.strftime("%Y%m%dT%H%M%SZ"), keys=SigningKeys(),
    )  # fmt: skip
    expected = botocore_sign(method, url, headers, ak=ak, sk=sk, token=token, region=region,
                             when=when)  # fmt: skip
    assert mine is not None
    assert list(mine.items()) == expected


@pytest.mark.parametrize(
    "key", ["a/../obj", "../obj", "./x", "a/./b", "..", ".", "a//b", "a/.", "a/..", "/x"]
)
@pytest.mark.parametrize("virtual", [False, True], ids=["path", "virtual"])
def test_dot_segment_paths_are_signed_as_written(key, virtual):
    """S3 (and botocore's S3 signer) canonicalise the path as sent, never normalised: the
    signature covers `/bkt/a/../obj`, which is the request target the transport sends."""
    from objget.backends._s3_urls import object_url

    url = object_url("https://s3.eu-west-3.amazonaws.com", "bkt", key, virtual=virtual)
    when = datetime.datetime(2026, 12, 4, 7, 30, 0)
    ak, sk = "AKIAEXAMPLE12345", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    headers = {"Range": "bytes=0-9", "Accept-Encoding": "identity"}
    mine = sign_s3_request(
        "GET", url, headers, access_key=ak, secret_key=sk, token=None, region="eu-west-3",
        timestamp=when.strftime("%Y%m%dT%H%M%SZ"), keys=SigningKeys(),
    )  # fmt: skip
    expected = botocore_sign("GET", url, headers, ak=ak, sk=sk, token=None, region="eu-west-3",
                             when=when)  # fmt: skip
    assert mine is not None
    assert list(mine.items()) == expected


def test_requests_the_native_signer_does_not_model_are_left_to_botocore():
    keys = SigningKeys()
    kw = dict(access_key="AK", secret_key="SK", token=None, region="r",
              timestamp="20260101T000000Z", keys=keys)  # fmt: skip
    assert sign_s3_request("GET", "http://h/b/k", {"Date": "x"}, **kw) is None
    assert sign_s3_request("GET", "http://h/b/k", {"Range": "a", "range": "b"}, **kw) is None
    assert sign_s3_request("GET", "http://[::1]:9000/b/k", {}, **kw) is None
    assert sign_s3_request("GET", "http://h/b/k", {}, **kw) is not None


def test_the_signer_signs_natively_what_botocore_would_and_falls_back_for_the_rest(
    monkeypatch,
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEY1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    when = datetime.datetime(2026, 11, 25, 12, 0, 5)
    monkeypatch.setattr(
        "objget.backends._s3_auth._timestamp", lambda: when.strftime("%Y%m%dT%H%M%SZ")
    )
    signer = S3Signer(profile=None, anonymous=False, region="eu-west-3")
    url, headers = "http://127.0.0.1:9/b/k%20x?versionId=v1", {"Range": "bytes=0-9"}
    expected = botocore_sign("GET", url, headers, ak="AKIAENVKEY1234", sk=SECRET, token="tok",
                             region="eu-west-3", when=when)  # fmt: skip
    assert list(signer.sign("GET", url, headers).items()) == expected
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        dated = signer.sign("GET", url, {"Date": "Wed, 25 Nov 2026 12:00:05 GMT"})
    assert dated["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAENVKEY1234/")
    assert "date" in dated["Authorization"]  # botocore signed it, with its Date header


def test_anonymous_signer_without_a_profile_loads_botocore_only_when_asked(monkeypatch):
    import subprocess

    code = (
        "import sys\n"
        "from objget.backends._s3_auth import S3Signer\n"
        "s = S3Signer(profile=None, anonymous=True, region=None)\n"
        "s.sign('GET', 'http://h/b/k', {}); s.describe()\n"
        "print('botocore' in sys.modules)\n"
        "print(s.known_region())\n"
        "print(s.region)\n"
        "print('botocore' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    env["AWS_DEFAULT_REGION"] = "ap-south-1"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "None", "ap-south-1", "True"]


def test_anonymous_signer_with_a_missing_profile_still_fails_at_once(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ValueError, match="'nope' was not found"):
        S3Signer(profile=None, anonymous=True, region=None)


# --- a broken profile is an error, not an endpoint silently dropped (issue 14 item 9) --------
@pytest.mark.parametrize("anonymous", [False, True])
def test_a_missing_profile_with_a_given_region_does_not_drop_its_endpoint(anonymous, monkeypatch):
    """With the region given, nothing else reads the profile: the endpoint lookup must not
    answer "no endpoint" (signed requests would go to AWS itself)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEY1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(ValueError, match="'nope' was not found"):
        signer = S3Signer(profile="nope", anonymous=anonymous, region="us-east-1")
        signer.configured_endpoint()


@pytest.mark.parametrize("profile", ["minio", None])
def test_an_unparsable_config_file_is_an_error_naming_it(profile, aws_env, monkeypatch):
    (aws_env / "config").write_text("[profile minio\nendpoint_url = http://127.0.0.1:9000\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEY1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(ValueError, match="cannot use the AWS config files") as info:
        signer = S3Signer(profile=profile, anonymous=False, region="us-east-1")
        signer.configured_endpoint()
    assert "config" in str(info.value) and SECRET not in str(info.value)


def test_a_good_profile_gives_its_endpoint(aws_env):
    (aws_env / "config").write_text("[profile minio]\nendpoint_url = http://127.0.0.1:9000\n")
    signer = S3Signer(profile="minio", anonymous=True, region="us-east-1")
    assert signer.configured_endpoint() == "http://127.0.0.1:9000"
