"""PURE: what one durable checkpoint records (`Checkpoint`), and its codec. The files (framing,
atomic save, tolerant load) are `_checkpoint`'s, which loads this module at its first save or
load: a download that ends before its first periodic save never builds the record.

A checkpoint records which byte spans of the temp data file are known to be on disk, with a
CRC per span when the backend offers one, the identity of the object they came from, and the
id of the run that created the data file (`run`, a random nonce; the live record of
`_live` names it too, so a live record is only ever read against the checkpoint and the data
file it was written for).

`source` is the source as objget shows it (`Backend.display`: a URL without its query values
or user:password, `oss://bucket/key`, `s3://bucket/key`), so no presigned signature or token
is stored; a checkpoint of another source is resumed only for the same object by a strong
ETag, size and Last-Modified (`_recover.other_source`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._checkpoint import CheckpointInvalid, frame, int_field, parse_spans, unframe
from ._plan import Span

__all__ = ["FORMAT", "VERSION", "Checkpoint", "decode", "encode"]

FORMAT = "objget-checkpoint"
VERSION = 1
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Checkpoint:
    """What one durable save records (see the module doc)."""

    source: str
    identity: dict[str, str | int | None]
    checksum: str | None
    spans: tuple[Span, ...]
    run: str | None = None  # the run that created the data file (None: an older objget's)


def encode(ckpt: Checkpoint) -> bytes:
    body: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "source": ckpt.source,
        "object": ckpt.identity,
        "checksum": ckpt.checksum,
        "spans": [[s.start, s.stop, s.crc] for s in ckpt.spans],
    }
    if ckpt.run is not None:
        body["run"] = ckpt.run
    return frame(body)


def _opt_str(v: object, what: str) -> str | None:
    if v is not None and not isinstance(v, str):
        raise CheckpointInvalid(f"bad {what}")
    return v


def decode(data: bytes) -> Checkpoint:
    """Decode and validate; raises CheckpointInvalid for anything not exactly right."""
    body = unframe(data, FORMAT, VERSION)
    obj = body.get("object")
    if not isinstance(obj, dict):
        raise CheckpointInvalid("bad object identity")
    size = obj.get("size")
    identity: dict[str, str | int | None] = {
        "size": None if size is None else int_field(size, "size"),
        "etag": _opt_str(obj.get("etag"), "etag"),
        "last_modified": _opt_str(obj.get("last_modified"), "last_modified"),
        "version_id": _opt_str(obj.get("version_id"), "version_id"),
    }
    source = body.get("source")
    if not isinstance(source, str):
        raise CheckpointInvalid("bad source")
    checksum = _opt_str(body.get("checksum"), "checksum")
    limit = _MAX_INT if size is None else size
    return Checkpoint(
        source=source,
        identity=identity,
        checksum=checksum,
        spans=parse_spans(body.get("spans"), limit, "spans"),
        run=_opt_str(body.get("run"), "run"),
    )
