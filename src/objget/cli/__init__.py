"""The `objget` command. The only module (with `_console.py`) that prints.

Exit codes: 0 ok, 2 usage, 3 remote answer, 4 integrity, 5 network/retries, 6 local I/O,
7 locked by another run, 8 batch finished but some objects failed, 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import click

from .._exit import EXIT, HANDLED, describe, exit_code
from ._cli_options import (
    Command,
    net_options,
    read_headers,
    resolve_checksum,
    sum_options,
    sync_options,
)
from ._console import ProgressBar, Stderr, parse_size, summary
from ._process import exit_now, pause_gc, resume_gc

if TYPE_CHECKING:
    from ..engine._downloader import ProgressListener

__all__ = ["EXIT", "main"]

EPILOG = """\b
Examples:
  objget https://example.com/big.iso                 # to ./big.iso
  objget https://example.com/big.iso downloads/      # into a directory
  objget -j 32 --part-size 64M URL big.iso           # at most 32 streams, 64 MiB parts
  objget --limit-rate 20M URL big.iso                # 20 MiB/s for the whole download
  objget --checksum sha256:9f86d0... URL file        # verify the whole file
  objget --checksum-file SHA256SUMS URL file         # ... against its line in a sums file
  objget --json URL file                             # print the result as JSON
  objget s3://bucket/big.tar - | tar x               # to stdout, in order; cannot resume
  objget --skip-existing URL file                    # nothing to do if file is current
  objget -H 'Authorization: Bearer T' URL file       # extra request header (http/https)

\b
Interrupted (Ctrl-C, kill, crash, power cut)? Run the same command again: only the
missing bytes are fetched. Temp data lives in DEST.objget-part, progress in DEST.objget-ckpt
(durable, once a second) and DEST.objget-ckpt-live (exact after a kill).

\b
Exit codes: 0 ok, 2 usage, 3 remote error (404, 403, changed), 4 integrity,
5 network/retries exhausted, 6 local I/O (disk full...), 7 locked by another run,
8 batch done but some objects failed, 130 interrupted.

\b
Batches (see the batch docs):
  objget --recursive s3://bucket/prefix/ DIR/       # a whole prefix
  objget --manifest urls.jsonl DIR/                 # URL lines or JSON lines
  objget --recursive --ray auto s3://bucket/p/ DIR/ # on a Ray cluster
"""


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(cls=Command, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source")
@click.argument("dest", required=False)
@click.option(
    "-j",
    "--max-workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Most parallel connections (default 32; objget adds streams only while "
    "they make the download faster).",
)
@click.option(
    "--part-size",
    callback=_size,
    help="Bytes per ranged request, e.g. 64M (default: from the object size).",
)
@click.option("--limit-rate", callback=_size, help="Cap the whole download, e.g. 20M (bytes/s).")
@click.option("--restart", is_flag=True, help="Ignore any earlier progress and start over.")
@sync_options
@sum_options
@net_options
@click.option(
    "--retries",
    type=click.IntRange(1, 100),
    default=8,
    show_default=True,
    help="Attempts per part (and for the first request) before giving up.",
)
@click.option(
    "--connect-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for a connection.",
)
@click.option(
    "--stall-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds without a byte before a connection is dropped and its part resumed.",
)
@click.option(
    "--endpoint",
    "--endpoint-url",
    "endpoint",
    metavar="URL",
    help="OSS endpoint (else OSS_ENDPOINT) or S3 endpoint URL (else AWS_ENDPOINT_URL).",
)
@click.option("--region", help="OSS region (V4 signing) or S3 region.")
@click.option(
    "--profile",
    help="S3: named profile from the AWS config files. OSS: profile of ossutil's config file "
    "(~/.ossutilconfig).",
)
@click.option(
    "--addressing-style",
    type=click.Choice(["auto", "path", "virtual"]),
    default="auto",
    show_default=True,
    help="S3: bucket in the path or the host name.",
)
@click.option("--no-sign-request", is_flag=True, help="Anonymous access (public buckets).")
@click.option(
    "--signature-version",
    type=click.Choice(["1", "4"]),
    default="4",
    show_default=True,
    help="OSS signature version.",
)
@click.option("--version-id", help="Download this version of the object.")
@click.option(
    "--request-payer",
    type=click.Choice(["requester"]),
    help="`requester`: the requester pays for the transfer (the bare flag works too).",
)
@click.option(
    "--oss-traffic-limit",
    type=int,
    metavar="BITS",
    help="OSS x-oss-traffic-limit per request, 819200-838860800 bit/s.",
)
@click.option(
    "--sse-c-key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="S3: file holding the 32-byte SSE-C key (raw or base64).",
)
@click.option(
    "--verify",
    "verify",
    type=click.Choice(["md5"]),
    default=None,
    help="S3: also check a single-part object's MD5 ETag.",
)
@click.option("-r", "--recursive", is_flag=True, help="Batch: download every object under SOURCE.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), help="Batch: URL list.")
@click.option("--include", multiple=True, metavar="GLOB", help="Batch: only matching paths.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Batch: skip matching paths.")
@click.option("--dry-run", is_flag=True, help="Batch: list what would be downloaded.")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", metavar="ADDRESS",
    help="Batch on Ray: `auto`, an address, or no value for a local instance.",
)  # fmt: skip
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (to stderr if DEST is -)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("-v", "--verbose", count=True, help="Log what happens (-vv for debug).")
@click.version_option(package_name="objget")
def command(
    source: str,
    dest: str | None,
    max_workers: int | None,
    part_size: int | None,
    limit_rate: int | None,
    restart: bool,
    skip_existing: bool,
    header: tuple[str, ...],
    checksum: str | None,
    checksum_file: str | None,
    ca_bundle: str | None,
    no_verify_tls: bool,
    proxy: str | None,
    noproxy: str | None,
    retries: int,
    connect_timeout: float,
    stall_timeout: float,
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    addressing_style: str,
    no_sign_request: bool,
    signature_version: str,
    version_id: str | None,
    request_payer: str | None,
    oss_traffic_limit: int | None,
    sse_c_key_file: str | None,
    verify: str | None,
    recursive: bool,
    manifest: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    dry_run: bool,
    ray_address: str | None,
    as_json: bool,
    quiet: bool,
    verbose: int,
) -> None:
    """Download SOURCE (an http://, https://, oss:// or s3:// URL) to DEST.

    DEST may be a file or an existing directory (default: the current one), or - to
    stream the object to stdout in order (a stream cannot resume). The download runs in
    parallel ranged parts, survives any interruption (run the same command again to
    resume) and replaces DEST only when the bytes are complete and verified.
    """
    err = Stderr()  # rich is imported only if something is printed
    # the engine, the backends and urllib3 load only now: --help, --version and click's usage
    # errors never pay for them (tests/unit/test_import_cost.py)
    from .._config import DownloadConfig, RetryPolicy, Timeouts
    from ..backends import BackendOptions
    from ..engine._downloader import Downloader

    resume_gc()
    if verbose:
        from ..backends._redact import redacting_handler

        logging.basicConfig(
            format="objget: %(message)s",
            handlers=[redacting_handler(sys.stderr)],  # every record of every logger
            level=logging.DEBUG if verbose > 1 else logging.INFO,
        )
    batch = bool(recursive or manifest or ray_address is not None)
    checksum, sums = resolve_checksum(checksum, checksum_file, source, dest, batch=batch)
    if ca_bundle is None and source.lower().startswith("s3://"):
        ca_bundle = os.environ.get("AWS_CA_BUNDLE") or None  # as the AWS tools do
    try:
        config = DownloadConfig(
            max_workers=max_workers or 32,
            part_size=part_size,
            limit_rate=limit_rate,
            restart=restart,
            skip_existing=skip_existing,
            checksum=checksum,
            ca_bundle=ca_bundle,
            verify_tls=not no_verify_tls,
            timeouts=Timeouts(connect=connect_timeout, read=stall_timeout),
            retry=RetryPolicy(attempts=retries),
            proxy=proxy,
            no_proxy=noproxy,
        )
        options = BackendOptions(
            endpoint=endpoint,
            region=region,
            profile=profile,
            addressing_style=addressing_style,
            anonymous=no_sign_request,
            signature_version=signature_version,
            request_payer=request_payer == "requester",
            oss_traffic_limit=oss_traffic_limit,
            sse_c_key=_read_key(sse_c_key_file) if sse_c_key_file else None,
            verify_md5=verify == "md5",
            headers=read_headers(header, source, batch_manifest=manifest is not None),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if no_verify_tls:
        err.print(
            ("warning: ", "bold yellow"),
            "TLS certificates are NOT verified (--no-verify-tls): anyone on the path can "
            "read or change the download",
        )
    if dest == "-":  # to stdout, in order: see _cli_stream.py
        from ._cli_stream import run_stream

        run_stream(err, source, config, options, version_id, as_json, quiet, batch)
    if batch:
        from ._cli_batch import BatchJob, run_batch

        job = BatchJob(
            source=source, dest=dest, recursive=recursive, manifest=manifest, include=include,
            exclude=exclude, dry_run=dry_run, ray_address=ray_address, config=config,
            options=options, sums=sums,
        )  # fmt: skip
        run_batch(err, job, as_json=as_json, quiet=quiet)
        return
    try:
        with Downloader(config=config, options=options) as dl:
            if quiet or as_json:
                result = dl.download(source, dest, version_id=version_id)
            else:
                with ProgressBar(err.console, "objget") as bar:
                    listener: ProgressListener = bar
                    result = dl.download(source, dest, on_progress=listener, version_id=version_id)
    except HANDLED as exc:  # one table for every command form: _exit.py
        err.fail(describe(exc), exit_code(exc))
    if result.restarted and not quiet:
        err.print(("note: ", "yellow"), f"started over: {result.restarted}")
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        err.print(summary(result), highlight=False)


def _read_key(path: str) -> bytes:
    """An SSE-C key file: 32 raw bytes, or their base64 form."""
    import base64

    with open(path, "rb") as f:
        raw = f.read(4096)
    if len(raw) == 32:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError:
        raise ValueError(f"{path}: not a 32-byte key or its base64 form") from None
    if len(key) != 32:
        raise ValueError(f"{path}: the key must be 32 bytes (AES-256), got {len(key)}")
    return key


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    pause_gc()
    try:
        command.main(prog_name="objget")
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)
