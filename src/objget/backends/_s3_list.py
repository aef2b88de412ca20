"""ListObjectsV2 for S3 (and, through the shared page parser, OSS): request parameters, the
XML page parser and the pagination loop.

The transport is a callable `send(params) -> bytes` that signs and sends one bucket-level GET
and returns the body (or raises objget's error for a failure), so this module stays free of
sockets and is tested on bytes. Keys are requested URL-encoded (`encoding-type=url`): XML 1.0
cannot carry every character a key may hold.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote_plus

from .._exceptions import RemoteError

__all__ = ["ListPage", "ListedObject", "list_pages", "parse_list_page"]

PAGE_SIZE = 1000
# The first page asks for fewer keys: the downloads start on its objects, and a store answers
# and objget parses 100 keys in a tenth of the time of 1,000 (SeaweedFS on loopback: 2-6 ms
# against 13-17 ms to answer, and ~2 ms against ~20 ms of parsing here)
FIRST_PAGE_SIZE = 100
MAX_PAGE_BYTES = 64 * 1024 * 1024


class ListedObject(NamedTuple):
    """One object of a listing: its key, size in bytes, ETag (as the store quotes it) and
    LastModified (ISO 8601, as the listing writes it)."""

    key: str
    size: int
    etag: str | None
    last_modified: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ListPage:
    objects: tuple[ListedObject, ...]
    truncated: bool
    next_token: str | None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child_text(node: ET.Element, name: str) -> str | None:
    for child in node:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def parse_list_page(
    xml: bytes,
    *,
    decode_key: Callable[[str], str] = unquote_plus,
    decode_token: Callable[[str], str] | None = None,
) -> ListPage:
    """One `ListBucketResult` page (S3 namespace or none, as OSS sends it).

    `decode_key` undoes `encoding-type=url` on keys (S3: form encoding, `+` is a space; OSS:
    percent encoding); it is applied only when the page says `EncodingType` is `url`.
    `decode_token` likewise for `NextContinuationToken` (OSS encodes it, S3 does not).
    ValueError when the bytes are not such a page.
    """
    try:
        root = ET.fromstring(xml)  # noqa: S314 - a bounded answer from the store we talk to
    except ET.ParseError as exc:
        raise ValueError(f"the listing is not XML: {exc}") from None
    if _local(root.tag) != "ListBucketResult":
        raise ValueError(f"the listing is a <{_local(root.tag)}>, not a <ListBucketResult>")
    encoded = (_child_text(root, "EncodingType") or "").lower() == "url"
    objects: list[ListedObject] = []
    for node in root:
        if _local(node.tag) != "Contents":
            continue
        key = _child_text(node, "Key")
        size_text = (_child_text(node, "Size") or "").strip()
        if key is None or not (size_text.isascii() and size_text.isdigit()):
            raise ValueError("a listed object has no key or no valid size")
        etag = _child_text(node, "ETag")
        modified = (_child_text(node, "LastModified") or "").strip() or None
        objects.append(
            ListedObject(
                key=decode_key(key) if encoded else key,
                size=int(size_text),
                etag=etag.strip() or None if etag is not None else None,
                last_modified=modified,
            )
        )
    truncated = (_child_text(root, "IsTruncated") or "").strip().lower() == "true"
    token = _child_text(root, "NextContinuationToken") or None
    if token is not None and encoded and decode_token is not None:
        token = decode_token(token)
    return ListPage(objects=tuple(objects), truncated=truncated, next_token=token)


def list_pages(
    send: Callable[[dict[str, str]], bytes],
    prefix: str,
    *,
    start_after: str | None = None,
    source: str,
    parse: Callable[[bytes], ListPage] = parse_list_page,
    page_size: int = PAGE_SIZE,
) -> Iterator[ListedObject]:
    """Every object under `prefix` (after `start_after`), page by page, in key order (the
    first page at most FIRST_PAGE_SIZE keys, the others `page_size`).

    A store that claims more pages without a new continuation token, or hands out the same
    token twice, is a broken listing: RemoteError rather than an endless loop.
    """
    token: str | None = None
    seen: set[str] = set()
    while True:
        params = {
            "list-type": "2",
            "prefix": prefix,
            "max-keys": str(page_size if token else min(page_size, FIRST_PAGE_SIZE)),
            "encoding-type": "url",
        }
        if token is not None:
            params["continuation-token"] = token
        elif start_after:
            params["start-after"] = start_after
        raw = send(params)
        try:
            page = parse(raw)
        except ValueError as exc:
            raise RemoteError(f"{source}: unusable listing answer: {exc}", source=source) from exc
        yield from page.objects
        if not page.truncated:
            return
        token = page.next_token
        if not token or token in seen:
            raise RemoteError(
                f"{source}: the listing is truncated but has no new continuation token",
                source=source,
            )
        seen.add(token)
