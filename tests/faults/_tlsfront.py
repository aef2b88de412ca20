"""A TCP front for a TLS server that breaks the first N TLS handshakes, then relays.

```python
with HandshakeBreaker(web.port, breaks=3, how="reset") as front:
    url = f"https://127.0.0.1:{front.port}/big.bin"     # the same certificate as `web`
```

A broken connection reads the client's first bytes (its ClientHello), then either closes
(`how="close"`: the client's handshake sees EOF) or resets (`how="reset"`: SO_LINGER 0, the
client sees ECONNRESET). Every later connection is relayed byte for byte to the upstream port.
Only 127.0.0.1; every socket has a timeout; `stop()` closes everything and joins (bounded).
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from types import TracebackType

__all__ = ["HandshakeBreaker"]

_TIMEOUT = 5.0


class HandshakeBreaker:
    def __init__(self, upstream_port: int, *, breaks: int, how: str = "close") -> None:
        if how not in ("close", "reset"):
            raise ValueError(f"how must be 'close' or 'reset', not {how!r}")
        self.upstream_port = upstream_port
        self.breaks = breaks
        self.how = how
        self.broken = 0  # handshakes broken so far
        self.relayed = 0  # connections relayed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]

    def __enter__(self) -> HandshakeBreaker:
        self._spawn(self._accept_loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, name="tls-front")  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(_TIMEOUT)
            with self._lock:
                self._socks.append(conn)
                breaking = self.broken < self.breaks
                if breaking:
                    self.broken += 1
                else:
                    self.relayed += 1
            self._spawn(self._break if breaking else self._relay, conn)

    def _break(self, conn: socket.socket) -> None:
        try:
            conn.recv(16384)  # the ClientHello: the handshake has begun
            if self.how == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        finally:
            conn.close()

    def _relay(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=_TIMEOUT)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._socks.append(up)
        peer = {conn: up, up: conn}
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ)
            sel.register(up, selectors.EVENT_READ)
            try:
                while not self._stop.is_set():
                    for key, _ in sel.select(timeout=0.2):
                        src = key.fileobj
                        assert isinstance(src, socket.socket)
                        data = src.recv(262144)
                        if not data:
                            return
                        peer[src].sendall(data)
            except OSError:
                return
            finally:
                conn.close()
                up.close()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in threads:
            t.join(timeout=_TIMEOUT)
