"""CLI options shared with other tools' spellings: `--skip-existing` (sync-like re-runs),
`-H/--header` (curl), `--request-payer requester` (aws-cli, the bare flag still accepted),
`--checksum-file SHA256SUMS` (what `sha256sum -c` reads), `--proxy` / `--noproxy` (curl).

Kept out of `cli.py` so that module stays about the command's flow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ._args import UsageError, existing_file

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._args import Parser

__all__ = [
    "net_options",
    "read_headers",
    "resolve_checksum",
    "sum_options",
    "sync_options",
]


def sync_options(p: Parser) -> None:
    """`--skip-existing` and `-H/--header` (`skip_existing`, `header`)."""
    p.add(
        "--skip-existing",
        help="Do not download when DEST already has the object's size and its Last-Modified "
        "as mtime (objget sets that mtime after every download): sync-like re-runs.",
    )
    p.add(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="HTTP(S) sources: send this header with every request (repeatable; @FILE reads "
        "one per line, keeping secrets out of the command line). Credential-like values "
        "never appear in logs.",
    )


def read_headers(values: Sequence[str], source: str, *, batch_manifest: bool) -> dict[str, str]:
    """The `--header` values as a dict; a usage error for oss:// and s3:// sources (signed
    requests) or a malformed header (the message never quotes a value)."""
    if not values:
        return {}
    scheme = source.partition("://")[0].lower() if "://" in source else ""
    if not batch_manifest and scheme not in ("http", "https"):
        raise UsageError(
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
                raise UsageError(f"--header: {exc}") from None
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
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror}") from None
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def net_options(p: Parser) -> None:
    """TLS trust and proxies: `--ca-bundle`, `-k/--insecure`, and curl's `--proxy URL` and
    `--noproxy LIST` (`ca_bundle`, `no_verify_tls`, `proxy`, `noproxy`)."""
    p.add(
        "--ca-bundle",
        metavar="FILE",
        convert=existing_file,
        help="CA certificates (PEM) to trust for HTTPS (default: the system store, or "
        "SSL_CERT_FILE / SSL_CERT_DIR; AWS_CA_BUNDLE for s3://).",
    )
    p.add(
        "-k",
        "--insecure",
        "--no-verify-tls",
        dest="no_verify_tls",
        help="Do not verify TLS certificates (insecure; a warning is printed every time).",
    )
    p.add(
        "--proxy",
        metavar="URL",
        convert=_read_proxy,
        help="Forward proxy for every request, http://[USER:PASSWORD@]HOST[:PORT]; '' for "
        "none. Replaces http_proxy/https_proxy/all_proxy. @FILE reads the URL from a file, "
        "keeping a password out of the command line; it never appears in output.",
    )
    p.add(
        "--noproxy",
        metavar="LIST",
        help="Hosts that bypass the proxy: names (a name covers its subdomains), IPs, CIDR "
        "blocks, `*` for all; comma-separated. Replaces NO_PROXY.",
    )


def _read_proxy(value: str) -> str:
    """The `--proxy` value; `@FILE` gives the first line of FILE."""
    if not value.startswith("@"):
        return value
    lines = _lines(value, option="--proxy")
    return lines[0].strip() if lines else ""


def sum_options(p: Parser) -> None:
    """`--checksum sha256:HEX` and `--checksum-file SUMS` (`checksum`, `checksum_file`)."""
    p.add("--checksum", metavar="sha256:HEX", help="Verify the whole file's SHA-256.")
    p.add(
        "--checksum-file",
        metavar="SHA256SUMS",
        convert=existing_file,
        help="Check against a SHA-256 list as sha256sum writes it (`HEX  NAME`, or `SHA256 "
        "(NAME) = HEX`): the entry named like DEST (else like the object); in a batch every "
        "listed path below the destination directory.",
    )


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
        raise UsageError("give --checksum or --checksum-file, not both")
    from .._sumsfile import entry_for, read_sums

    try:
        sums = read_sums(checksum_file)
    except OSError as exc:
        msg = f"--checksum-file: cannot read {checksum_file}: {exc.strerror}"
        raise UsageError(msg) from None
    except ValueError as exc:
        raise UsageError(f"--checksum-file: {exc}") from None
    if batch:
        return None, sums
    from ..engine._downloader import dest_path

    try:
        names = [os.path.basename(dest_path(source, d)) for d in (dest, None)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    found = entry_for(sums, names)
    if found is None:
        tried = " or ".join(repr(n) for n in dict.fromkeys(names))
        raise UsageError(f"--checksum-file: {checksum_file} lists no entry named {tried}")
    return f"sha256:{found[1]}", None
