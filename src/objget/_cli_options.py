"""CLI options shared with other tools' spellings: `--skip-existing` (sync-like re-runs),
`-H/--header` (curl), `--request-payer requester` (aws-cli, the bare flag still accepted),
and the SSE-C key file.

Kept out of `cli.py` so that module stays about the command's flow.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from .backends._headers import parse_header

__all__ = ["Command", "read_headers", "read_key", "sync_options"]

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
    out: dict[str, str] = {}
    for value in values:
        for line in _lines(value):
            try:
                name, text = parse_header(line)
            except ValueError as exc:
                raise click.UsageError(f"--header: {exc}") from None
            out[name] = text
    return out


def _lines(value: str) -> list[str]:
    if not value.startswith("@"):
        return [value]
    path = value[1:]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1024 * 1024)
    except OSError as exc:
        raise click.UsageError(f"--header: cannot read {path}: {exc.strerror}") from None
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def read_key(path: str) -> bytes:
    """An SSE-C key file: 32 raw bytes, or their base64 form."""
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
