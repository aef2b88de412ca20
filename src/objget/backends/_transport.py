"""The transport every backend sends its requests through: objget's own HTTP/1.1 client over
kept-alive connections (`_conn`), for http and https, direct or through a forward proxy
(`_proxy` picks it), with one error mapping (`_errors`).

`request` writes the request head itself (`Host`, `Accept-Encoding: identity`, `User-Agent`,
then the backend's headers in order), reads the answer's head (`_answer`) and hands back its
body (`_body.ResponseBody`), which reads straight into the caller's buffer. A backend's own
(signed) request goes out with its target as written (`redirect=False`); a plain URL has its
dot segments resolved and follows up to 10 redirects (301, 302, 303, 307, 308; 303 turns into
a GET; `Authorization`, `Cookie` and `Proxy-Authorization` are dropped when the redirect leaves
the host), as urllib3 did before. Through a proxy, an `http://` request goes to the proxy in
absolute form with `Proxy-Authorization`; an `https://` one through a CONNECT tunnel.

A request on a reused connection that the server had closed meanwhile (no byte of the answer)
is sent once more on a new connection (GET and HEAD only). Nothing else is retried here: the
engine's retry policy decides.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

from .._config import DownloadConfig
from .._exceptions import RemoteError, TransportError
from .._log import DEBUG, log
from ._answer import Conn, Stale, content_length, frame, read_head
from ._body import ResponseBody
from ._conn import Key, Pool
from ._errors import ConnectFailed, TunnelRefused, error_for_status, request_error
from ._redact import install_redaction, redact_url
from ._target import Origin, absolute, origin, same_origin, target

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    import ssl

    from ._proxy import ProxyRules, ProxyUrl

__all__ = ["ResponseBody", "Transport", "content_length", "error_for_status", "redact_url"]

# every variable `_proxy.proxy_rules` reads a proxy from (set, even empty, or logged about)
_PROXY_VARIABLES = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"
)  # fmt: skip
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_CROSS_HOST_DROP = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = frozenset(
    {"content-encoding", "content-language", "content-location", "content-type",
     "content-length", "digest", "last-modified"}
)  # fmt: skip
_IDEMPOTENT = frozenset({"GET", "HEAD"})
_BAD_NAME = r"[:\s]"  # both compiled at their first use: most heads need neither (`_valid`)
_BAD_VALUE = r"\n(?![ \t])|\r(?![ \t\n])"


def _proxy_rules(config: DownloadConfig) -> ProxyRules | None:
    """The proxy rules, or None when no proxy is configured or in the environment (without
    importing `_proxy`: a direct download does not need it)."""
    if config.proxy is None and not any(name in os.environ for name in _PROXY_VARIABLES):
        return None
    from ._proxy import proxy_rules

    return proxy_rules(config.proxy, config.no_proxy)


class Transport:
    """Kept-alive connections for every backend: TLS verified by default, timeouts on, no
    hidden retries; the pool holds connections per origin and proxy (`_conn`)."""

    def __init__(self, config: DownloadConfig, *, pool_size: int | None = None) -> None:
        install_redaction()
        self.config = config
        self.proxies = _proxy_rules(config)
        self._pool = Pool(
            keep=pool_size or max(4, config.max_workers),
            connect_timeout=config.timeouts.connect,
            read_timeout=config.timeouts.read,
            tls=self._tls_context,
        )
        self._ctx: ssl.SSLContext | None = None
        self._ctx_lock = threading.Lock()
        if not config.verify_tls:
            # The choice is explicit, so it is said once here, not per request.
            log.warning("TLS certificates are not verified (verify_tls=False)")

    def _tls_context(self) -> ssl.SSLContext:
        with self._ctx_lock:
            if self._ctx is None:
                from ._tls import client_context

                self._ctx = client_context(
                    verify=self.config.verify_tls, ca_bundle=self.config.ca_bundle
                )
            return self._ctx

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
        certificate TLSError, a refusing proxy AccessDenied.

        A request that follows no redirect is one a backend built (and maybe signed) itself:
        its path goes on the wire exactly as `url` writes it (no dot segment resolved)."""
        if not redirect:
            return self._once(method, url, headers, source, as_written=True)
        for hop in range(_MAX_REDIRECTS + 1):
            body = self._once(method, url, headers, source, as_written=False)
            location = body.headers.get("Location") if body.status in _REDIRECTS else None
            if not location:
                return body
            body.read_error_body(65536)  # drained: the connection may serve the next hop
            if hop == _MAX_REDIRECTS:
                raise RemoteError(
                    f"{source}: too many redirects (more than {_MAX_REDIRECTS})", source=source
                )
            from urllib.parse import urljoin  # at a redirect only

            new = urljoin(url, location)
            if body.status == 303:
                method = "GET"
                headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
            if not _same_host(url, new):
                headers = {k: v for k, v in headers.items() if k.lower() not in _CROSS_HOST_DROP}
            log.info("Redirecting %s -> %s", redact_url(url), redact_url(new))
            url = new
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self, method: str, url: str, headers: Mapping[str, str], source: str, *, as_written: bool
    ) -> ResponseBody:
        try:
            where = origin(url)
        except ValueError as exc:
            raise RemoteError(
                f"{source}: cannot send a request there ({exc})", source=source
            ) from exc
        proxies = self.proxies
        proxy = proxies.for_url(url) if proxies is not None and proxies.any else None
        if proxy is not None and where.scheme == "http":
            line_target = absolute(url, as_written=as_written)
            extra = proxy.headers()
        else:
            line_target = target(url, as_written=as_written)
            extra = None
        raw = _request_head(
            method, line_target, where.host_header, headers, self.config.user_agent, extra
        )
        body = self._exchange(
            method, (where.scheme, where.host, where.port, proxy), where, raw, source
        )
        if log.isEnabledFor(DEBUG):
            log.debug("%s %s -> %d", method, redact_url(url), body.status)
        return body

    def _exchange(
        self, method: str, key: Key, where: Origin, raw: bytes, source: str
    ) -> ResponseBody:
        pool = self._pool
        conn = pool.take(key)
        reused = conn is not None
        for _ in range(2):
            if conn is None:
                try:
                    conn = pool.connect(key, where)
                except (OSError, ValueError, ConnectFailed, TunnelRefused) as exc:
                    raise request_error(exc, where.host, source, key[3]) from exc
            try:
                return self._send(conn, method, raw, source, where, reused=reused)
            except Stale:
                conn.close()
                conn, reused = None, False
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, conn: Conn, method: str, raw: bytes, source: str, where: Origin, *, reused: bool
    ) -> ResponseBody:
        try:
            conn.sock.sendall(raw)
            while True:
                status, headers, version = read_head(conn, reused=reused)
                if status >= 200 or status == 101:  # 1xx interim answers are skipped
                    break
        except Stale as exc:
            if method in _IDEMPOTENT:
                raise
            raise request_error(ConnectionResetError(), where.host, source) from exc
        except (OSError, ValueError) as exc:
            if (
                reused
                and method in _IDEMPOTENT
                and isinstance(exc, (BrokenPipeError, ConnectionResetError))
            ):
                raise Stale from exc
            raise request_error(exc, where.host, source) from exc
        if status == 101:
            raise TransportError(
                f"connection to {where.host} failed: unexpected 101", source=source
            )
        framing, length, reusable = frame(method, status, headers, version)
        return ResponseBody(
            self._pool.release, conn, read_timeout=self.config.timeouts.read, status=status,
            headers=headers, framing=framing, length=length, reusable=reusable, source=source,
        )  # fmt: skip

    def _map(
        self, exc: BaseException, host: str, source: str, proxy: ProxyUrl | None = None
    ) -> Exception:
        """The objget error for a failed request (`_errors.request_error`)."""
        return request_error(exc, host, source, proxy)

    def close(self) -> None:
        self._pool.close()


def _same_host(a: str, b: str) -> bool:
    try:
        return same_origin(origin(a), origin(b))
    except ValueError:
        return False


def _request_head(
    method: str,
    line_target: str,
    host: str,
    headers: Mapping[str, str],
    user_agent: str,
    extra: Mapping[str, str] | None,
) -> bytes:
    """The request head as http.client wrote it for urllib3: our Host and
    `Accept-Encoding: identity` unless given, the User-Agent, then the headers in order."""
    lower = {k.lower() for k in headers}
    lines = [f"{method} {line_target} HTTP/1.1"]
    if "host" not in lower:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in lower:
        lines.append("Accept-Encoding: identity")
    if "user-agent" not in lower:
        lines.append(f"User-Agent: {user_agent}")
    for name, value in headers.items():
        if not _valid(name, value):
            raise ValueError(f"invalid HTTP header {name!r}")
        lines.append(f"{name}: {value}")
    if extra:
        lines += [f"{k}: {v}" for k, v in extra.items()]
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _valid(name: str, value: str) -> bool:
    """A header line objget may send: a name without ':' or white space, a value whose line
    breaks only fold (obs-fold). Plain ASCII names of letters, digits and '-' and values
    without CR or LF (every header objget makes) pass without a regex."""
    if not name:
        return False
    if not (name.isascii() and name.replace("-", "").isalnum()) and re.search(_BAD_NAME, name):
        return False
    return ("\n" not in value and "\r" not in value) or not re.search(_BAD_VALUE, value)


def retry_after_of(body: ResponseBody, *, now: float) -> float | None:
    from .._retry import parse_retry_after  # with an error answer only: not at start

    return parse_retry_after(body.headers.get("Retry-After"), now=now)
