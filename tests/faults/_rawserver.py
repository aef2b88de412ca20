"""A scripted raw-socket HTTP server: the test decides every byte of every answer.

```python
def answer(req: RawRequest) -> Reply:
    return Reply(b"HTTP/1.1 206 Partial Content\\r\\nContent-Range: lies\\r\\n...")

with RawServer(answer) as srv:
    url = f"{srv.url}/obj.bin"
```

Each connection gets its own thread; requests on one connection are answered in turn while
the reply says `keep_alive`. Only 127.0.0.1. Every socket has a timeout; `stop()` closes the
listener and every connection and joins the threads (bounded).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["RawRequest", "RawServer", "Reply", "http_reply"]

_TIMEOUT = 5.0


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


@dataclass(frozen=True)
class Reply:
    data: bytes
    keep_alive: bool = False


def http_reply(
    status: str, headers: list[tuple[str, str]] | dict[str, str], body: bytes = b"", **kw: bool
) -> Reply:
    """Assemble an answer; header values are sent as latin-1, exactly as given. Without
    `keep_alive=True` it says `Connection: close` (and the server closes)."""
    items = list(headers.items() if isinstance(headers, dict) else headers)
    if not kw.get("keep_alive"):
        items.append(("Connection", "close"))
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    try:
        raw = head.encode("latin-1")
    except UnicodeEncodeError:
        raw = head.encode("utf-8")  # servers do send UTF-8 bytes in headers
    return Reply(raw + body, **kw)


@dataclass
class RawServer:
    answer: Callable[[RawRequest], Reply]
    port: int = 0
    requests: list[RawRequest] = field(default_factory=list)
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _conns: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RawServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock, self.port = sock, sock.getsockname()[1]
        t = threading.Thread(target=self._accept, name="raw-accept")
        self._threads.append(t)
        t.start()
        return self

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(timeout=10)

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(_TIMEOUT)
            t = threading.Thread(target=self._serve, args=(conn,), name="raw-conn")
            with self._lock:
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    if len(buf) > 1 << 20:
                        return
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                req = RawRequest(method, path, headers)
                with self._lock:
                    self.requests.append(req)
                reply = self.answer(req)
                conn.sendall(reply.data)
                if not reply.keep_alive:
                    return
        except OSError:
            return
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
