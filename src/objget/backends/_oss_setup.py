"""Where an `oss://` source is and who signs for it: URL parsing, endpoint and region, the
credential chain, and objget's own V1/V4 signer.

Endpoint: `--endpoint` / `OSS_ENDPOINT` / the ossutil profile's `endpoint`, else
`https://oss-<region>.aliyuncs.com` from `--region` / `OSS_REGION` / the profile's `region`.
Path style for IP and localhost endpoints (as oss2 does), virtual-hosted style otherwise.

Credentials, the first found (as ossutil looks: environment, then its config file):
anonymous when asked; `OSS_ACCESS_KEY_ID` / `OSS_ACCESS_KEY_SECRET` / `OSS_SESSION_TOKEN`;
the ossutil config file's profile (`--profile NAME`, else its default one; `_oss_profile`);
then the Alibaba Cloud default credential chain when `alibabacloud-credentials` is installed,
renewed as it goes (`_oss_creds`; its failure is an error, not a fallback); else anonymous.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ._options import BackendOptions
from ._oss_auth import (
    SECURITY_TOKEN,
    V4_ALGORITHM,
    OssCredentials,
    OssRequest,
    sign_v1,
    sign_v4,
)
from ._oss_creds import CredentialSource, StaticCredentials, chain_credentials
from ._oss_profile import read_profile
from .oss import OssTarget

__all__ = [
    "NativeSigner",
    "OssLocation",
    "credential_source",
    "find_credentials",
    "parse_oss_url",
    "resolve_target",
]

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
    if not endpoint or not region:
        profile = read_profile(options.profile)
        if profile is not None:
            endpoint = endpoint or profile.endpoint
            region = region or profile.region
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


def credential_source(options: BackendOptions) -> CredentialSource | None:
    """Where the credentials come from, or None for anonymous access (asked for, or no source
    of credentials at all). An ossutil profile named with `--profile` that is not there, and
    an installed Alibaba Cloud credential chain that fails, are errors naming the cause, not
    anonymous access: the user meant to sign."""
    if options.anonymous:
        return None
    ak = os.environ.get("OSS_ACCESS_KEY_ID")
    sk = os.environ.get("OSS_ACCESS_KEY_SECRET")
    if ak and sk:
        token = os.environ.get("OSS_SESSION_TOKEN") or None
        return StaticCredentials(OssCredentials(ak, sk, token, source="env OSS_ACCESS_KEY_ID"))
    profile = read_profile(options.profile)
    if profile is not None and (profile.access_key_id or options.profile):
        if not profile.access_key_id or not profile.access_key_secret:
            raise ValueError(
                f"{profile.where} has no accessKeyId and accessKeySecret; "
                "add them, or use another profile"
            )
        creds = OssCredentials(
            profile.access_key_id,
            profile.access_key_secret,
            profile.security_token,
            source=profile.where,
        )
        return StaticCredentials(creds)
    return chain_credentials()


def find_credentials(options: BackendOptions) -> OssCredentials | None:
    """The credentials `credential_source` would sign with now (None: anonymous)."""
    source = credential_source(options)
    return None if source is None else source.current()


def _used_key(signed: Mapping[str, str]) -> tuple[str, str | None]:
    """The key id and token a request was signed with, from its signed headers."""
    lower = {k.lower(): v for k, v in signed.items()}
    auth = lower.get("authorization", "")
    if auth.startswith(V4_ALGORITHM):
        key_id = auth.partition("Credential=")[2].partition("/")[0]
    else:
        key_id = auth.removeprefix("OSS ").rpartition(":")[0]
    return key_id, lower.get(SECURITY_TOKEN)


class NativeSigner:
    """objget's own OSS signer: V4 (`OSS4-HMAC-SHA256`, needs the region) or V1 (HMAC-SHA1),
    with the credentials its source gives for each request."""

    def __init__(
        self,
        credentials: OssCredentials | CredentialSource | None,
        *,
        version: str,
        region: str | None,
    ) -> None:
        if credentials is not None and version == "4" and not region:
            raise ValueError(
                "OSS signature V4 needs a region: pass --region or set OSS_REGION (or use "
                "--signature-version 1)"
            )
        if isinstance(credentials, OssCredentials):
            credentials = StaticCredentials(credentials)
        self._source = credentials
        self._version = version
        self._region = region

    @property
    def description(self) -> str:
        """The credentials signing now, for messages (key id masked, never the secret)."""
        if self._source is None:
            return "no credentials (anonymous)"
        return self._source.current().describe()

    def __repr__(self) -> str:
        return f"NativeSigner(version={self._version!r}, {self.description})"

    def sign(self, request: OssRequest) -> dict[str, str]:
        if self._source is None:
            return dict(request.headers)
        creds = self._source.current()
        now = datetime.now(timezone.utc)
        if self._version == "4":
            assert self._region is not None
            added = sign_v4(request, creds, region=self._region, now=now)
        else:
            added = sign_v1(request, creds, now=now)
        return dict(request.with_headers(added).headers)

    def renew(self, signed: Mapping[str, str]) -> bool:
        """The store refused the request signed with `signed` as expired: True when the
        credentials were renewed (the request is worth sending again)."""
        if self._source is None:
            return False
        return self._source.renew(_used_key(signed))
