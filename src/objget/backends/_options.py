"""Store options for oss:// and s3:// sources (endpoints, credentials, request flags), and the
extra request headers of http(s):// sources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._headers import check_headers
from ._redact import SecretPairs

__all__ = ["BackendOptions"]

OSS_TRAFFIC_LIMIT_MIN = 819_200
OSS_TRAFFIC_LIMIT_MAX = 838_860_800


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendOptions:
    """Options a store backend reads; fields a backend does not know are ignored by it.

    - `endpoint`: OSS endpoint (`--endpoint`, else `OSS_ENDPOINT`) or S3 endpoint URL
      (`--endpoint-url`, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`).
    - `region`: OSS region (V4 signing, default endpoint) or S3 region.
    - `profile`: S3, a profile of the AWS config files; OSS, a profile of ossutil's config
      file (`OSSUTIL_CONFIG_FILE`, else `~/.ossutilconfig`).
    - `addressing_style` (`auto`/`path`/`virtual`): S3.
    - `anonymous`: send unsigned requests (public buckets).
    - `signature_version`: OSS `4` (default) or `1`.
    - `request_payer`: add the requester-pays header.
    - `oss_traffic_limit`: OSS `x-oss-traffic-limit` in bit/s (819,200–838,860,800).
    - `sse_c_key`: S3 SSE-C customer key (32 raw bytes; never shown).
    - `verify_md5`: check a single-part object's plain-MD5 ETag (S3 `--verify md5`).
    - `headers`: extra request headers for http(s):// sources (`--header`), a mapping or
      (name, value) pairs, kept as checked pairs with canonical names (so the options stay
      hashable and picklable); refused for oss:// and s3://, whose requests are signed. Never
      shown in the repr (they may hold credentials).
    """

    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str = "auto"
    anonymous: bool = False
    signature_version: str = "4"
    request_payer: bool = False
    oss_traffic_limit: int | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)
    verify_md5: bool = False
    headers: Mapping[str, str] | tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise ValueError("addressing_style must be auto, path or virtual")
        if self.signature_version not in ("1", "4"):
            raise ValueError("signature_version must be 1 or 4")
        lim = self.oss_traffic_limit
        if lim is not None and not OSS_TRAFFIC_LIMIT_MIN <= lim <= OSS_TRAFFIC_LIMIT_MAX:
            raise ValueError(
                f"OSS traffic limit must be between {OSS_TRAFFIC_LIMIT_MIN:,} and "
                f"{OSS_TRAFFIC_LIMIT_MAX:,} bit/s (got {lim:,})"
            )
        object.__setattr__(self, "headers", SecretPairs(check_headers(self.headers).items()))
        if self.sse_c_key is not None and len(self.sse_c_key) != 32:
            raise ValueError("an SSE-C key must be exactly 32 bytes (AES-256)")
