"""Many objects at once: a prefix, several prefixes, or a manifest, into one directory
(`download_many`).

The listing runs in a thread of its own and feeds the downloads page by page (`_batch_feed`):
the first GET starts before the listing ends. Each object is checked against the journal
(`_batch_journal`) and its destination (`_batch_skip`) before it is downloaded; the `Runner`
(`_batch_run`) spends one connection budget on all of them, or a Ray runner (`distributed`)
sends them to a cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ._config import DownloadConfig
from ._exceptions import UnsafePath
from .backends import BackendOptions
from .engine._downloader import Downloader
from .engine._engine_face import ParentMaker, file_sha256
from .many._batch_feed import Feed
from .many._batch_journal import Journal
from .many._batch_models import (
    ActiveObject,
    BatchItem,
    BatchProgress,
    BatchResult,
    ObjectResult,
    failed,
)
from .many._batch_run import Runner
from .many._batch_skip import classify
from .many._batch_sources import Planned, Sources, plan_stream, read_manifest

if TYPE_CHECKING:
    from .distributed import RayRunner

__all__ = [
    "ActiveObject", "BatchItem", "BatchProgress", "BatchResult", "ObjectResult", "UnsafePath",
    "download_many", "read_manifest",
]  # fmt: skip

SourceArg = str | BatchItem | Iterable[str | BatchItem] | None


def build_sources(
    sources: SourceArg,
    *,
    manifest: str | os.PathLike[str] | None,
    include: str | Sequence[str] | None,
    exclude: str | Sequence[str] | None,
) -> Sources:
    """`download_many`'s arguments as one `Sources` value (prefixes, items, filters)."""
    if sources is None:
        entries: list[str | BatchItem] = []
    elif isinstance(sources, (str, BatchItem)):
        entries = [sources]
    else:
        entries = list(sources)
    items = tuple(e for e in entries if isinstance(e, BatchItem))
    if manifest is not None:
        items += tuple(read_manifest(manifest))
    prefixes = tuple(e for e in entries if not isinstance(e, BatchItem))
    if not prefixes and not items:
        raise ValueError("nothing to download: give a prefix URL, items or a manifest")
    globs = [(v,) if isinstance(v, str) else tuple(v or ()) for v in (include, exclude)]
    return Sources(prefixes=prefixes, items=items, include=globs[0], exclude=globs[1])


def check_existing(out: ObjectResult, sums: Mapping[str, str], root: str) -> ObjectResult:
    """An object skipped as done that `sums` lists: its file is read and must match (it was
    downloaded before the list was given); a mismatch fails it, leaving the file alone."""
    rel = os.path.relpath(out.path, root).replace(os.sep, "/") if out.path else ""
    want = sums.get(rel)
    if want is None or out.path is None:
        return out
    try:
        actual = file_sha256(out.path)
    except OSError as exc:
        actual = f"<unreadable: {exc.strerror}>"
    if actual == want:
        return out
    why = (f"{out.path} (done in an earlier run) has sha256 {actual}, the checksum file lists "
           f"{want}; the file was left as it is")  # fmt: skip
    return failed(out.source, out.path, ValueError(why), size=out.size, etag=out.etag,
                  kind="integrity")  # fmt: skip


def with_sums(
    planned: list[Planned], sums: Mapping[str, str], root: str, refused: list[ObjectResult]
) -> list[Planned]:
    """Each object whose relative path `sums` lists gets that SHA-256 to be checked; one whose
    manifest line gives another is refused (it cannot match both)."""
    out: list[Planned] = []
    for p in planned:
        want = sums.get(p.rel)
        if want is not None and p.sha256 is not None and p.sha256 != want:
            why = f"the manifest's sha256 {p.sha256} differs from the checksum file's {want}"
            refused.append(failed(p.source, os.path.join(root, p.rel), ValueError(why),
                                  kind="integrity"))  # fmt: skip
            continue
        out.append(dataclasses.replace(p, sha256=want) if want is not None else p)
    return out


def download_many(
    sources: SourceArg,
    dest_dir: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    config: DownloadConfig | None = None,
    options: BackendOptions | None = None,
    dry_run: bool = False,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_result: Callable[[ObjectResult], None] | None = None,
    sums: Mapping[str, str] | None = None,
    runner: RayRunner | None = None,
) -> BatchResult:
    """Download every object of `sources` into `dest_dir` and return each object's result.

    `sources`: prefix URLs (`s3://bucket/prefix/`, `oss://bucket/prefix`; listed recursively,
    keys mapped to paths below the prefix's last `/`) and/or `BatchItem`s; `manifest`: a file
    of URLs or JSON lines (`source`, optional `dest`, `sha256`, `version_id`). `include` /
    `exclude`: shell globs matched against the relative path (`*` also matches `/`); an object
    is taken when it matches an include (or none are given) and no exclude.
    `config.max_workers` is the total number of connections and `config.limit_rate` caps the
    whole batch. When every object succeeds, the journal is removed and `dest_dir` holds only
    the objects; a later call skips files with the listed size and Last-Modified as mtime
    without a request. `dry_run` lists what would be downloaded and writes nothing. `sums` maps
    relative paths to the SHA-256 (hex) their objects must have (a `SHA256SUMS` file); a
    mismatch fails that object. Failed objects are in `result.failed`; nothing is raised for
    them (a listing that fails for good, or a journal locked by another run, raises).
    `runner`: where the downloads run; None: here, `objget.distributed.RayRunner(...)`: on a
    Ray cluster (`objget.distributed.download_many` is that call).

    >>> result = objget.download_many("s3://bucket/logs/2024-06-01/", "logs/")  # doctest: +SKIP
    >>> len(result.downloaded), len(result.skipped), len(result.failed)  # doctest: +SKIP
    (1440, 0, 0)
    >>> result = objget.download_many(None, "data/", manifest="urls.jsonl")  # doctest: +SKIP
    >>> [(f.source, f.error_kind, f.error) for f in result.failed]  # doctest: +SKIP
    """
    started = time.monotonic()
    src = build_sources(sources, manifest=manifest, include=include, exclude=exclude)
    root = os.path.abspath(os.fspath(dest_dir))
    if not dry_run:
        os.makedirs(root, exist_ok=True)
    results: list[ObjectResult] = []

    def emit(out: ObjectResult) -> None:
        results.append(out)
        if on_result is not None:
            on_result(out)

    def admit(items: list[Planned | ObjectResult]) -> tuple[list[Planned], int]:
        """Objects the listing just decided: refused and done ones emitted, the rest
        returned to download (with how many were skipped)."""
        refused = [c for c in items if isinstance(c, ObjectResult)]
        planned = [c for c in items if isinstance(c, Planned)]
        if sums:
            planned = with_sums(planned, sums, root, refused)
        todo, skipped = classify(planned, rows, root, jr, names)
        if sums:
            skipped = [check_existing(out, sums, root) for out in skipped]
        for out in (*refused, *skipped):
            emit(out)
        return todo, len(skipped)

    with Downloader(config=config, options=options) as dl, contextlib.ExitStack() as stack:
        listing = plan_stream(src, transport=dl.transport, options=dl.options,
                              policy=dl.config.retry)  # fmt: skip
        feed = Feed(listing, admit)
        if runner is None and not dry_run:  # its first request goes out while the journal is
            feed.start()  # made (it writes nothing; `admit`, which reads the journal, waits)
            stack.callback(feed.close, 0.0)  # a journal that fails: the exit waits for no answer
        jr = stack.enter_context(Journal(root, readonly=dry_run))
        rows = jr.rows()
        names = ParentMaker(root)  # each directory listed once, for the skip rules and the runner
        if dry_run:
            for p in admit(list(listing))[0]:
                path = os.path.join(root, p.rel)
                emit(ObjectResult(source=p.source, path=path, status="planned", size=p.size))
        elif runner is None:  # here: one connection budget on this machine
            here = Runner(dl, root, jr, paths=names, on_progress=on_progress, on_result=on_result)
            results.extend(here.run([], rows, more=feed))
        else:
            results.extend(runner.run(dl, root, jr, feed, rows=rows,
                                      on_progress=on_progress, on_result=on_result))  # fmt: skip
        if not dry_run and not any(out.status == "failed" for out in results):
            jr.remove()  # every object is in place and durable: DIR is left clean
    return BatchResult(objects=tuple(results), elapsed=time.monotonic() - started, dry_run=dry_run)
