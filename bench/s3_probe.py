"""A raw range reader to /dev/null: what a request pattern costs an S3 server (bench/s3_ab.py).

    python bench/s3_probe.py --url http://127.0.0.1:PORT/bucket/key [--part MiB] [--streams N]
        [--offset BYTES] [--rcvbuf BYTES] [--read BYTES] [--pace SECONDS]

The object is cut into `--part` MiB ranges (0: one request for all of it), every edge but the
first shifted by `--offset` bytes (edges off the store's chunks); `--streams` threads take
ranges in order, each on one kept-alive connection, and read the body with `recv_into` of
`--read` bytes (sleeping `--pace` seconds after each: a slower reader), with SO_RCVBUF set to
`--rcvbuf` when given (else the kernel's autotuning). No disk, no checks: only the requests.
Prints the number of requests and of reads.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from urllib.parse import urlsplit

MiB = 1024 * 1024


def _head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise EOFError("connection closed before the answer's head")
        data += more
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _size(host: str, port: int, path: str) -> int:
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head, _ = _head(s)
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("no Content-Length in the HEAD answer")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--part", type=int, default=0, help="MiB per request (0: the whole object)")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--offset", type=int, default=0, help="bytes every inner edge is shifted by")
    p.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF (0: autotuning)")
    p.add_argument("--read", type=int, default=MiB, help="bytes per recv_into")
    p.add_argument("--pace", type=float, default=0.0, help="seconds slept after each read")
    p.add_argument(
        "--lowat",
        type=int,
        default=0,
        help="use SO_RCVLOWAT (the read's size) for "
        "reads of at least this many bytes with as much of the range behind them",
    )
    a = p.parse_args()
    u = urlsplit(a.url)
    host, port, path = u.hostname or "127.0.0.1", u.port or 80, u.path
    size = _size(host, port, path)
    step = a.part * MiB or size
    starts = [0] + [e + a.offset for e in range(step, size, step)]
    todo = list(zip(starts, [*starts[1:], size], strict=True))
    lock = threading.Lock()
    reads = [0]

    def worker() -> None:
        sock = socket.create_connection((host, port), timeout=30)
        if a.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        buf = memoryview(bytearray(a.read))
        n = 0
        with sock:
            while True:
                with lock:
                    if not todo:
                        break
                    start, stop = todo.pop(0)
                req = (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Range: bytes={start}-{stop - 1}\r\nAccept-Encoding: identity\r\n\r\n"
                )
                sock.sendall(req.encode())
                head, rest = _head(sock)
                if b" 206 " not in head.split(b"\r\n", 1)[0] + b" ":
                    raise RuntimeError(f"not a 206: {head[:100]!r}")
                left = stop - start - len(rest)
                lowat = 1
                while left > 0:
                    want = min(len(buf), left)
                    want = want if a.lowat and left >= 2 * want and want >= a.lowat else 1
                    if want != lowat:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
                        lowat = want
                    got = sock.recv_into(buf[: min(len(buf), left)])
                    if not got:
                        raise EOFError("body cut short")
                    left -= got
                    n += 1
                    if a.pace:
                        time.sleep(a.pace)
        with lock:
            reads[0] += n

    count = len(todo)
    threads = [threading.Thread(target=worker) for _ in range(a.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    print(f"{count} requests, {reads[0]} reads of up to {a.read} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
