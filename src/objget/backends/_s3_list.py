"""ListObjectsV2 for S3 (and, through the shared page parser, OSS): request parameters, the
XML page parser and the pagination loop.

The transport is a callable `send(params) -> bytes` that signs and sends one bucket-level GET
and returns the body (or raises objget's error for a failure), so this module stays free of
sockets and is tested on bytes. Keys are requested URL-encoded (`encoding-type=url`): XML 1.0
cannot carry every character a key may hold.

A page of up to TIGHT_MOST bytes (about a hundred keys) is read by a tight parser of the XML
every store sends (`_s3_page`: elements without attributes but the root's `xmlns`, text with
the predefined entities and character references) while ElementTree is not loaded; anything
else in such a page (a comment, CDATA, a DOCTYPE, an attribute, a prefix, a `\r`, a malformed
or non-UTF-8 page), and every larger page, goes to `xml.etree.ElementTree`, which decides and
says what is wrong. Both give the same page (property tests hold them to it). A batch of a
hundred objects or so then loads neither ElementTree nor expat (~7 M instructions of its
start); a larger one pays that once and has its pages read faster.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote_plus

from .._exceptions import RemoteError

if TYPE_CHECKING:
    import re

__all__ = ["ListPage", "ListedObject", "list_pages", "parse_list_page"]

PAGE_SIZE = 1000
MAX_PAGE_BYTES = 64 * 1024 * 1024
# The tight parser reads a page for ~110 K instructions a key, ElementTree (C) and its walk for
# ~45 K, and ElementTree's import is ~7 M (callgrind): the tight parser reads the pages up to
# this size (~90-170 keys, about where the two costs meet) while ElementTree is not loaded;
# larger ones, and every page once it is, go to ElementTree.
TIGHT_MOST = 32 * 1024


class ListedObject(NamedTuple):
    """One object of a listing: its key, size in bytes, ETag (as the store quotes it) and
    LastModified (ISO 8601, as the listing writes it)."""

    key: str
    size: int
    etag: str | None
    last_modified: str | None = None


class ListPage(NamedTuple):
    objects: tuple[ListedObject, ...]
    truncated: bool
    next_token: str | None


# A child of the root: (local name, text before its first child, for a <Contents> the first
# text of each of its children by local name, else None). What the page is read from.
_Child = tuple[str, str, "dict[str, str] | None"]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _first(children: list[_Child], name: str) -> str | None:
    for local, text, _ in children:
        if local == name:
            return text
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
    children = None
    if len(xml) <= TIGHT_MOST and "xml.etree.ElementTree" not in sys.modules:
        children = _s3_page(xml)
    if children is None:
        children = _tree_page(xml)
    encoded = (_first(children, "EncodingType") or "").lower() == "url"
    objects: list[ListedObject] = []
    for local, _, fields in children:
        if local != "Contents" or fields is None:
            continue
        key = fields.get("Key")
        size_text = (fields.get("Size") or "").strip()
        if key is None or not (size_text.isascii() and size_text.isdigit()):
            raise ValueError("a listed object has no key or no valid size")
        etag = fields.get("ETag")
        modified = (fields.get("LastModified") or "").strip() or None
        objects.append(
            ListedObject(
                key=decode_key(key) if encoded else key,
                size=int(size_text),
                etag=etag.strip() or None if etag is not None else None,
                last_modified=modified,
            )
        )
    truncated = (_first(children, "IsTruncated") or "").strip().lower() == "true"
    token = _first(children, "NextContinuationToken") or None
    if token is not None and encoded and decode_token is not None:
        token = decode_token(token)
    return ListPage(objects=tuple(objects), truncated=truncated, next_token=token)


def _tree_page(xml: bytes) -> list[_Child]:
    """The root's children by ElementTree; ValueError when `xml` is not a ListBucketResult."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)  # noqa: S314 - a bounded answer from the store we talk to
    except ET.ParseError as exc:
        raise ValueError(f"the listing is not XML: {exc}") from None
    if _local(root.tag) != "ListBucketResult":
        raise ValueError(f"the listing is a <{_local(root.tag)}>, not a <ListBucketResult>")
    local: dict[str, str] = {}  # tag -> its local name: a page repeats a dozen tags
    children: list[_Child] = []
    for node in root:
        tag = node.tag
        name = local.get(tag) or local.setdefault(tag, _local(tag))
        fields: dict[str, str] | None = None
        if name == "Contents":
            fields = {}
            for child in node:
                tag = child.tag
                inner = local.get(tag) or local.setdefault(tag, _local(tag))
                if inner not in fields:
                    fields[inner] = child.text or ""
        children.append((name, node.text or "", fields))
    return children


_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_compiled: list[re.Pattern[str]] = []  # the patterns of _s3_page, compiled at the first page
# a tag's text (`/Key`, `Key`, `Key/`) -> (0 start, 1 end, 2 empty; its name); a few dozen
_tags: dict[str, tuple[int, str]] = {}


def _patterns() -> list[re.Pattern[str]]:
    if not _compiled:
        import re

        _compiled.extend((
            # the XML declaration as stores write it (or none), then the root's start tag
            re.compile(r'(?:<\?xml version="1\.0"(?: encoding="(?i:utf-8)")?\?>)?[ \t\n]*'
                       r'<ListBucketResult(?: xmlns="[^"<&]*")?>'),
            # what is between `<` and `>`: a tag without attributes (end, start or empty)
            re.compile(r"(/?)([A-Za-z_][A-Za-z0-9_.\-]*)(/?)"),
            # what a page of ours never holds: characters XML forbids, a CR (XML turns it into
            # LF); nor `]]>` in text, nor an `&` that starts no reference (_s3_page)
            re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\r\ufffe\uffff]"),
            re.compile(r"&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));"),
        ))  # fmt: skip
    return _compiled


def _char(m: re.Match[str]) -> str:
    """The character a reference names."""
    name, dec, hexa = m.groups()
    return _ENTITIES[name] if name else chr(int(dec) if dec else int(hexa, 16))


def _unescape(text: str, reference: re.Pattern[str]) -> str:
    """`text` (every `&` in it starting a reference: `_references`) with them replaced."""
    if "&#" in text:
        return reference.sub(_char, text)
    text = text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return text.replace("&apos;", "'").replace("&amp;", "&")  # last: `&amp;lt;` is `&lt;`


def _references(doc: str, reference: re.Pattern[str]) -> bool:
    """Whether every `&` in `doc` starts a predefined entity or a character reference to a
    character XML allows."""
    found = reference.findall(doc)
    if len(found) != doc.count("&"):
        return False
    if "&#" not in doc:
        return True
    for name, dec, hexa in found:
        if not name:
            if len(dec or hexa) > 8:  # with leading zeros, or beyond U+10FFFF
                return False
            code = int(dec) if dec else int(hexa, 16)
            ok = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            if not (ok or 0x10000 <= code <= 0x10FFFF):
                return False
    return True


def _tag(text: str, pattern: re.Pattern[str]) -> tuple[int, str] | None:
    """What the text between `<` and `>` is (`_tags`); None: not a tag without attributes."""
    found = _tags.get(text)
    if found is None:
        m = pattern.fullmatch(text)
        if m is None or (m.group(1) and m.group(3)):
            return None  # a comment, CDATA, a PI, a DOCTYPE, an attribute, a prefix, `</a/>`
        found = (1 if m.group(1) else 2 if m.group(3) else 0, m.group(2))
        if len(_tags) < 256:
            _tags[text] = found
    return found


def _s3_page(xml: bytes) -> list[_Child] | None:
    """The root's children, read by the tight parser (the module's docstring); None when the
    page holds anything else (ElementTree then reads it)."""
    try:
        doc = xml.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head, tag_text, reject, reference = _patterns()
    start = head.match(doc)
    if start is None or reject.search(doc) is not None or "]]>" in doc:
        return None
    if "&" in doc and not _references(doc, reference):
        return None
    children: list[_Child] = []
    stack = ["ListBucketResult"]
    name = text = ""  # the open child of the root, and its text (what follows its start tag)
    fields: dict[str, str] | None = None  # the open Contents' fields
    pieces = doc[start.end() :].split("<")  # each: a tag's text, `>`, the text after it
    tags = _tags
    for piece in pieces[1:]:
        end = piece.find(">")
        if end < 0 or not stack:
            return None  # a `<` that opens no tag, or an element after the root
        found = tags.get(piece[:end]) or _tag(piece[:end], tag_text)
        if found is None:
            return None
        kind, tag = found
        if kind == 1:
            if stack.pop() != tag:
                return None
            if len(stack) == 1:
                children.append((name, text, fields))
            elif not stack and piece[end + 1 :].strip(" \t\n"):
                return None  # text after the root
            continue
        depth = len(stack)  # of the new element's parent
        if depth == 1:
            contents: dict[str, str] | None = {} if tag == "Contents" else None
            if kind == 2:
                children.append((tag, "", contents))
                continue
            text = piece[end + 1 :]  # an element's text: before its first child
            name, fields = tag, contents
            if "&" in text:
                text = _unescape(text, reference)
        elif depth == 2 and fields is not None and tag not in fields:
            value = "" if kind == 2 else piece[end + 1 :]
            fields[tag] = _unescape(value, reference) if "&" in value else value
        if kind == 0:
            stack.append(tag)
    return children if not stack else None


def list_pages(
    send: Callable[[dict[str, str]], bytes],
    prefix: str,
    *,
    start_after: str | None = None,
    source: str,
    parse: Callable[[bytes], ListPage] = parse_list_page,
    page_size: int = PAGE_SIZE,
) -> Iterator[ListedObject]:
    """Every object under `prefix` (after `start_after`), page by page, in key order.

    A store that claims more pages without a new continuation token, or hands out the same
    token twice, is a broken listing: RemoteError rather than an endless loop.
    """
    token: str | None = None
    seen: set[str] = set()
    while True:
        params = {
            "list-type": "2",
            "prefix": prefix,
            "max-keys": str(page_size),
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
