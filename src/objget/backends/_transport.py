"""The urllib3 pools every backend sends its bytes through (direct, or through the forward
proxy `_proxy` picks for the URL: `_pools`), and the boundary where urllib3 and socket errors
become objget's errors.

The byte path reads with `readinto` straight from the `http.client` response under urllib3
(no urllib3 decoder, no intermediate bytes object): one C-level `recv_into` per call. HTTPS
bodies go one step further down, to OpenSSL's read per TLS record (`_tls.DirectTlsReader`).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import ssl
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import urllib3
from urllib3 import exceptions as u3
from urllib3.util import parse_url

from .._config import DownloadConfig
from .._exceptions import (
    AccessDenied,
    DownloadError,
    ObjectChanged,
    ObjectNotFound,
    RemoteError,
    TLSError,
    TransportError,
)
from .._retry import parse_retry_after
from ._pools import _system_trust, as_written, make_pools, proxy_error
from ._redact import install_redaction, redact_url
from ._tls import DirectTlsReader, is_verify_failure, tls_reason

if TYPE_CHECKING:
    from ._proxy import ProxyRules, ProxyUrl

__all__ = ["ResponseBody", "Transport", "content_length", "error_for_status", "redact_url"]
_ = _system_trust  # loaded on first https use only (tests/unit/test_import_cost.py asks it)

log = logging.getLogger("objget")

# every variable `_proxy.proxy_rules` reads a proxy from (set, even empty, or logged about)
_PROXY_VARIABLES = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"
)  # fmt: skip


def _proxy_rules(config: DownloadConfig) -> ProxyRules | None:
    """The proxy rules, or None when no proxy is configured or in the environment (without
    importing `_proxy`: a direct download does not need it)."""
    if config.proxy is None and not any(name in os.environ for name in _PROXY_VARIABLES):
        return None
    from ._proxy import proxy_rules

    return proxy_rules(config.proxy, config.no_proxy)


def error_for_status(
    status: int,
    *,
    source: str,
    detail: str = "",
    code: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    credentials: str | None = None,
) -> DownloadError:
    """The objget error for an HTTP error status (retryable ones are TransportError)."""
    extra = f": {detail}" if detail else ""
    rid = f" (request id {request_id})" if request_id else ""
    kw: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id,
        "source": source,
    }
    if status == 404:
        return ObjectNotFound(f"{source} not found (HTTP 404){extra}{rid}", **kw)
    if status == 407:  # from a forward proxy, not the store
        return AccessDenied(
            f"{source}: the proxy refused the request (HTTP 407 proxy authentication "
            f"required){extra}; check the credentials in the proxy URL",
            **kw,
        )
    if status in (401, 403):
        who = f" using {credentials}" if credentials else ""
        return AccessDenied(f"access to {source} denied (HTTP {status}){who}{extra}{rid}", **kw)
    if status == 412:
        return ObjectChanged(
            f"{source} changed during the download (HTTP 412 precondition failed){extra}{rid}; "
            "run again to download the new version",
            **kw,
        )
    if status == 416:
        return ObjectChanged(
            f"{source} is shorter than when the download started (HTTP 416){extra}{rid}; "
            "run again to download the new version",
            **kw,
        )
    if status in (408, 429) or status >= 500:
        return TransportError(
            f"{source}: server answered HTTP {status}{extra}{rid}",
            status=status,
            retry_after=retry_after,
            request_id=request_id,
            source=source,
        )
    return RemoteError(f"{source}: server answered HTTP {status}{extra}{rid}", **kw)


class ResponseBody:
    """`RangeBody` over a urllib3 response; reads via the underlying http.client response."""

    def __init__(self, resp: urllib3.BaseHTTPResponse, *, source: str, read_timeout: float):
        self._resp = resp
        self._fp: http.client.HTTPResponse | None = getattr(resp, "_fp", None)
        self._source = source
        self._timeout = read_timeout
        self.status = resp.status
        self.headers = resp.headers
        self.content_range = resp.headers.get("Content-Range")
        cl = resp.headers.get("Content-Length")
        self.content_length = content_length(cl)
        self._eof = False
        self._direct = DirectTlsReader.for_response(self._fp)

    def readinto(self, buf: memoryview, /) -> int:
        fp = self._fp
        if fp is None:
            return 0
        try:
            n = self._direct.readinto(buf) if self._direct is not None else fp.readinto(buf)
        except TimeoutError as exc:
            raise TransportError(
                f"{self._source}: no data for {self._timeout:g} s (stalled connection)",
                source=self._source,
            ) from exc
        except http.client.IncompleteRead as exc:
            raise TransportError(
                f"{self._source}: connection closed early (body truncated)", source=self._source
            ) from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(
                f"{self._source}: connection failed while reading: {exc.__class__.__name__}",
                source=self._source,
            ) from exc
        if n == 0:
            self._eof = True
        return n

    def abort(self) -> None:
        """Break a read in progress in another thread (cancel, stall): urllib3's `shutdown()`
        (hence the urllib3 >= 2.3 floor) shuts the socket's read side, so a blocked recv
        returns at once. ValueError/RuntimeError: the response is closed or its connection
        already back in the pool, so there is no read to break."""
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            self._resp.shutdown()

    def close(self) -> None:
        if self._eof or (self._fp is not None and self._fp.isclosed()):
            self._resp.release_conn()
            return
        self._resp.close()
        self._resp.release_conn()

    def read_error_body(self, limit: int = 65536) -> bytes:
        try:
            data = self._resp.read(limit, decode_content=True)
        except Exception:
            data = b""
        self.close()
        return data


class Transport:
    """urllib3 pool managers: TLS verified by default, timeouts on, no hidden retries; one
    for direct connections and one per forward proxy in use (`_proxy`: which, and when)."""

    def __init__(self, config: DownloadConfig, *, pool_size: int | None = None) -> None:
        install_redaction()
        self.config = config
        kwargs: dict[str, Any] = {
            "num_pools": 32,
            "maxsize": pool_size or max(4, config.max_workers),
            "block": False,
            "timeout": urllib3.Timeout(connect=config.timeouts.connect, read=config.timeouts.read),
            "retries": False,
            "headers": {"User-Agent": config.user_agent},
        }
        if config.verify_tls:
            kwargs["cert_reqs"] = "CERT_REQUIRED"
            if config.ca_bundle:
                kwargs["ca_certs"] = config.ca_bundle
        else:
            kwargs["cert_reqs"] = "CERT_NONE"
        self._pool_kwargs = kwargs
        self.pool = make_pools(kwargs, verify=config.verify_tls, ca_bundle=bool(config.ca_bundle))
        self._verify = config.verify_tls
        self.proxies = _proxy_rules(config)
        self._via: dict[ProxyUrl, urllib3.PoolManager] = {}
        self._via_lock = threading.Lock()
        if not config.verify_tls:
            # The choice is explicit, so it is said once here, not per request: urllib3's
            # InsecureRequestWarning would print from a silent library (and raise under -W error).
            log.warning("TLS certificates are not verified (verify_tls=False)")

    def _pools_for(self, proxy: ProxyUrl | None) -> urllib3.PoolManager:
        if proxy is None:
            return self.pool
        with self._via_lock:
            pools = self._via.get(proxy)
            if pools is None:
                log.debug("requests go through the proxy %s", proxy.shown)
                pools = make_pools(
                    self._pool_kwargs,
                    verify=self._verify,
                    ca_bundle=bool(self.config.ca_bundle),
                    proxy=proxy,
                )
                self._via[proxy] = pools
            return pools

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        source: str,
        redirect: bool = True,
    ) -> ResponseBody:
        """Send one request; connection-level failures become TransportError, a refused
        certificate TLSError.

        A request that follows no redirect is one a backend built (and maybe signed) itself:
        its path goes on the wire exactly as `url` writes it (`_send_as_written`)."""
        host = urlsplit(url).hostname or "?"
        proxy = self.proxies.for_url(url) if self.proxies and self.proxies.any else None
        pools = self._pools_for(proxy)
        # `headers=` replaces the pool's defaults, its User-Agent included
        all_headers = {"User-Agent": self.config.user_agent, **headers}
        try:
            if redirect:
                retries = urllib3.Retry(
                    total=None,
                    connect=0,
                    read=0,
                    status=0,
                    other=0,
                    redirect=10,
                    raise_on_redirect=True,
                    raise_on_status=False,
                )
                resp = pools.request(
                    method,
                    url,
                    headers=all_headers,
                    preload_content=False,
                    decode_content=False,
                    redirect=True,
                    retries=retries,
                )
            else:
                resp = self._send_as_written(pools, method, url, all_headers, proxied=proxy)
        except u3.MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, u3.ResponseError) or "redirect" in str(reason).lower():
                raise RemoteError(
                    f"{source}: too many redirects (more than 10)", source=source
                ) from exc
            raise self._map(reason or exc, host, source, proxy) from exc
        except (u3.HTTPError, OSError) as exc:
            raise self._map(exc, host, source, proxy) from exc
        return ResponseBody(resp, source=source, read_timeout=self.config.timeouts.read)

    def _send_as_written(
        self,
        pools: urllib3.PoolManager,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        proxied: ProxyUrl | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send with the request target taken from `url` byte for byte. `PoolManager.urlopen`
        re-parses the URL and removes `.` and `..` segments (RFC 3986 reference resolution):
        `/bkt/a/../obj` would go out as `/bkt/obj`, another object (`/b1/../b2/k`: another
        bucket's), under a signature computed over the path as written. Object keys are
        names, not paths; S3 and OSS take such segments literally, as botocore sends them.
        urllib3 only picks the connection pool here. Through a proxy, an https request goes
        the same way inside the CONNECT tunnel; an http one in absolute form (`_pools`)."""
        where = parse_url(url)
        pool = pools.connection_from_host(where.host, port=where.port, scheme=where.scheme)
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        written: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if proxied is not None and where.scheme == "http":
            # absolute form to the proxy; urllib3 normalises this copy, AsWrittenPool sends
            # the original
            target = f"http://{parts.netloc.rpartition('@')[2]}{target}"
            written = as_written(target)
        with written:
            return pool.urlopen(
                method,
                target,
                headers=dict(headers),
                preload_content=False,
                decode_content=False,
                redirect=False,
                retries=False,
                assert_same_host=False,
            )

    def _map(
        self, exc: BaseException, host: str, source: str, proxy: ProxyUrl | None = None
    ) -> DownloadError:
        if proxy is not None and isinstance(exc, u3.ProxyError):
            return proxy_error(exc, proxy, host, source)
        if isinstance(exc, (u3.SSLError, ssl.SSLError)):
            if is_verify_failure(exc):  # final: every connection would be refused the same way
                return TLSError(f"TLS error talking to {host}: {tls_reason(exc)}", source=source)
            # a handshake cut short (EOF, reset), an alert, a torn record: retried like any
            # connection failure, so one flaky handshake among many does not end the download
            return TransportError(
                f"TLS connection to {host} failed: {tls_reason(exc)}", source=source
            )
        if isinstance(exc, u3.NameResolutionError):
            return TransportError(f"cannot resolve host {host} (DNS lookup failed)", source=source)
        if isinstance(exc, u3.ConnectTimeoutError) and not isinstance(exc, u3.NewConnectionError):
            return TransportError(f"connecting to {host} timed out", source=source)
        if isinstance(exc, u3.NewConnectionError):
            return TransportError(
                f"cannot connect to {host}: connection refused or unreachable", source=source
            )
        if isinstance(exc, u3.ReadTimeoutError):
            return TransportError(f"{host} did not answer in time (read timeout)", source=source)
        return TransportError(
            f"connection to {host} failed: {exc.__class__.__name__}", source=source
        )

    def close(self) -> None:
        self.pool.clear()
        with self._via_lock:
            via = list(self._via.values())
        for pools in via:
            pools.clear()


def retry_after_of(body: ResponseBody, *, now: float) -> float | None:
    return parse_retry_after(body.headers.get("Retry-After"), now=now)


def content_length(value: str | None) -> int | None:
    """A Content-Length header as an int; None when absent, malformed or absurd."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    n = int(value)
    return n if n < 2**63 else None
