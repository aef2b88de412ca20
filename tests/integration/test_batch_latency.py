"""A batch of small objects over a path where every request waits (an HTTP server that
answers each GET after 100 ms, over real TCP; a manifest of URLs, one GET each): the measured
count of objects at once starts at half the budget and climbs to all of it within about half
a second. (600 objects took 3.56-3.69 s, as with a fixed 32 at once: 3.63-3.65 s.)"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import objget

from .._servers.background import Background

DELAY = 0.1
COUNT = 600


class SlowStore(Background):
    """Serves /o/N (1 KiB each) after DELAY; counts the GETs in progress over time."""

    def __init__(self) -> None:
        store = self
        self.lock = threading.Lock()
        self.open = 0
        self.seen: list[tuple[float, int]] = []
        self.start: float | None = None

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as a store's

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                with store.lock:
                    now = time.monotonic()
                    store.start = now if store.start is None else store.start
                    store.open += 1
                    store.seen.append((now - store.start, store.open))
                time.sleep(DELAY)
                body = self.path.encode().ljust(1024, b".")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{hash(self.path) & 0xFFFFFF:x}"')
                self.send_header("Last-Modified", "Tue, 01 Oct 2024 00:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)
                with store.lock:
                    store.open -= 1

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # 32 connections at once: the default 5 drops SYNs

        super().__init__(Server(("127.0.0.1", 0), Handler))


def test_a_batch_where_each_request_waits_climbs_to_the_budget(tmp_path, caplog):
    with SlowStore() as store, caplog.at_level(logging.DEBUG, logger="objget"):
        manifest = tmp_path / "list.txt"
        manifest.write_text("".join(f"{store.url}/o/{i:04d}\n" for i in range(COUNT)))
        result = objget.download_many(None, tmp_path / "out", manifest=manifest)
    assert result.ok and len(result.downloaded) == COUNT
    assert (tmp_path / "out/o/0007").read_bytes() == b"/o/0007".ljust(1024, b".")
    assert max(n for t, n in store.seen if t < 0.2) <= 16  # it started with half
    assert max(n for _, n in store.seen) >= 28  # then (nearly) all 32 were in flight
    changes = [r.getMessage() for r in caplog.records if "small objects at once" in r.getMessage()]
    assert changes[0].startswith("small objects at once 16 -> 32: climb 16->32: first window")
    assert changes[-1].split(":")[0].endswith("-> 32")  # and it stayed there
