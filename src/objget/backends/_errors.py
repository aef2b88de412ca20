"""The one place where the HTTP client's failures become objget's errors: a connection that
could not be made (DNS, refused, timed out; to the origin or to a forward proxy), a tunnel the
proxy refused, a TLS handshake that failed (`_tls` says whether for good), an answer that did
not come, a body cut short or stalled, and an HTTP error status.

Everything retryable is a `TransportError`; a refused certificate is a `TLSError`; a store's
final answer a `RemoteError` subclass. Messages name the host (never credentials: a proxy is
shown as `ProxyUrl.shown`) and keep the texts tests and users rely on.
"""

from __future__ import annotations

import _socket  # socket.py's wrapper is not needed (see `_conn`)
import sys

from .._exceptions import (
    AccessDenied,
    DownloadError,
    ObjectChanged,
    ObjectNotFound,
    RemoteError,
    TLSError,
    TransportError,
)

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Any

    from ._proxy import ProxyUrl

__all__ = [
    "ConnectFailed",
    "Truncated",
    "TunnelRefused",
    "error_for_status",
    "read_error",
    "request_error",
]


class ConnectFailed(Exception):
    """The TCP connection (to the origin, or to the proxy when `to_proxy`) was not made, or the
    proxy's answer to CONNECT never came; the socket error is the `__cause__`."""

    def __init__(self, *, to_proxy: bool) -> None:
        super().__init__("to the proxy" if to_proxy else "to the origin")
        self.to_proxy = to_proxy


class TunnelRefused(Exception):
    """The proxy answered CONNECT with `status` instead of 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"Tunnel connection failed: {status}")
        self.status = status


class Truncated(ConnectionError):
    """The connection ended inside a body of known length."""


def request_error(
    exc: BaseException, host: str, source: str, proxy: ProxyUrl | None = None
) -> DownloadError:
    """The objget error for a request that failed before its answer's head was read."""
    if isinstance(exc, TunnelRefused) or (isinstance(exc, ConnectFailed) and exc.to_proxy):
        return _proxy_error(exc, proxy, host, source)
    if isinstance(exc, ConnectFailed):
        cause = exc.__cause__
        if isinstance(cause, _socket.gaierror):
            return TransportError(f"cannot resolve host {host} (DNS lookup failed)", source=source)
        if isinstance(cause, TimeoutError):
            return TransportError(f"connecting to {host} timed out", source=source)
        return TransportError(
            f"cannot connect to {host}: connection refused or unreachable", source=source
        )
    if "ssl" in sys.modules:  # no TLS error can exist before ssl was imported
        from ._tls import is_tls_error, is_verify_failure, tls_reason

        if is_tls_error(exc):
            if is_verify_failure(exc):  # final: every connection would be refused the same way
                return TLSError(f"TLS error talking to {host}: {tls_reason(exc)}", source=source)
            # a handshake cut short (EOF, reset), an alert, a torn record: retried like any
            # connection failure, so one flaky handshake among many does not end the download
            return TransportError(
                f"TLS connection to {host} failed: {tls_reason(exc)}", source=source
            )
    if isinstance(exc, (TimeoutError, BlockingIOError)):  # BlockingIOError: SO_RCVTIMEO
        return TransportError(f"{host} did not answer in time (read timeout)", source=source)
    return TransportError(f"connection to {host} failed: {exc.__class__.__name__}", source=source)


def read_error(exc: BaseException, source: str, timeout: float) -> TransportError:
    """The objget error for a body read that failed."""
    if isinstance(exc, (TimeoutError, BlockingIOError)):
        return TransportError(
            f"{source}: no data for {timeout:g} s (stalled connection)", source=source
        )
    if isinstance(exc, Truncated):
        return TransportError(f"{source}: connection closed early (body truncated)", source=source)
    return TransportError(
        f"{source}: connection failed while reading: {exc.__class__.__name__}", source=source
    )


def _proxy_error(
    exc: BaseException, proxy: ProxyUrl | None, host: str, source: str
) -> DownloadError:
    """A failure at the proxy: it refused the tunnel (401, 403 and 407 are final: the same
    credentials get the same answer), or could not be reached (retryable)."""
    where = f"proxy {proxy.shown}" if proxy is not None else "the proxy"
    if isinstance(exc, TunnelRefused):
        status = exc.status
        if status in (401, 403, 407):
            hint = "; check the credentials in the proxy URL" if status == 407 else ""
            return AccessDenied(
                f"{where} refused to connect to {host} (HTTP {status}){hint}",
                status=status,
                source=source,
            )
        return TransportError(
            f"{where} could not connect to {host} (HTTP {status})", status=status, source=source
        )
    if isinstance(exc.__cause__, TimeoutError):
        return TransportError(f"connecting to {where} timed out", source=source)
    return TransportError(
        f"cannot connect to {where}: connection refused or unreachable", source=source
    )


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
