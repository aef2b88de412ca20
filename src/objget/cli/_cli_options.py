"""CLI options shared with other tools' spellings: `--skip-existing` (sync-like re-runs),
`-H/--header` (curl), `--request-payer requester` (aws-cli, the bare flag still accepted),
`--checksum-file SHA256SUMS` (what `sha256sum -c` reads), `--proxy` / `--noproxy` (curl).

Kept out of `cli.py` so that module stays about the command's flow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

__all__ = [
    "Command",
    "net_options",
    "read_headers",
    "resolve_checksum",
    "sum_options",
    "sync_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class Command(click.Command):
    """The `objget` command: `--request-payer` takes aws-cli's `requester`, and the bare flag
    of earlier versions keeps working (also in front of SOURCE, which it must not swallow)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _request_payer_args(args))


def _request_payer_args(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg == "--request-payer":
            out.append("--request-payer=requester")
            if i + 1 < len(args) and args[i + 1] == "requester":
                i += 1
        else:
            out.append(arg)
        i += 1
    return out


def sync_options(f: F) -> F:
    """`--skip-existing` and `-H/--header` (parameters `skip_existing`, `header`)."""
    f = click.option(
        "-H",
        "--header",
        multiple=True,
        metavar="'NAME: VALUE'",
        help="HTTP(S) sources: send this header with every request (repeatable; @FILE reads "
        "one per line, keeping secrets out of the command line). Credential-like values "
        "never appear in logs.",
    )(f)
    f = click.option(
        "--skip-existing",
        is_flag=True,
        help="Do not download when DEST already has the object's size and its Last-Modified "
        "as mtime (objget sets that mtime after every download): sync-like re-runs.",
    )(f)
    return f


def read_headers(values: Sequence[str], source: str, *, batch_manifest: bool) -> dict[str, str]:
    """The `--header` values as a dict; a usage error for oss:// and s3:// sources (signed
    requests) or a malformed header (the message never quotes a value)."""
    if not values:
        return {}
    scheme = source.partition("://")[0].lower() if "://" in source else ""
    if not batch_manifest and scheme not in ("http", "https"):
        raise click.UsageError(
            "--header applies to http:// and https:// sources only (oss:// and s3:// requests "
            "are signed: use their own options)"
        )
    from ..backends._headers import parse_header  # loads the backends: only with -H

    out: dict[str, str] = {}
    for value in values:
        for line in _lines(value):
            try:
                name, text = parse_header(line)
            except ValueError as exc:
                raise click.UsageError(f"--header: {exc}") from None
            out[name] = text
    return out


def _lines(value: str, *, option: str = "--header") -> list[str]:
    if not value.startswith("@"):
        return [value]
    path = value[1:]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1024 * 1024)
    except OSError as exc:
        raise click.UsageError(f"{option}: cannot read {path}: {exc.strerror}") from None
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def net_options(f: F) -> F:
    """TLS trust and proxies: `--ca-bundle`, `-k/--insecure`, and curl's `--proxy URL` and
    `--noproxy LIST` (parameters `ca_bundle`, `no_verify_tls`, `proxy`, `noproxy`)."""
    f = click.option(
        "--noproxy",
        metavar="LIST",
        help="Hosts that bypass the proxy: names (a name covers its subdomains), IPs, CIDR "
        "blocks, `*` for all; comma-separated. Replaces NO_PROXY.",
    )(f)
    f = click.option(
        "--proxy",
        metavar="URL",
        callback=_read_proxy,
        help="Forward proxy for every request, http://[USER:PASSWORD@]HOST[:PORT]; '' for "
        "none. Replaces http_proxy/https_proxy/all_proxy. @FILE reads the URL from a file, "
        "keeping a password out of the command line; it never appears in output.",
    )(f)
    f = click.option(
        "-k",
        "--insecure",
        "--no-verify-tls",
        "no_verify_tls",
        is_flag=True,
        help="Do not verify TLS certificates (insecure; a warning is printed every time).",
    )(f)
    f = click.option(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False),
        help="CA certificates (PEM) to trust for HTTPS (default: the system store, or "
        "SSL_CERT_FILE / SSL_CERT_DIR; AWS_CA_BUNDLE for s3://).",
    )(f)
    return f


def _read_proxy(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """The `--proxy` value; `@FILE` gives the first line of FILE."""
    if value is None or not value.startswith("@"):
        return value
    lines = _lines(value, option="--proxy")
    return lines[0].strip() if lines else ""


def sum_options(f: F) -> F:
    """`--checksum sha256:HEX` and `--checksum-file SUMS` (parameters `checksum`,
    `checksum_file`)."""
    f = click.option(
        "--checksum-file",
        type=click.Path(exists=True, dir_okay=False),
        metavar="SHA256SUMS",
        help="Check against a SHA-256 list as sha256sum writes it (`HEX  NAME`, or `SHA256 "
        "(NAME) = HEX`): the entry named like DEST (else like the object); in a batch every "
        "listed path below the destination directory.",
    )(f)
    f = click.option("--checksum", metavar="sha256:HEX", help="Verify the whole file's SHA-256.")(f)
    return f


def resolve_checksum(
    checksum: str | None, checksum_file: str | None, source: str, dest: str | None, *, batch: bool
) -> tuple[str | None, dict[str, str] | None]:
    """(`--checksum` for one download, the `--checksum-file` entries for a batch).

    One download takes the entry named like DEST (its base name), else like the object (the
    source's base name); none listed is a usage error, as is an unreadable or malformed file
    or both options at once."""
    if checksum_file is None:
        return checksum, None
    if checksum is not None:
        raise click.UsageError("give --checksum or --checksum-file, not both")
    from .._sumsfile import entry_for, read_sums

    try:
        sums = read_sums(checksum_file)
    except OSError as exc:
        msg = f"--checksum-file: cannot read {checksum_file}: {exc.strerror}"
        raise click.UsageError(msg) from None
    except ValueError as exc:
        raise click.UsageError(f"--checksum-file: {exc}") from None
    if batch:
        return None, sums
    from ..engine._downloader import dest_path

    try:
        names = [os.path.basename(dest_path(source, d)) for d in (dest, None)]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    found = entry_for(sums, names)
    if found is None:
        tried = " or ".join(repr(n) for n in dict.fromkeys(names))
        raise click.UsageError(f"--checksum-file: {checksum_file} lists no entry named {tried}")
    return f"sha256:{found[1]}", None
