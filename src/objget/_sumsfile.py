"""PURE: a checksum list as `sha256sum` writes it (`SHA256SUMS`), for `--checksum-file`.

Accepted lines (blank lines and `#` comments are skipped):

- GNU coreutils: `<hex>  <name>` (text mode) or `<hex> *<name>` (binary mode); a line that
  starts with `\\` has `\\\\` and `\\n` escapes in its name (how `sha256sum` writes a name with
  a backslash or a newline).
- BSD / `sha256sum --tag`: `SHA256 (<name>) = <hex>`.

Only SHA-256 is taken (the digest `--checksum` and a manifest's `sha256` give too); a line with
a digest of another length or tag is an error, as is a name listed twice with two values.
Names are compared as relative paths: a leading `./` is dropped.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping

__all__ = ["entry_for", "parse_sums", "read_sums"]

_GNU = re.compile(r"^(\\?)([0-9A-Fa-f]+) ([ *])(.+)$")
_BSD = re.compile(r"^([A-Za-z0-9-]+) \((.+)\) = ([0-9A-Fa-f]+)$")
_MAX_BYTES = 64 * 1024 * 1024


def parse_sums(text: str, *, where: str = "the checksum file") -> dict[str, str]:
    """name -> lowercase SHA-256 hex; ValueError naming the line for anything else."""
    sums: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        bsd = _BSD.match(line)
        gnu = None if bsd else _GNU.match(line)
        if bsd is not None:
            tag, name, digest = bsd.group(1).upper(), bsd.group(2), bsd.group(3)
            if tag not in ("SHA256", "SHA2-256"):
                raise ValueError(f"{where}:{number}: {tag} sums are not supported (SHA256 only)")
        elif gnu is not None:
            digest, name = gnu.group(2), gnu.group(4)
            if gnu.group(1):
                name = _unescape(name, f"{where}:{number}")
        else:
            raise ValueError(f"{where}:{number}: not a `HEX  NAME` or `SHA256 (NAME) = HEX` line")
        if len(digest) != 64:
            raise ValueError(
                f"{where}:{number}: a {len(digest) * 4}-bit digest; only SHA-256 (64 hex "
                "digits) is supported"
            )
        key = normalize(name)
        if sums.get(key, digest.lower()) != digest.lower():
            raise ValueError(f"{where}:{number}: {name!r} is listed twice with different sums")
        sums[key] = digest.lower()
    return sums


def read_sums(path: str) -> dict[str, str]:
    """`parse_sums` of a file (UTF-8, at most 64 MiB); OSError when it cannot be read."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read(_MAX_BYTES + 1)
    if len(text) > _MAX_BYTES:
        raise ValueError(f"{path}: larger than 64 MiB")
    return parse_sums(text, where=path)


def normalize(name: str) -> str:
    """The relative path a listed name stands for (`./a//b` -> `a/b`)."""
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath(name) if name else name


def entry_for(sums: Mapping[str, str], names: Iterable[str]) -> tuple[str, str] | None:
    """The first of `names` (e.g. DEST's basename, then the object key's) that is listed, with
    its digest; None when none is."""
    for name in names:
        key = normalize(name)
        if key and key in sums:
            return key, sums[key]
    return None


def _unescape(name: str, where: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            nxt = name[i + 1 : i + 2]
            if nxt == "\\":
                out.append("\\")
            elif nxt == "n":
                out.append("\n")
            else:
                raise ValueError(f"{where}: bad escape in name {name!r}")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
