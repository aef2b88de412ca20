"""PURE: `s3://` source URLs, endpoints, and path vs virtual-hosted addressing."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

__all__ = ["S3Location", "default_endpoint", "object_url", "parse_s3_url", "use_virtual"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$", re.IGNORECASE)
_DNS_BUCKET = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_VERSION_QUERY = re.compile(r"\?versionId=([^&#]+)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class S3Location:
    """`s3://bucket/key[?versionId=V]` split up. The key is taken literally (no unquoting), so
    any S3 key can be named; only a trailing `?versionId=...` is read as the version."""

    bucket: str
    key: str
    version_id: str | None = None


def parse_s3_url(source: str) -> S3Location:
    """Split an `s3://` URL; ValueError with the reason when it is not one."""
    if not source[:5].lower() == "s3://":
        raise ValueError(f"not an s3:// URL: {source!r}")
    rest = source[5:]
    version = None
    m = _VERSION_QUERY.search(rest)
    if m:
        version = m.group(1)
        rest = rest[: m.start()]
    bucket, sep, key = rest.partition("/")
    if not bucket or not _BUCKET.match(bucket):
        raise ValueError(f"{source!r}: {bucket!r} is not a valid S3 bucket name")
    if not sep or not key:
        raise ValueError(f"{source!r}: no object key (expected s3://bucket/key)")
    return S3Location(bucket=bucket, key=key, version_id=version)


def default_endpoint(region: str) -> str:
    """The AWS regional S3 endpoint."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


def _is_aws(host: str) -> bool:
    host = host.lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def use_virtual(style: str, endpoint: str, bucket: str) -> bool:
    """Whether the bucket goes into the host name.

    `auto`: virtual-hosted on AWS endpoints when the bucket is a DNS label usable there (no
    dots over HTTPS, where they would break the wildcard certificate), path style for custom
    endpoints (MinIO, SeaweedFS, Ceph...) and IP addresses.
    """
    if style == "path":
        return False
    if style == "virtual":
        return True
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if not _is_aws(host) or _is_ip(host):
        return False
    if not _DNS_BUCKET.match(bucket) or len(bucket) > 63 or bucket.lower() != bucket:
        return False
    return not (parts.scheme == "https" and "." in bucket)


def object_url(
    endpoint: str,
    bucket: str,
    key: str,
    *,
    virtual: bool,
    query: tuple[tuple[str, str], ...] = (),
) -> str:
    """The request URL of `key`: the key percent-encoded as S3 canonicalises it (`/` and
    `~` kept), and `query` appended in order (values encoded)."""
    parts = urlsplit(endpoint.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid S3 endpoint {endpoint!r}: expected http(s)://host[:port]")
    base_path = parts.path.rstrip("/")
    path_key = quote(key, safe="/~")
    if virtual:
        netloc = f"{bucket}.{parts.netloc}"
        path = f"{base_path}/{path_key}"
    else:
        netloc = parts.netloc
        path = f"{base_path}/{quote(bucket, safe='')}/{path_key}"
    url = f"{parts.scheme}://{netloc}{path}"
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='~')}" for k, v in query)
    return url
