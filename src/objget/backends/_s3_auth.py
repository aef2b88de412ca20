"""S3 credentials, region, endpoint and SigV4 signing, through botocore.

botocore is the standard for what it does here: the credential chain (env, shared files and
profiles, credential_process, SSO, container and instance roles, assume-role, refresh) and
SigV4. Only that is used: requests are signed here and sent through objget's own urllib3
pool. Credentials are resolved on first use and re-read for every signature, so refreshable
ones renew themselves. Nothing here logs or shows a secret.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

from .._exceptions import DownloadError

__all__ = ["S3Signer", "load_botocore"]

INSTALL_HINT = "s3:// sources need botocore: pip install 'objget[s3]'"

_SOURCES = {
    "env": "environment variables",
    "shared-credentials-file": "the shared credentials file",
    "config-file": "the AWS config file",
    "custom-process": "a credential_process",
    "sso": "AWS SSO",
    "iam-role": "the instance role (IMDS)",
    "container-role": "the container role",
    "assume-role": "an assumed role",
    "assume-role-with-web-identity": "a web-identity role",
    "explicit": "explicit keys",
}
# UNSIGNED-PAYLOAD: a GET/HEAD has no body to hash, and TLS protects the request.
_CLIENT_CONFIG = SimpleNamespace(s3={"payload_signing_enabled": False})


def load_botocore() -> ModuleType:
    """`botocore`, or an ImportError that says which extra to install."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.exceptions
        import botocore.session
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    module: ModuleType = botocore
    return module


def _mask(access_key: str) -> str:
    return "****" + access_key[-4:] if len(access_key) >= 8 else "****"


class S3Signer:
    """Signs S3 requests for one profile (or not at all, when anonymous).

    `region` may change once after a region redirect; reads and writes of it are atomic.
    """

    def __init__(self, *, profile: str | None, anonymous: bool, region: str | None) -> None:
        self._botocore = load_botocore()
        self.profile = profile
        self.anonymous = anonymous
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._loaded = anonymous
        try:
            self._session: Any = self._botocore.session.Session(profile=profile)
            configured = None if region else self._session.get_config_variable("region")
        except self._botocore.exceptions.ProfileNotFound as exc:
            raise ValueError(f"AWS profile {profile!r} was not found in the config files") from exc
        self.region: str = region or configured or os.environ.get("AWS_REGION") or "us-east-1"

    def configured_endpoint(self) -> str | None:
        """AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or the profile's `endpoint_url`."""
        env = os.environ
        if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
            return None
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if env.get(name):
                return env[name]
        try:
            scoped = self._session.get_scoped_config()
        except Exception:
            return None
        value = scoped.get("endpoint_url") if isinstance(scoped, Mapping) else None
        return str(value) if value else None

    def _load(self) -> Any:
        with self._lock:
            if not self._loaded:
                self._credentials = self._guard(self._session.get_credentials)
                self._loaded = True
            return self._credentials

    def _guard(self, fn: Any) -> Any:
        """Call into botocore's credential chain; its failures (files, processes, SSO, STS,
        JSON) become one clear DownloadError naming the profile."""
        try:
            return fn()
        except Exception as exc:
            raise DownloadError(
                f"could not load AWS credentials{self._profile_text()}: "
                f"{exc.__class__.__name__}: {str(exc)[:300]}"
            ) from exc

    def _profile_text(self) -> str:
        return f' (profile "{self.profile}")' if self.profile else ""

    def describe(self) -> str:
        """Which credentials are used, for error messages: source, profile, masked key id."""
        if self.anonymous:
            return "no credentials (anonymous request, --no-sign-request)"
        creds = self._load()
        if creds is None:
            return (
                "no credentials: none were found in the environment, the AWS config files"
                f"{self._profile_text()} or an instance/container role; the request was unsigned"
            )
        method = str(getattr(creds, "method", None) or "unknown")
        source = _SOURCES.get(method, method)
        profile = self.profile or os.environ.get("AWS_PROFILE") or "default"
        where = f'profile "{profile}", ' if method not in ("env", "explicit") else ""
        key = getattr(creds, "access_key", None) or ""
        return f"credentials from {method} ({source}), {where}access key id {_mask(str(key))}"

    def sign(self, method: str, url: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers to send: `headers` plus the SigV4 ones (unchanged when unsigned)."""
        out = dict(headers)
        if self.anonymous:
            return out
        creds = self._load()
        if creds is None:
            return out
        frozen = self._guard(creds.get_frozen_credentials)
        bc = self._botocore
        request = bc.awsrequest.AWSRequest(method=method, url=url, headers=out)
        request.context["client_config"] = _CLIENT_CONFIG
        bc.auth.S3SigV4Auth(frozen, "s3", self.region).add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}

    def __repr__(self) -> str:
        return (
            f"S3Signer(profile={self.profile!r}, anonymous={self.anonymous}, "
            f"region={self.region!r})"
        )
