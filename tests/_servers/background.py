"""A `socketserver` server running on a thread of its own for a `with` block.

Subclass it (or hold one) and pass the server made on 127.0.0.1, port 0: `url` is its address,
`__enter__` starts serving, `__exit__` stops serving, closes the socket and joins the thread.
"""

from __future__ import annotations

import socketserver
import threading

__all__ = ["Background"]


class Background:
    def __init__(self, server: socketserver.BaseServer, poll: float = 0.05) -> None:
        self.httpd = server
        self.port = int(server.server_address[1])  # type: ignore[index]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll})

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
