"""Run the OSS-protocol test server (tests/_servers/oss_server.py) in its own process, in front
of the harness's SeaweedFS, so its CPU counts as server CPU and not as the harness's.

    python bench/oss_front.py S3_URL --key AK:SK

Prints `OSS_ENDPOINT=http://127.0.0.1:PORT` once serving; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._servers.oss_server import OssServer


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("s3_url")
    p.add_argument("--key", action="append", default=[], metavar="AK:SK")
    p.add_argument("--anonymous", action="store_true", help="also serve unsigned requests")
    args = p.parse_args()
    keys = dict(k.split(":", 1) for k in args.key)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with OssServer(args.s3_url, keys=keys, anonymous=args.anonymous) as oss:
        print(f"OSS_ENDPOINT={oss.endpoint}", flush=True)
        while not stop.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
