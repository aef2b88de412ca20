"""Where an `oss://` source is and who signs for it: URL parsing, endpoint and region, the
credential chain, and objget's own V1/V4 signer.

Endpoint: `--endpoint` / `OSS_ENDPOINT`, else `https://oss-<region>.aliyuncs.com` from
`--region` / `OSS_REGION`. Path style for IP and localhost endpoints (as oss2 does), virtual-
hosted style otherwise. Credentials: anonymous when asked; `OSS_ACCESS_KEY_ID` /
`OSS_ACCESS_KEY_SECRET` / `OSS_SESSION_TOKEN`; then the Alibaba Cloud default credential chain
(profile file, ECS RAM role, OIDC) when `alibabacloud-credentials` is installed (its failure is
an error, not a fallback); else anonymous.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from .._exceptions import DownloadError
from ._options import BackendOptions
from ._oss_auth import OssCredentials, sign_v1, sign_v4
from ._redact import redact_text
from .oss import OssTarget

__all__ = ["NativeSigner", "OssLocation", "find_credentials", "parse_oss_url", "resolve_target"]

_CHAIN_HINT = (
    "set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET, fix the chain's configuration, or pass "
    "--no-sign-request (anonymous=True) for a public bucket"
)
_VERSION_SUFFIX = re.compile(r"\?versionId=([^&=?/]+)$")
_REGION_HOST = re.compile(r"^oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")


@dataclass(frozen=True, kw_only=True, slots=True)
class OssLocation:
    bucket: str
    key: str
    version_id: str | None = None


def parse_oss_url(source: str) -> OssLocation:
    """`oss://bucket/key[?versionId=V]`; the key is taken literally (spaces, `?`, `#` kept),
    only a trailing `?versionId=` names a version."""
    if not source.lower().startswith("oss://"):
        raise ValueError(f"not an oss:// URL: {source!r}")
    rest = source[len("oss://") :]
    version = None
    m = _VERSION_SUFFIX.search(rest)
    if m is not None:
        version, rest = m.group(1), rest[: m.start()]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise ValueError(
            f"an oss:// URL needs a bucket and a key: oss://BUCKET/KEY, got {source!r}"
        )
    return OssLocation(bucket=bucket, key=key, version_id=version)


def _is_ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def resolve_target(bucket: str, options: BackendOptions) -> tuple[OssTarget, str | None]:
    """The bucket's OssTarget and the region (for V4), from options and the environment."""
    endpoint = options.endpoint or os.environ.get("OSS_ENDPOINT")
    region = options.region or os.environ.get("OSS_REGION")
    if not endpoint:
        if not region:
            raise ValueError(
                "oss:// needs an endpoint or a region: pass --endpoint or --region, or set "
                "OSS_ENDPOINT or OSS_REGION"
            )
        endpoint = f"https://oss-{region}.aliyuncs.com"
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    host = urlsplit(endpoint).hostname or ""
    if region is None:  # oss-<region>[-internal].aliyuncs.com; accelerate hosts name none
        m = _REGION_HOST.match(host)
        region = m.group(1) if m and not m.group(1).startswith("accelerate") else None
    target = OssTarget(
        endpoint=endpoint.rstrip("/"), bucket=bucket, path_style=_is_ip_or_localhost(host)
    )
    return target, region


def find_credentials(options: BackendOptions) -> OssCredentials | None:
    """The first credentials found, or None for anonymous access (asked for, or no source of
    credentials at all). An installed Alibaba Cloud credential chain that fails is an error
    naming the cause, not anonymous access: the user meant to sign."""
    if options.anonymous:
        return None
    ak = os.environ.get("OSS_ACCESS_KEY_ID")
    sk = os.environ.get("OSS_ACCESS_KEY_SECRET")
    if ak and sk:
        token = os.environ.get("OSS_SESSION_TOKEN") or None
        return OssCredentials(ak, sk, token, source="env OSS_ACCESS_KEY_ID")
    try:
        from alibabacloud_credentials.client import Client
    except ImportError:
        return None
    try:
        cred = Client().get_credential()
    except Exception as exc:  # not anonymous in silence: the user meant to sign
        cause = redact_text(f"{exc.__class__.__name__}: {str(exc)[:300]}")
        raise DownloadError(
            f"the Alibaba Cloud credential chain failed: {cause}; {_CHAIN_HINT}"
        ) from exc
    if not cred.access_key_id or not cred.access_key_secret:
        raise DownloadError(
            "the Alibaba Cloud credential chain gave no access key id or secret "
            f"(from {getattr(cred, 'type', None) or 'default'}); {_CHAIN_HINT}"
        )
    return OssCredentials(
        cred.access_key_id,
        cred.access_key_secret,
        cred.security_token or None,
        source=f"Alibaba Cloud credential chain ({getattr(cred, 'type', None) or 'default'})",
    )


class NativeSigner:
    """objget's own OSS signer: V4 (`OSS4-HMAC-SHA256`, needs the region) or V1 (HMAC-SHA1)."""

    def __init__(
        self, credentials: OssCredentials | None, *, version: str, region: str | None
    ) -> None:
        if credentials is not None and version == "4" and not region:
            raise ValueError(
                "OSS signature V4 needs a region: pass --region or set OSS_REGION (or use "
                "--signature-version 1)"
            )
        self._creds = credentials
        self._version = version
        self._region = region
        self.description = (
            credentials.describe() if credentials is not None else "no credentials (anonymous)"
        )

    def __repr__(self) -> str:
        return f"NativeSigner(version={self._version!r}, {self.description})"

    def sign(
        self,
        method: str,
        bucket: str,
        key: str,
        params: Mapping[str, str],
        headers: dict[str, str],
    ) -> dict[str, str]:
        if self._creds is None:
            return headers
        now = datetime.now(timezone.utc)
        if self._version == "4":
            assert self._region is not None
            added = sign_v4(
                method, bucket, key, params, headers, self._creds, region=self._region, now=now
            )
        else:
            added = sign_v1(method, bucket, key, params, headers, self._creds, now=now)
        lower = {k.lower() for k in added}
        out = {k: v for k, v in headers.items() if k.lower() not in lower}
        out.update(added)
        return out
