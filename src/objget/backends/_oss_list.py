"""ListObjectsV2 for OSS (`GET /?list-type=2`): the S3 page parser with OSS's decoding.

OSS percent-encodes keys *and* `NextContinuationToken` under `encoding-type=url` (oss2 decodes
both with `unquote`); its XML has no namespace. The signing and sending stay in `OssBackend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from urllib.parse import unquote

from ._s3_list import ListedObject, list_pages, parse_list_page

__all__ = ["list_oss_objects", "parse_oss_page"]

parse_oss_page = partial(parse_list_page, decode_key=unquote, decode_token=unquote)


def list_oss_objects(
    send: Callable[[dict[str, str]], bytes],
    prefix: str,
    *,
    start_after: str | None = None,
    source: str,
) -> Iterator[ListedObject]:
    """Every object under `prefix` in key order; `send` signs and sends one bucket GET."""
    return list_pages(send, prefix, start_after=start_after, source=source, parse=parse_oss_page)
