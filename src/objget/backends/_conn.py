"""Kept-alive connections, pooled per (scheme, host, port, proxy): made (TCP, a CONNECT tunnel
through a forward proxy, TLS), handed out, taken back, and dropped when they cannot be trusted.

Rules:

- a connection goes back to the pool only after its answer's body was read exactly to its end
  (`ResponseBody.close`); at most `keep` idle ones per key, at most 32 keys (the oldest key's
  connections are closed first);
- one that idled for more than a second is looked at before reuse (readable while idle: the
  server closed it, or sent bytes nobody asked for); one reused sooner that turns out closed
  (no byte of the answer) is replaced and the request sent once more (`Stale`, by the caller);
- timeouts: the TCP connect, the proxy's CONNECT answer and the TLS handshake under the
  connect timeout; reads under the read timeout: on plain TCP on Linux the kernel's
  (SO_RCVTIMEO on a blocking socket: no poll() before every recv), else the socket's own.

A connection error is raised as `ConnectFailed` (cause chained) or `TunnelRefused`, and TLS
errors as they are; `_errors` turns them into objget's errors.

Sockets are `_socket`'s, the C module under `socket.py`: the wrapper adds what objget does not
use (file objects, `sendfile`, enum families and flags) and costs ~12 M instructions to import
(its enum conversions, `selectors`), a twentieth of a small download's start-up. `ssl` wraps
a `_socket.socket` as it wraps a `socket.socket` (and imports `socket.py` itself).
"""

from __future__ import annotations

import _socket
import select
import struct
import sys
import threading
import time

from ._answer import Conn, read_head
from ._errors import ConnectFailed, TunnelRefused

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from ._proxy import ProxyUrl
    from ._target import Origin

__all__ = ["Key", "Pool"]

_LINUX = sys.platform.startswith("linux")
_KERNEL_TIMEOUTS = _LINUX and hasattr(_socket, "SO_RCVTIMEO")
_PEEK_FLAGS = _socket.MSG_PEEK | _socket.MSG_DONTWAIT if _LINUX else 0
TRUST_IDLE = 1.0  # seconds a released connection is reused without looking at it first
_MAX_KEYS = 32

Key = tuple[str, str, int, "ProxyUrl | None"]


class Pool:
    """Idle connections by key; `connect` makes new ones. `tls` gives the TLS context on
    first https use (so a plain-http run never loads `ssl`)."""

    def __init__(
        self,
        *,
        keep: int,
        connect_timeout: float,
        read_timeout: float,
        tls: Callable[[], ssl.SSLContext],
    ) -> None:
        self._keep = keep
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._tls = tls
        self._idle: dict[Key, list[Conn]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, key: Key) -> Conn | None:
        """An idle connection for `key` that may be reused, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return None
            # Idle for a moment only (the common case): reused as is; a server that closed
            # it meanwhile is caught by the resend of a request that got no byte.
            if time.monotonic() - conn.idle_since < TRUST_IDLE or _idle_ok(conn.sock):
                return conn
            conn.close()

    def release(self, conn: Conn) -> None:
        """Keep a connection whose answer was read to its end for the next request."""
        dropped: list[Conn] = [conn]
        with self._lock:
            key: Key = conn.key  # type: ignore[assignment]
            idle = self._idle.get(key)
            if idle is None and not self._closed:
                if len(self._idle) >= _MAX_KEYS:  # the oldest key's connections make room
                    dropped += self._idle.pop(next(iter(self._idle)))
                idle = self._idle[key] = []
            if idle is not None and not self._closed and len(idle) < self._keep:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                dropped.remove(conn)
        for old in dropped:
            old.close()

    def connect(self, key: Key, where: Origin) -> Conn:
        """A new connection for `key`: to `where` directly, or through the key's proxy (a
        CONNECT tunnel for https; plain http is sent to the proxy itself)."""
        scheme, _, _, proxy = key
        tunnel = proxy is not None and scheme == "https"
        if proxy is not None:
            sock = self._tcp(proxy.host, proxy.port, to_proxy=True)
        else:
            sock = self._tcp(where.host, where.port, to_proxy=False)
        try:
            if tunnel:
                assert proxy is not None
                self._tunnel(sock, where, proxy)
            if scheme == "https":
                from ._tls import wrap

                tls, read = wrap(sock, self._tls(), where.host, read_timeout=self._read_timeout)
                return Conn(tls, key, read)
        except BaseException:
            sock.close()
            raise
        self._read_timeouts(sock)
        return Conn(sock, key)

    def _tcp(self, host: str, port: int, *, to_proxy: bool) -> _socket.socket:
        try:
            sock = open_tcp(host, port, self._connect_timeout)
        except OSError as exc:
            raise ConnectFailed(to_proxy=to_proxy) from exc
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        return sock

    def _tunnel(self, sock: _socket.socket, where: Origin, proxy: ProxyUrl) -> None:
        """CONNECT to the origin through the proxy; TunnelRefused unless it answers 200."""
        lines = [f"CONNECT {where.netloc} HTTP/1.1", f"Host: {where.netloc}"]
        lines += [f"{k}: {v}" for k, v in proxy.headers().items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        probe = Conn(sock, None)
        try:
            sock.sendall(head)
            status, _, _ = read_head(probe, reused=False)
        except (OSError, ValueError) as exc:
            raise ConnectFailed(to_proxy=True) from exc
        if status != 200:
            raise TunnelRefused(status)
        if probe.end != probe.start:  # the origin's bytes before our TLS hello: not TLS
            raise ConnectFailed(to_proxy=True) from ValueError("bytes after the CONNECT answer")

    def _read_timeouts(self, sock: _socket.socket) -> None:
        read = self._read_timeout
        if _KERNEL_TIMEOUTS:
            # The kernel enforces the read timeout: Python's own (a poll() before every
            # recv and send) would cost a system call and a GIL round trip each time.
            sec = int(read)
            tv = struct.pack("@ll", sec, int((read - sec) * 1e6))
            sock.settimeout(None)
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, tv)
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, tv)
        else:
            sock.settimeout(read)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _idle_ok(sock: _socket.socket) -> bool:
    """An idle kept-alive socket with nothing to read: not closed by the server, and no
    stray bytes after the last answer."""
    if _PEEK_FLAGS and type(sock) is _socket.socket:  # plain TCP (a TLS socket: polled)
        try:
            sock.recv(1, _PEEK_FLAGS)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False  # EOF, or bytes nobody asked for
    tls = sys.modules.get("ssl")  # loaded by the first https connection
    if tls is not None and isinstance(sock, tls.SSLSocket):
        return _tls_idle_ok(sock, tls.SSLWantReadError)
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _tls_idle_ok(sock: ssl.SSLSocket, want_read: type[OSError]) -> bool:
    """An idle TLS connection is asked with a read that does not wait: bytes after the last
    answer may wait in OpenSSL's buffers (a record read ahead, or the rest of a record whose
    first bytes ended the body), out of the kernel's sight, so polling the socket is not
    enough. A byte, an end of stream or any error: not reusable (a byte read is lost with
    the connection, which is closed)."""
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0.0)
        sock.recv(1)
    except want_read:
        try:
            sock.settimeout(timeout)
        except OSError:
            return False
        return True
    except (OSError, ValueError):
        return False
    return False


def open_tcp(host: str, port: int, timeout: float) -> _socket.socket:
    """A TCP connection to the first of `host`'s addresses that accepts one, each tried under
    `timeout`, else the last address's error (what `socket.create_connection` does).

    The name is resolved as bytes when it is ASCII (`_target.origin` made an IDNA name ASCII
    already): given a str, `getaddrinfo` encodes it with Python's idna codec, and loading that
    (encodings.idna, stringprep, unicodedata: ~13 M instructions) was a seventh of a small
    download's start-up. `create_connection` is typed for str hosts only, hence this loop."""
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    failed: list[OSError] = []
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = None
        try:
            sock = _socket.socket(family, kind, proto)
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            if sock is not None:
                sock.close()
            failed.append(exc)
            continue
        failed.clear()  # their tracebacks hold this frame
        return sock
    try:
        raise failed[-1] if failed else OSError(f"no address for {host}")
    finally:
        failed.clear()
