"""S3 credentials, region, endpoint and SigV4 signing, through botocore.

botocore is the standard for what it does here: the credential chain (env, shared files and
profiles, credential_process, SSO, container and instance roles, assume-role, refresh) and
SigV4. Only that is used: requests are signed here and sent through objget's own urllib3
pool. Credentials are resolved on first use and re-read for every signature, so refreshable
ones renew themselves. Nothing here logs or shows a secret.

The signature itself is computed by `_s3_sigv4` (botocore's algorithm without its per-request
objects: ~0.2 ms less per request), falling back to botocore for requests it does not model.
An anonymous signer without a named profile imports botocore only when something asks for
the configured region or endpoint (~0.25 s of start-up otherwise).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Mapping
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from .._exceptions import DownloadError
from ._redact import install_redaction, mask_key_id

if TYPE_CHECKING:  # loaded with the first signature: an anonymous run needs no hashlib/hmac
    from ._s3_sigv4 import SigningKeys

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
    install_redaction()  # the loggers botocore's modules just made
    module: ModuleType = botocore
    return module


def _timestamp() -> str:
    """Now, as SigV4 writes it (`YYYYMMDDTHHMMSSZ`, UTC)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class S3Signer:
    """Signs S3 requests for one profile (or not at all, when anonymous).

    `region` may change once after a region redirect; reads and writes of it are atomic.
    """

    def __init__(self, *, profile: str | None, anonymous: bool, region: str | None) -> None:
        self.profile = profile
        self.anonymous = anonymous
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._credentials: Any = None
        self._loaded = anonymous
        self._keys: SigningKeys | None = None  # made with the first signature
        self._botocore: ModuleType | None = None
        self._session: Any = None
        self._region = region
        env = os.environ
        named = profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE")
        if not anonymous or named:  # credentials to find, or a profile to check now
            self._open()
            if self._region is None:
                self._region = self._configured_region()
        elif importlib.util.find_spec("botocore") is None:  # fail now, as when loading it
            raise ImportError(INSTALL_HINT)

    def _open(self) -> Any:
        """The botocore session of the profile (made on first need)."""
        with self._open_lock:
            if self._session is None:
                self._botocore = bc = load_botocore()
                self._session = bc.session.Session(profile=self.profile)
            return self._session

    def _configured_region(self) -> str:
        session = self._open()
        try:
            configured = session.get_config_variable("region")
        except Exception as exc:
            raise self._config_error(exc) from exc
        return str(configured or os.environ.get("AWS_REGION") or "us-east-1")

    def _config_error(self, exc: Exception) -> ValueError:
        """The AWS config files or the named profile cannot be used: an error that names the
        cause (going on without them would send signed requests to AWS itself when the
        profile's `endpoint_url` named another store)."""
        env = os.environ
        name = self.profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE")
        assert self._botocore is not None
        if isinstance(exc, self._botocore.exceptions.ProfileNotFound):
            return ValueError(f"AWS profile {name!r} was not found in the config files")
        where = f" (profile {name!r})" if name else ""
        return ValueError(
            f"cannot use the AWS config files{where}: {exc.__class__.__name__}: {str(exc)[:300]}"
        )

    @property
    def region(self) -> str:
        """The region to sign for: given, configured (AWS_DEFAULT_REGION, the profile),
        AWS_REGION, else us-east-1."""
        region = self._region
        if region is None:
            with self._lock:
                if self._region is None:
                    self._region = self._configured_region()
                region = self._region
        return region

    @region.setter
    def region(self, value: str) -> None:
        self._region = value

    def known_region(self) -> str | None:
        """The region when it is already known (given, resolved, or set by a redirect),
        without resolving it: per-request code can read this and ask `region` only when
        it needs one (e.g. to judge a region redirect), so an anonymous signer never loads
        botocore for requests to a configured endpoint."""
        return self._region

    def configured_endpoint(self) -> str | None:
        """AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or the profile's `endpoint_url`."""
        env = os.environ
        if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
            return None
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if env.get(name):
                return env[name]
        session = self._open()
        try:
            scoped = session.get_scoped_config()
        except Exception as exc:  # not silently None: the endpoint may be in the broken part
            raise self._config_error(exc) from exc
        value = scoped.get("endpoint_url") if isinstance(scoped, Mapping) else None
        return str(value) if value else None

    def _load(self) -> Any:
        with self._lock:
            if not self._loaded:
                self._credentials = self._guard(self._open().get_credentials)
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
        return f"credentials from {method} ({source}), {where}access key id {mask_key_id(str(key))}"

    def sign(self, method: str, url: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers to send: `headers` plus the SigV4 ones (unchanged when unsigned)."""
        if self.anonymous:
            return dict(headers)
        creds = self._load()
        if creds is None:
            return dict(headers)
        frozen = self._guard(creds.get_frozen_credentials)
        from ._s3_sigv4 import SigningKeys, sign_s3_request

        if self._keys is None:
            self._keys = SigningKeys()  # two threads at once: each derives its key; harmless
        signed = sign_s3_request(
            method, url, headers, access_key=frozen.access_key, secret_key=frozen.secret_key,
            token=frozen.token, region=self.region, timestamp=_timestamp(), keys=self._keys,
        )  # fmt: skip
        return signed if signed is not None else self._sign_botocore(method, url, headers, frozen)

    def _sign_botocore(
        self, method: str, url: str, headers: Mapping[str, str], frozen: Any
    ) -> dict[str, str]:
        bc = self._botocore
        assert bc is not None  # a signer with credentials opened botocore
        request = bc.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers))
        request.context["client_config"] = _CLIENT_CONFIG
        bc.auth.S3SigV4Auth(frozen, "s3", self.region).add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}

    def __repr__(self) -> str:
        return (
            f"S3Signer(profile={self.profile!r}, anonymous={self.anonymous}, "
            f"region={self.region!r})"
        )
