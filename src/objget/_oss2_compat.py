"""`objget.resumable_download`: a drop-in for `oss2.resumable_download`.

Same parameters, defaults and exceptions as oss2 (threshold 100 MiB, 10 MiB parts doubled until
there are at most 100,000, 4 threads, checkpoints under `store.dir`, an existing target
overwritten, `None` returned, oss2's exception types raised), on objget's engine: retries that
resume from the last byte, 206 checks, crash-safe checkpoints, a lock, a temp file also below
the threshold. Requests are signed by the bucket's own auth object, so every oss2 auth type
(Auth, AuthV2, AuthV4, StsAuth, ProviderAuth, ProviderAuthV4) works unchanged. A CryptoBucket
is handed to oss2 itself (client-side decryption is oss2's business). A bucket made with
`proxies=` (requests' form: `{"http": URL, "https": URL}`) downloads on objget's engine through
the proxy requests would pick for the endpoint (`_bucket_proxy`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

from ._config import DownloadConfig, Timeouts
from ._exceptions import (
    DownloadError,
    IntegrityError,
    LockedError,
    RemoteError,
    RetriesExhausted,
    TransportError,
)
from ._models import Progress
from .backends._oss_auth import OssRequest
from .backends.oss import OssBackend, OssTarget
from .engine._checkpoint import Paths
from .engine._downloader import Downloader, head_with_retry

__all__ = ["resumable_download"]


MiB = 1024 * 1024
_MAX_PARTS = 100_000


def _import_oss2() -> Any:
    try:
        import oss2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "objget.resumable_download needs oss2: pip install 'objget[oss]'"
        ) from exc
    return oss2


def oss2_part_size(size: int, preferred: int) -> int:
    """oss2's rule: the preferred size, doubled until there are at most 100,000 parts."""
    part = preferred
    while size > part * _MAX_PARTS:
        part *= 2
    return part


class _BucketSigner:
    """Signs with the oss2.Bucket's own auth object (any oss2 auth type)."""

    def __init__(self, bucket: Any, oss2: Any) -> None:
        self._bucket = bucket
        self._oss2 = oss2
        self.description = f"the oss2.Bucket's {type(bucket.auth).__name__} credentials"

    def sign(self, request: OssRequest) -> dict[str, str]:
        b = self._bucket
        req = self._oss2.http.Request(
            request.method,
            b._make_url(request.bucket, request.key),
            params=dict(request.params),
            headers=dict(request.headers),
            app_name=b.app_name,
            region=b.region,
            product=b.product,
            cloudbox_id=b.cloudbox_id,
        )
        b.auth._sign_request(req, request.bucket, request.key)
        return {str(k): str(v) for k, v in req.headers.items() if v is not None}


def _target(bucket: Any, oss2: Any) -> OssTarget:
    from urllib.parse import urlsplit

    netloc = urlsplit(bucket.endpoint).netloc
    maker = bucket._make_url
    kind = oss2.api._determine_endpoint_type(
        netloc, maker.is_cname, bucket.bucket_name, getattr(maker, "is_path_style", False)
    )
    return OssTarget(
        endpoint=bucket.endpoint,
        bucket=bucket.bucket_name,
        path_style=kind in (oss2.api._ENDPOINT_TYPE_IP, oss2.api._ENDPOINT_TYPE_PATH_STYLE),
        cname=kind == oss2.api._ENDPOINT_TYPE_CNAME,
    )


def _bucket_proxy(bucket: Any) -> tuple[str | None, str | None]:
    """(proxy, no_proxy) for the bucket's `proxies=`, chosen as requests chooses for the
    endpoint: `scheme://host`, `scheme`, `all://host`, `all`. A proxy named there is used for
    every request, NO_PROXY notwithstanding (requests does not bypass an explicit proxy); with
    none, the environment decides, with `proxies["no_proxy"]` as its exception list if given."""
    from urllib.parse import urlsplit

    proxies = getattr(bucket, "proxies", None) or {}
    parts = urlsplit(bucket.endpoint if "://" in bucket.endpoint else "http://" + bucket.endpoint)
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    for name in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
        if proxies.get(name):
            return str(proxies[name]), ""
    no_proxy = proxies.get("no_proxy")
    return None, str(no_proxy) if no_proxy is not None else None


def _paths(
    oss2: Any, store: Any, bucket: Any, key: str, filename: str, version: str | None
) -> Paths:
    store = store if store is not None else oss2.ResumableDownloadStore()
    abspath = os.path.abspath(filename)
    name = store.make_store_key(bucket.bucket_name, key, abspath, version)
    return Paths(
        dest=filename,
        part=f"{filename}.objget-part",
        checkpoint=os.path.join(store.dir, f"{name}.objget-ckpt"),
        lock=f"{filename}.objget-lock",
    )


def _answer(exc: BaseException) -> RemoteError | TransportError | None:
    """The store's HTTP answer behind an objget error, if it was one: a final RemoteError, or
    a 5xx/429 that kept coming until the retries ran out (oss2, which does not retry those,
    raises ServerError for them)."""
    if isinstance(exc, RetriesExhausted):
        exc = exc.last_error
    if isinstance(exc, (RemoteError, TransportError)) and exc.status is not None:
        return exc
    return None


def _to_oss2(exc: BaseException, oss2: Any) -> BaseException:
    """The oss2 exception existing `except` clauses expect for an objget error."""
    ex = oss2.exceptions
    answer = _answer(exc)
    if answer is not None and answer.status is not None:
        status, rid = answer.status, answer.request_id or ""
        code = getattr(answer, "code", None) or {
            404: "NoSuchKey", 403: "AccessDenied", 412: "PreconditionFailed"
        }.get(status, "")  # fmt: skip
        message = str(exc)
        details = {"Code": code, "Message": message, "RequestId": rid}
        klass = ex._OSS_ERROR_TO_EXCEPTION.get((status, code), ex.ServerError)
        return klass(status, {"x-oss-request-id": rid}, message.encode(), details)  # type: ignore[no-any-return]
    if isinstance(exc, IntegrityError):
        return ex.InconsistentError(exc.message)  # type: ignore[no-any-return]
    if isinstance(exc, (TransportError, RetriesExhausted)):
        return ex.RequestError(exc)  # type: ignore[no-any-return]
    if isinstance(exc, (LockedError, DownloadError)):
        return ex.ClientError(str(exc))  # type: ignore[no-any-return]
    return exc


def resumable_download(
    bucket: Any,
    key: str,
    filename: str,
    multiget_threshold: int | None = None,
    part_size: int | None = None,
    progress_callback: Callable[[int, int | None], object] | None = None,
    num_threads: int | None = None,
    store: Any = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Download `key` of an `oss2.Bucket` to `filename`, as `oss2.resumable_download` does.

    >>> import oss2, objget  # doctest: +SKIP
    >>> auth = oss2.Auth(ak, sk)  # doctest: +SKIP
    >>> bucket = oss2.Bucket(auth, "https://oss-cn-hangzhou.aliyuncs.com", "b")  # doctest: +SKIP
    >>> objget.resumable_download(bucket, "big.bin", "big.bin")  # doctest: +SKIP
    """
    oss2 = _import_oss2()
    if isinstance(bucket, oss2.CryptoBucket):
        oss2.resumable_download(
            bucket,
            key,
            filename,
            multiget_threshold=multiget_threshold,
            part_size=part_size,
            progress_callback=progress_callback,
            num_threads=num_threads,
            store=store,
            params=params,
            headers=headers,
        )
        return
    threshold = (
        oss2.defaults.multiget_threshold if multiget_threshold is None else multiget_threshold
    )
    threads = oss2.defaults.multiget_num_threads if num_threads is None else num_threads
    version = (params or {}).get("versionId")
    wanted = {k.lower(): v for k, v in (headers or {}).items()}
    limit = wanted.get("x-oss-traffic-limit")
    timeout = float(bucket.timeout) if bucket.timeout else 60.0
    proxy, no_proxy = _bucket_proxy(bucket)
    config = DownloadConfig(
        max_workers=max(1, int(threads)),
        timeouts=Timeouts(connect=timeout, read=timeout),
        proxy=proxy,
        no_proxy=no_proxy,
    )
    try:
        with Downloader(config=config) as dl:
            backend = OssBackend(
                dl.transport,
                target=_target(bucket, oss2),
                signer=_BucketSigner(bucket, oss2),
                request_payer=wanted.get("x-oss-request-payer") == "requester",
                traffic_limit=int(limit) if limit else None,
                verify_crc=bool(bucket.enable_crc),
            )
            meta = head_with_retry(backend, key, version, config.retry)
            size = meta.size or 0
            part: int | None
            if (
                size < threshold
            ):  # oss2 uses one plain GET here; objget one stream, still into a temp file
                part, workers = max(64 * 1024, size), 1
            elif part_size is None:
                # oss2 would GET 10 MiB parts; objget sizes each request as it starts (the
                # ledger is byte-exact, so a part size buys no resume granularity): fewer
                # requests, each ~3-4 ms of server lookup on SeaweedFS
                part, workers = None, config.max_workers
            else:
                part, workers = max(64 * 1024, oss2_part_size(size, part_size)), config.max_workers
            one = dataclasses.replace(config, max_workers=workers, part_size=part)
            paths = _paths(oss2, store, bucket, key, filename, version)
            dl._download_to(  # the checkpoint lives in oss2's store directory
                backend,
                key,
                paths,
                on_progress=_progress_adapter(progress_callback),
                meta=meta,
                config=one,
            )
    except DownloadError as exc:
        raise _to_oss2(exc, oss2) from exc


def _progress_adapter(
    callback: Callable[[int, int | None], object] | None,
) -> Callable[[Progress], None] | None:
    if callback is None:
        return None
    last = -1

    def listener(p: Progress) -> None:
        nonlocal last
        if p.done > last:
            last = p.done
            callback(p.done, p.total)

    return listener
