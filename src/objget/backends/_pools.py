"""The urllib3 pool managers of the transport: the direct one, one per forward proxy, and the
request target written through a proxy exactly as the backend built it.

An `https://` request through a proxy goes through a CONNECT tunnel (urllib3's ProxyManager):
the proxy sees the host and port only; the request line inside the tunnel is origin-form as on
a direct connection. An `http://` request goes to the proxy in absolute form
(`GET http://host:port/path HTTP/1.1`) with `Proxy-Authorization` when the proxy URL has
credentials. urllib3 re-parses an absolute target and removes dot segments from it, so a
request that must go out as written (`Transport._send_as_written`) hands its absolute target to
`AsWrittenPool` through `_WRITTEN`, which puts it back just before the request line is sent.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3 import exceptions as u3

from .._exceptions import AccessDenied, DownloadError, TransportError
from ._tls import UnverifiedHTTPSPool

if TYPE_CHECKING:
    from ._proxy import ProxyUrl

__all__ = ["AsWrittenPool", "SystemTrustPools", "as_written", "make_pools", "proxy_error"]

_WRITTEN: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "objget_written_target", default=None
)


@functools.cache
def _system_trust() -> ssl.SSLContext:
    """The system's CA store, loaded once per process and only when an https pool first needs
    it: loading it costs ~45 ms, a third of a whole 8 MiB download from a plain-http server."""
    return ssl.create_default_context()


class _SystemTrust:
    """A pool manager mixin: https pools verify against `_system_trust()`."""

    connection_pool_kw: dict[str, Any]

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> urllib3.HTTPConnectionPool:
        if scheme == "https":
            if request_context is None:
                request_context = self.connection_pool_kw.copy()
            request_context.setdefault("ssl_context", _system_trust())
        return super()._new_pool(scheme, host, port, request_context)  # type: ignore[misc,no-any-return]


class SystemTrustPools(_SystemTrust, urllib3.PoolManager):
    """A PoolManager whose https pools verify against `_system_trust()`."""


class _SystemTrustProxy(_SystemTrust, urllib3.ProxyManager):
    """A ProxyManager whose tunnelled https pools verify against `_system_trust()`."""


class AsWrittenPool(urllib3.HTTPConnectionPool):
    """The pool of connections to a plain-http proxy: sends the absolute target `as_written`
    set, instead of urllib3's normalised copy of it."""

    def _make_request(
        self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any
    ) -> urllib3.BaseHTTPResponse:
        written = _WRITTEN.get()
        return super()._make_request(conn, method, written or url, *args, **kwargs)


@contextlib.contextmanager
def as_written(target: str) -> Iterator[None]:
    """Within the block, a request through a proxy pool goes out with `target` as its
    request target (one request, in this thread)."""
    token = _WRITTEN.set(target)
    try:
        yield
    finally:
        _WRITTEN.reset(token)


def make_pools(
    kwargs: dict[str, Any], *, verify: bool, ca_bundle: bool, proxy: ProxyUrl | None = None
) -> urllib3.PoolManager:
    """The direct pool manager (`proxy` None) or the one for a proxy, with `kwargs` for its
    pools; https verified against the system store unless a CA bundle is given."""
    if proxy is None:
        direct = SystemTrustPools if verify and not ca_bundle else urllib3.PoolManager
        pools: urllib3.PoolManager = direct(**kwargs)
    else:
        cls = _SystemTrustProxy if verify and not ca_bundle else urllib3.ProxyManager
        pools = cls(proxy.url, proxy_headers=proxy.headers(), **kwargs)
        pools.pool_classes_by_scheme = {**pools.pool_classes_by_scheme, "http": AsWrittenPool}
    if not verify:
        pools.pool_classes_by_scheme = {
            **pools.pool_classes_by_scheme,
            "https": UnverifiedHTTPSPool,
        }
    return pools


def proxy_error(exc: u3.ProxyError, proxy: ProxyUrl, host: str, source: str) -> DownloadError:
    """The objget error for a failure at the proxy: it refused the tunnel (407 and 403 are
    final: the same credentials get the same answer), or could not be reached (retryable).
    The proxy is named without its credentials."""
    status = _tunnel_status(exc)
    where = f"proxy {proxy.shown}"
    if status in (401, 403, 407):
        hint = "; check the credentials in the proxy URL" if status == 407 else ""
        return AccessDenied(
            f"{where} refused to connect to {host} (HTTP {status}){hint}",
            status=status,
            source=source,
        )
    if status is not None:
        return TransportError(
            f"{where} could not connect to {host} (HTTP {status})", status=status, source=source
        )
    cause = exc.original_error if hasattr(exc, "original_error") else None
    if isinstance(cause, u3.ConnectTimeoutError) and not isinstance(cause, u3.NewConnectionError):
        return TransportError(f"connecting to {where} timed out", source=source)
    return TransportError(
        f"cannot connect to {where}: connection refused or unreachable", source=source
    )


def _tunnel_status(exc: BaseException) -> int | None:
    """The status of a refused CONNECT ("Tunnel connection failed: 407 ...")."""
    seen: list[BaseException] = [exc]
    for e in seen:
        text = str(e)
        mark = "Tunnel connection failed: "
        if mark in text:
            code = text.split(mark, 1)[1][:3]
            return int(code) if code.isdigit() else None
        if len(seen) < 8:
            more = (*e.args, e.__cause__, e.__context__)
            seen.extend(a for a in more if isinstance(a, BaseException) and a not in seen)
    return None
