"""Run one Python download in-process and print its timed part as JSON on stdout.

Imports and client construction happen before the clock starts (as in peer-bench); only the
documented download call is timed. Usage (one mode per run):

    python bench/peer_runner.py boto3 --endpoint URL --bucket B --key K --dest PATH
                                      [--concurrency N]
    python bench/peer_runner.py crt   --endpoint URL --bucket B --key K --dest PATH
    python bench/peer_runner.py oss2  --endpoint URL --bucket B --key K --dest PATH --store DIR
                                      [--concurrency N] [--part-size BYTES]
    python bench/peer_runner.py objget-resumable  (same arguments as oss2)
    python bench/peer_runner.py objget-lib --url URL --dest PATH [--concurrency N] [--ca-bundle F]
        [--no-sync]   (os.fsync/os.fdatasync as no-ops: what durability costs)
    python bench/peer_runner.py boto3-many --endpoint URL --bucket B --keys FILE --dest DIR
                                      [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

REGION = "us-east-1"


def _boto3_client(args: argparse.Namespace, pool: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=max(10, pool)),
    )


def _transfer_config(concurrency: int | None) -> Any:
    from boto3.s3.transfer import TransferConfig

    kwargs: dict[str, Any] = {"preferred_transfer_client": "classic"}
    if concurrency:
        kwargs["max_concurrency"] = concurrency
    return TransferConfig(**kwargs)


def prepare_boto3(args: argparse.Namespace) -> Callable[[], None]:
    client = _boto3_client(args, args.concurrency or 10)
    config = _transfer_config(args.concurrency)
    return lambda: client.download_file(args.bucket, args.key, args.dest, Config=config)


def prepare_crt(args: argparse.Namespace) -> Callable[[], None]:
    import botocore.session
    from botocore.config import Config
    from s3transfer.crt import (
        BotocoreCRTCredentialsWrapper,
        BotocoreCRTRequestSerializer,
        CRTTransferManager,
        create_s3_crt_client,
    )

    session = botocore.session.Session()
    session.set_credentials(args.access_key, args.secret_key)
    creds = BotocoreCRTCredentialsWrapper(session.get_credentials())
    client = create_s3_crt_client(
        REGION,
        crt_credentials_provider=creds.to_crt_credentials_provider(),
        target_throughput=1_250_000_000,  # 10 Gbps
        part_size=8 * 1024 * 1024,
        use_ssl=args.endpoint.startswith("https"),
    )
    serializer = BotocoreCRTRequestSerializer(
        session,
        client_kwargs={
            "region_name": REGION,
            "endpoint_url": args.endpoint,
            "config": Config(s3={"addressing_style": "path"}),
        },
    )
    manager = CRTTransferManager(client, serializer)

    def run() -> None:
        with manager:
            manager.download(args.bucket, args.key, args.dest).result()

    return run


def _oss2_bucket_and_kwargs(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    import oss2

    bucket = oss2.Bucket(oss2.Auth(args.access_key, args.secret_key), args.endpoint, args.bucket)
    kwargs: dict[str, Any] = {"store": oss2.ResumableDownloadStore(root=args.store)}
    if args.concurrency:
        kwargs["num_threads"] = args.concurrency
    if args.part_size:
        kwargs["part_size"] = args.part_size
    return bucket, kwargs


def prepare_oss2(args: argparse.Namespace) -> Callable[[], None]:
    import oss2

    bucket, kwargs = _oss2_bucket_and_kwargs(args)
    return lambda: oss2.resumable_download(bucket, args.key, args.dest, **kwargs)


def prepare_objget_resumable(args: argparse.Namespace) -> Callable[[], None]:
    import objget

    bucket, kwargs = _oss2_bucket_and_kwargs(args)
    return lambda: objget.resumable_download(bucket, args.key, args.dest, **kwargs)


def prepare_objget_lib(args: argparse.Namespace) -> Callable[[], None]:
    import objget

    options: dict[str, Any] = {}
    if args.concurrency:
        options["max_workers"] = args.concurrency
    if args.ca_bundle:
        options["ca_bundle"] = args.ca_bundle
    config = objget.DownloadConfig(**options)
    return lambda: _discard(objget.download(args.url, args.dest, config=config))


def _discard(_: object) -> None:
    return None


def _no_sync(fd: int) -> None:
    return None


def prepare_boto3_many(args: argparse.Namespace) -> Callable[[], None]:
    with open(args.keys) as f:
        keys = [line.strip() for line in f if line.strip()]
    threads = args.concurrency or 1
    client = _boto3_client(args, threads)
    config = _transfer_config(None)

    def one(key: str) -> None:
        client.download_file(
            args.bucket, key, os.path.join(args.dest, key.rsplit("/", 1)[-1]), Config=config
        )

    def run() -> None:
        if threads == 1:
            for key in keys:
                one(key)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for fut in [pool.submit(one, k) for k in keys]:
                fut.result(timeout=600)

    return run


MODES: dict[str, Callable[[argparse.Namespace], Callable[[], None]]] = {
    "boto3": prepare_boto3,
    "crt": prepare_crt,
    "oss2": prepare_oss2,
    "objget-resumable": prepare_objget_resumable,
    "objget-lib": prepare_objget_lib,
    "boto3-many": prepare_boto3_many,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--endpoint")
    p.add_argument("--url")
    p.add_argument("--bucket")
    p.add_argument("--key")
    p.add_argument("--keys")
    p.add_argument("--dest", required=True)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--part-size", type=int)
    p.add_argument("--store")
    p.add_argument("--ca-bundle")
    p.add_argument("--no-sync", action="store_true", help="os.fsync/os.fdatasync as no-ops")
    p.add_argument("--access-key", default=os.environ.get("BENCH_ACCESS_KEY", "bench"))
    p.add_argument("--secret-key", default=os.environ.get("BENCH_SECRET_KEY", "bench"))
    args = p.parse_args(argv)
    if args.no_sync:  # what durability costs: the same download, nothing waits for the disk
        os.fsync = os.fdatasync = _no_sync
    run = MODES[args.mode](args)
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "mode": args.mode}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
