"""The demo's local object stores, in one process: SeaweedFS (S3 API, SigV4 checked, anonymous
reads allowed for plain HTTP URLs) and objget's OSS-protocol test server in front of it.

    python scripts/demo_servers.py WORKDIR FILE

Uploads FILE as bucket `demo`, key `big.bin`, prints one line of shell variables
(S3_URL, OSS_ENDPOINT, WEED_PID, the demo's credentials), then serves until SIGTERM/SIGINT and
stops SeaweedFS by its PID.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._servers.oss_server import OssServer
from tests._servers.seaweed import SeaweedFS

S3_KEY = ("demoAK", "demoSecretKey0123456789")
OSS_KEY = ("demoOssAK", "demoOssSecret0123456789")
REGION = "cn-hangzhou"


def main() -> None:
    workdir, upload = Path(sys.argv[1]), Path(sys.argv[2])
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with (
        SeaweedFS(workdir / "weed", identities=[S3_KEY], anonymous_read=True) as s3,
        OssServer(s3.s3_url, keys={OSS_KEY[0]: OSS_KEY[1]}, region=REGION) as oss,
    ):
        s3.create_bucket("demo")
        s3.put("demo", "big.bin", upload)
        values = {
            "S3_URL": s3.s3_url,
            "WEED_PID": str(s3.pid),
            "OSS_ENDPOINT": oss.endpoint,
            "OSS_REGION": REGION,
            "DEMO_AWS_KEY": S3_KEY[0],
            "DEMO_AWS_SECRET": S3_KEY[1],
            "DEMO_OSS_KEY": OSS_KEY[0],
            "DEMO_OSS_SECRET": OSS_KEY[1],
        }
        print(" ".join(f"{k}={shlex.quote(v)}" for k, v in values.items()), flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
