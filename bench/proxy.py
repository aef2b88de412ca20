"""A byte-counting TCP proxy on 127.0.0.1 for the resume scenario.

Counts the bytes the upstream server sends to clients; once `arm(threshold, callback)` is set,
the callback runs once (from the pumping thread) when the count crosses the threshold — the
resume scenario uses it to SIGKILL the tool's process group at 40%.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

_BUF = 256 * 1024


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.5)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._delivered = 0
        self._threshold: int | None = None
        self._callback: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept")

    def __enter__(self) -> CountingProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join(timeout=10)
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(timeout=10)
        self._listener.close()

    @property
    def delivered(self) -> int:
        with self._lock:
            return self._delivered

    def reset(self) -> None:
        with self._lock:
            self._delivered = 0
            self._threshold = None
            self._callback = None

    def arm(self, threshold: int, callback: Callable[[], None]) -> None:
        with self._lock:
            self._threshold = threshold
            self._callback = callback

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.settimeout(120)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, upstream]
                self._threads = [t for t in self._threads if t.is_alive()]
            pair = _Pair(client, upstream)
            for src, dst, count in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(
                    target=self._pump, args=(src, dst, count, pair), name="proxy-pump"
                )
                t.start()
                self._threads.append(t)

    def _count(self, n: int) -> None:
        fire = None
        with self._lock:
            self._delivered += n
            if self._threshold is not None and self._delivered >= self._threshold:
                fire, self._callback, self._threshold = self._callback, None, None
        if fire is not None:
            fire()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool, pair: _Pair) -> None:
        buf = bytearray(_BUF)
        view = memoryview(buf)
        try:
            while not self._stop.is_set():
                n = src.recv_into(buf)
                if n == 0:
                    break
                dst.sendall(view[:n])
                if count:
                    self._count(n)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                src.shutdown(socket.SHUT_RD)
            if pair.finish():
                with self._lock:
                    self._socks = [x for x in self._socks if x not in pair.socks]
                for x in pair.socks:
                    with contextlib.suppress(OSError):
                        x.close()


class _Pair:
    """Both sockets of one proxied connection; closed by the second pump to finish."""

    def __init__(self, *socks: socket.socket) -> None:
        self.socks = socks
        self._lock = threading.Lock()
        self._done = 0

    def finish(self) -> bool:
        with self._lock:
            self._done += 1
            return self._done == 2
