"""A scripted ranged-object handler for pytest-httpserver: exact bytes, exact faults."""

from __future__ import annotations

import re
import socket
import struct
import threading
import time

from werkzeug.wrappers import Request, Response


class RangedObject:
    """Serves `data` with real Range semantics; each GET takes the next scripted action:

    - "ok": the exact range (206)
    - "reset:N": N bytes of the range, then a TCP reset
    - "short:N": N bytes, then a clean close before Content-Length is reached
    - "status:CODE[:RETRY_AFTER]": an error status
    - "full": 200 with the whole object (ignores Range)
    - "badrange": 206 with a Content-Range one byte off
    - "extra": 206 with the exact headers but 1000 more bytes than asked
    """

    def __init__(self, data: bytes, *, etag: str = '"v1"', ranges: bool = True, script=()):
        self.data = data
        self.etag = etag
        self.ranges = ranges
        self.script = list(script)
        self.log: list[tuple[str, str | None, float]] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()

    def _headers(self):
        h = {"ETag": self.etag, "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}
        if self.ranges:
            h["Accept-Ranges"] = "bytes"
        return h

    def __call__(self, request: Request) -> Response:
        rng = request.headers.get("Range")
        with self._lock:
            self.log.append((request.method, rng, time.monotonic()))
            action = "ok"
            if request.method == "GET" and self.script:
                action = self.script.pop(0)
        size = len(self.data)
        if request.method == "HEAD":
            resp = Response(b"", headers=self._headers())
            resp.headers["Content-Length"] = str(size)
            resp.automatically_set_content_length = False
            return resp
        if action.startswith("status:"):
            parts = action.split(":")
            headers = {"Retry-After": parts[2]} if len(parts) > 2 else {}
            return Response(b"error", status=int(parts[1]), headers=headers)
        m = re.match(r"bytes=(\d+)-(\d+)$", rng or "")
        if m is None or not self.ranges or action == "full":
            return self._send(request, self.data, 200, self._headers(), action)
        start, last = int(m.group(1)), int(m.group(2))
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match != self.etag:
            return Response(b"", status=412)
        body = self.data[start : last + 1]
        cr = f"bytes {start}-{last}/{size}"
        if action == "badrange":
            cr = f"bytes {start + 1}-{last + 1}/{size}"
        headers = {**self._headers(), "Content-Range": cr}
        return self._send(request, body, 206, headers, action)

    def _send(self, request, body, status, headers, action):
        sock = request.environ.get("werkzeug.socket")
        length = len(body)
        if action == "extra":
            body = body + b"\0" * 1000
        cut = None
        if action.startswith(("reset:", "short:")):
            cut = int(action.split(":")[1])

        def gen():
            view = memoryview(body)
            pos = 0
            limit = len(body) if cut is None else min(cut, len(body))
            while pos < limit:
                chunk = view[pos : min(limit, pos + 65536)]
                pos += len(chunk)
                with self._lock:
                    self.bytes_sent += len(chunk)
                yield bytes(chunk)
            if cut is not None and sock is not None:
                time.sleep(0.3)  # let the client read what was sent before the RST drops it
                if action.startswith("reset:"):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()

        resp = Response(gen(), status=status, headers=headers, direct_passthrough=True)
        resp.headers["Content-Length"] = str(length)
        return resp
