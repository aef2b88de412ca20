"""The `objget` command. The only module (with `_console.py`) that prints.

Exit codes: 0 ok, 2 usage, 3 remote answer, 4 integrity, 5 network/retries, 6 local I/O,
7 locked by another run, 8 batch finished but some objects failed, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .._exit import EXIT, HANDLED, describe, exit_code
from ._args import Parser, UsageError, choice, existing_file, int_range, number, report
from ._cli_options import net_options, read_headers, resolve_checksum, sum_options, sync_options
from ._console import ProgressBar, Stderr, parse_size, summary
from ._process import exit_now, pause_gc, resume_gc

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from types import SimpleNamespace

    from ..engine._downloader import ProgressListener

__all__ = ["EXIT", "main", "run"]

DESCRIPTION = """\
  Download SOURCE (an http://, https://, oss:// or s3:// URL) to DEST.

  DEST may be a file or an existing directory (default: the current one), or - to
  stream the object to stdout in order (a stream cannot resume). The download runs
  in parallel ranged parts, survives any interruption (run the same command again
  to resume) and replaces DEST only when the bytes are complete and verified.
"""

EPILOG = """\
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

  Interrupted (Ctrl-C, kill, crash, power cut)? Run the same command again: only the
  missing bytes are fetched. Temp data lives in DEST.objget-part, progress in DEST.objget-ckpt
  (durable, once a second) and DEST.objget-ckpt-live (exact after a kill).

  Exit codes: 0 ok, 2 usage, 3 remote error (404, 403, changed), 4 integrity,
  5 network/retries exhausted, 6 local I/O (disk full...), 7 locked by another run,
  8 batch done but some objects failed, 130 interrupted.

  Batches (see the batch docs):
    objget --recursive s3://bucket/prefix/ DIR/       # a whole prefix
    objget --manifest urls.jsonl DIR/                 # URL lines or JSON lines
    objget --recursive --ray auto s3://bucket/p/ DIR/ # on a Ray cluster
"""


def _size(value: str) -> int:
    return parse_size(value)  # its ValueError says what a size looks like


def parser() -> Parser:
    """The command's options, in the help's order."""
    p = Parser(description=DESCRIPTION, epilog=EPILOG)
    p.add(
        "-j",
        "--max-workers",
        metavar="N",
        convert=int_range(1, 256),
        help="Most parallel connections, 1-256 (default 32; objget adds streams only while "
        "they make the download faster).",
    )
    p.add(
        "--part-size",
        metavar="SIZE",
        convert=_size,
        help="Bytes per ranged request, e.g. 64M (default: from the object size).",
    )
    p.add("--limit-rate", metavar="RATE", convert=_size,
          help="Cap the whole download, e.g. 20M (bytes/s).")  # fmt: skip
    p.add("--restart", help="Ignore any earlier progress and start over.")
    sync_options(p)
    sum_options(p)
    net_options(p)
    p.add(
        "--retries",
        metavar="N",
        convert=int_range(1, 100),
        default=8,
        help="Attempts per part (and for the first request) before giving up, 1-100 (default 8).",
    )
    p.add("--connect-timeout", metavar="SECONDS", convert=number(float), default=10.0,
          help="Seconds to wait for a connection (default 10).")  # fmt: skip
    p.add(
        "--stall-timeout",
        metavar="SECONDS",
        convert=number(float),
        default=30.0,
        help="Seconds without a byte before a connection is dropped and its part resumed "
        "(default 30).",
    )
    p.add(
        "--endpoint",
        "--endpoint-url",
        metavar="URL",
        dest="endpoint",
        help="OSS endpoint (else OSS_ENDPOINT) or S3 endpoint URL (else AWS_ENDPOINT_URL).",
    )
    p.add("--region", metavar="REGION", help="OSS region (V4 signing) or S3 region.")
    p.add(
        "--profile",
        metavar="NAME",
        help="S3: named profile from the AWS config files. OSS: profile of ossutil's config "
        "file (~/.ossutilconfig).",
    )
    p.add("--addressing-style", metavar="[auto|path|virtual]", default="auto",
          convert=choice("auto", "path", "virtual"),
          help="S3: bucket in the path or the host name (default auto).")  # fmt: skip
    p.add("--no-sign-request", help="Anonymous access (public buckets).")
    p.add("--signature-version", metavar="[1|4]", convert=choice("1", "4"), default="4",
          help="OSS signature version (default 4).")  # fmt: skip
    p.add("--version-id", metavar="ID", help="Download this version of the object.")
    p.add(
        "--request-payer",
        metavar="[requester]",
        convert=choice("requester"),
        optional="requester",
        only="requester",
        help="`requester`: the requester pays for the transfer (the bare flag works too).",
    )
    p.add("--oss-traffic-limit", metavar="BITS", convert=number(int),
          help="OSS x-oss-traffic-limit per request, 819200-838860800 bit/s.")  # fmt: skip
    p.add("--sse-c-key-file", metavar="FILE", convert=existing_file,
          help="S3: file holding the 32-byte SSE-C key (raw or base64).")  # fmt: skip
    p.add("--verify", metavar="[md5]", convert=choice("md5"),
          help="S3: also check a single-part object's MD5 ETag.")  # fmt: skip
    p.add("-r", "--recursive", help="Batch: download every object under SOURCE.")
    p.add("--manifest", metavar="FILE", convert=existing_file, help="Batch: URL list.")
    p.add("--include", metavar="GLOB", action="append", default=[],
          help="Batch: only matching paths.")  # fmt: skip
    p.add("--exclude", metavar="GLOB", action="append", default=[],
          help="Batch: skip matching paths.")  # fmt: skip
    p.add("--dry-run", help="Batch: list what would be downloaded.")
    p.add("--ray", metavar="ADDRESS", dest="ray_address", optional="local",
          help="Batch on Ray: `auto`, an address, or no value for a local instance.")  # fmt: skip
    p.add("--json", dest="as_json", help="Print the result as JSON (to stderr if DEST is -).")
    p.add("-q", "--quiet", help="No progress bar or summary.")
    p.add("-v", "--verbose", action="count", default=0, help="Log what happens (-vv for debug).")
    p.add("--version", help="Show the version and exit.")
    p.add("-h", "--help", help="Show this message and exit.")
    return p


def run(argv: Sequence[str]) -> int:
    """Run the command on `argv` (the words after the program's name): its exit code. Prints
    (help, results, errors); never exits the process."""
    try:
        return _run(argv)
    except UsageError as exc:
        return report(exc)
    except SystemExit as exc:  # the command's own exits (`Stderr.fail`, a batch's 8)
        return _status(exc.code)


def _status(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def _run(argv: Sequence[str]) -> int:
    p = parser()
    instruction = os.environ.get("_OBJGET_COMPLETE")
    if instruction:  # the shell asks for a completion script or for completions
        from ._complete import complete

        return complete(p, instruction)
    ns, words = p.parse(argv)
    if ns.help:
        print(p.help(), end="", flush=True)
        return EXIT["ok"]
    if ns.version:
        print(f"objget, version {_version()}", flush=True)
        return EXIT["ok"]
    if not words:
        raise UsageError("Missing argument 'SOURCE'.")
    if len(words) > 2:
        extra = words[2:]
        plural = "s" if len(extra) > 1 else ""
        raise UsageError(f"Got unexpected extra argument{plural} ({' '.join(extra)})")
    _download(ns, words[0], words[1] if len(words) > 1 else None)
    return EXIT["ok"]


def _version() -> str:
    """The installed package's version (its metadata, as click read it), else the source's."""
    from importlib.metadata import PackageNotFoundError, version  # loads email: only here

    try:
        return version("objget")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def _download(ns: SimpleNamespace, source: str, dest: str | None) -> None:
    """Download SOURCE to DEST as the options say: one object, a stream or a batch."""
    err = Stderr()  # rich is imported only if something is printed
    # the engine, the backends and urllib3 load only now: --help, --version and the usage
    # errors never pay for them (tests/unit/test_import_cost.py)
    from .._config import DownloadConfig, RetryPolicy, Timeouts
    from ..backends import BackendOptions
    from ..engine._downloader import Downloader

    resume_gc()
    if ns.verbose:
        import logging  # only with -v: the library logs through a NullHandler otherwise

        from ..backends._redact import redacting_handler

        logging.basicConfig(
            format="objget: %(message)s",
            handlers=[redacting_handler(sys.stderr)],  # every record of every logger
            level=logging.DEBUG if ns.verbose > 1 else logging.INFO,
        )
    manifest: str | None = ns.manifest
    ray_address: str | None = ns.ray_address
    batch = bool(ns.recursive or manifest or ray_address is not None)
    checksum, sums = resolve_checksum(ns.checksum, ns.checksum_file, source, dest, batch=batch)
    ca_bundle: str | None = ns.ca_bundle
    if ca_bundle is None and source.lower().startswith("s3://"):
        ca_bundle = os.environ.get("AWS_CA_BUNDLE") or None  # as the AWS tools do
    try:
        config = DownloadConfig(
            max_workers=ns.max_workers or 32,
            part_size=ns.part_size,
            limit_rate=ns.limit_rate,
            restart=ns.restart,
            skip_existing=ns.skip_existing,
            checksum=checksum,
            ca_bundle=ca_bundle,
            verify_tls=not ns.no_verify_tls,
            timeouts=Timeouts(connect=ns.connect_timeout, read=ns.stall_timeout),
            retry=RetryPolicy(attempts=ns.retries),
            proxy=ns.proxy,
            no_proxy=ns.noproxy,
        )
        options = BackendOptions(
            endpoint=ns.endpoint,
            region=ns.region,
            profile=ns.profile,
            addressing_style=ns.addressing_style,
            anonymous=ns.no_sign_request,
            signature_version=ns.signature_version,
            request_payer=ns.request_payer == "requester",
            oss_traffic_limit=ns.oss_traffic_limit,
            sse_c_key=_read_key(ns.sse_c_key_file) if ns.sse_c_key_file else None,
            verify_md5=ns.verify == "md5",
            headers=read_headers(ns.header, source, batch_manifest=manifest is not None),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ns.no_verify_tls:
        err.print(
            ("warning: ", "bold yellow"),
            "TLS certificates are NOT verified (--no-verify-tls): anyone on the path can "
            "read or change the download",
        )
    as_json: bool = ns.as_json
    quiet: bool = ns.quiet
    version_id: str | None = ns.version_id
    if dest == "-":  # to stdout, in order: see _cli_stream.py
        from ._cli_stream import run_stream

        run_stream(err, source, config, options, version_id, as_json, quiet, batch)
    if batch:
        from ._cli_batch import BatchJob, run_batch

        job = BatchJob(
            source=source, dest=dest, recursive=ns.recursive, manifest=manifest,
            include=tuple(ns.include), exclude=tuple(ns.exclude), dry_run=ns.dry_run,
            ray_address=ray_address, config=config, options=options, sums=sums,
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

        print(json.dumps(result.to_dict(), indent=2), flush=True)
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
    """Console-script entry point: `run(sys.argv[1:])`, then a fast exit (`_process.py`)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    pause_gc()
    try:
        code = run(sys.argv[1:])
    except KeyboardInterrupt:  # before the download's own handling (which exits 130 too)
        print("objget: interrupted", file=sys.stderr)
        code = EXIT["interrupted"]
    except BrokenPipeError:  # `objget --help | head -1`: the reader left, quietly
        _silence_stdout()
        code = 1
    exit_now(code)


def _silence_stdout() -> None:
    """What is left in stdout's buffer goes nowhere (the pipe's reader is gone)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):
        pass
    finally:
        os.close(devnull)
