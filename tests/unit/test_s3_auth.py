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
