import logging

import objget

EXPECTED = [
    "AccessDenied",
    "BackendOptions",
    "BatchItem",
    "BatchResult",
    "ByteRange",
    "CheckpointError",
    "DownloadConfig",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "IntegrityError",
    "LockedError",
    "ObjectChanged",
    "ObjectMeta",
    "ObjectNotFound",
    "Progress",
    "RangeNotSupported",
    "RemoteError",
    "RetriesExhausted",
    "RetryPolicy",
    "TLSError",
    "Timeouts",
    "TransportError",
    "UnsafePath",
    "__version__",
    "download",
    "download_many",
    "resumable_download",
]


def test_all_is_pinned_and_sorted():
    assert objget.__all__ == EXPECTED
    assert sorted(objget.__all__) == objget.__all__
    for name in objget.__all__:
        assert hasattr(objget, name)


def test_error_tree():
    assert issubclass(objget.ObjectNotFound, objget.RemoteError)
    assert issubclass(objget.ObjectNotFound, FileNotFoundError)
    for cls in (objget.AccessDenied, objget.ObjectChanged, objget.RangeNotSupported):
        assert issubclass(cls, objget.RemoteError)
    for cls in (
        objget.RemoteError,
        objget.TransportError,
        objget.RetriesExhausted,
        objget.IntegrityError,
        objget.CheckpointError,
    ):
        assert issubclass(cls, objget.DownloadError)
    assert issubclass(objget.LockedError, objget.CheckpointError)
    assert issubclass(objget.TLSError, objget.TransportError)
    assert issubclass(objget.UnsafePath, objget.DownloadError)
    assert issubclass(objget.UnsafePath, ValueError)


def test_library_is_silent_by_default():
    handlers = logging.getLogger("objget").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_importing_objget_does_not_import_sdks():
    import subprocess
    import sys

    code = (
        "import sys, objget; "
        "bad = [m for m in ('oss2', 'botocore', 'boto3', 'ray', 'requests') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_download_result_fields_and_json_keys_are_pinned():
    import dataclasses

    fields = [f.name for f in dataclasses.fields(objget.DownloadResult)]
    assert fields == [
        "path", "source", "size", "etag", "version_id", "verified", "bytes_fetched",
        "bytes_resumed", "elapsed", "retries", "resumable", "restarted", "resumed_from",
        "workers", "skipped", "checksums",
    ]  # fmt: skip
    result = objget.DownloadResult(
        path="p", source="s", size=1, etag=None, version_id=None, verified=("size",),
        bytes_fetched=1, bytes_resumed=0, elapsed=0.0, retries=0,
    )  # fmt: skip
    assert result.resumed_from is None
    assert sorted(result.to_dict()) == sorted(fields)  # --json: every field, by its name


BACKENDS_EXPECTED = [
    "Abortable",
    "AnswerChecksums",
    "Backend",
    "BackendOptions",
    "Checksummer",
    "Lister",
    "ObjectChecks",
    "PartLayout",
    "RangeBody",
]


def test_backends_all_is_the_protocols_and_options():
    """`objget.backends` exports the Protocols and `BackendOptions`; everything else is
    private (importable for objget's own use, never in `__all__`)."""
    import typing

    import objget.backends as backends

    assert backends.__all__ == BACKENDS_EXPECTED
    for name in backends.__all__:
        value = getattr(backends, name)
        if name not in ("BackendOptions", "ObjectChecks"):
            assert getattr(value, "_is_protocol", False), name
    # a value, fully typed; `Checksummer` is named there for the type checker only (a Protocol
    # needs typing: a plain download imports none, test_import_no_typing.py)
    assert typing.get_type_hints(
        backends.ObjectChecks, localns={"Checksummer": backends.Checksummer}
    )


def _types_in(hint: object) -> list[type]:
    import typing

    found = [hint] if isinstance(hint, type) else []
    for arg in typing.get_args(hint):
        found += _types_in(arg)
    return found


def test_no_private_type_in_a_public_signature(tmp_path):
    """Every objget type a public signature names is public itself (issue 15): the Downloader's
    methods take paths, not the private `_checkpoint.Paths`."""
    import inspect
    import typing

    import objget.backends as backends
    from objget.engine._throttle import RateLimiter  # imported by _downloader for mypy only
    from objget.testing import MemoryBackend, no_wait_retry

    public = {id(getattr(m, n)) for m in (objget, backends) for n in m.__all__}
    # named for the type checker only: Progress (defined when a listener needs one), the
    # Protocols (typing is not imported by a plain download)
    mypy_only = {"RateLimiter": RateLimiter, "Progress": objget.Progress}
    mypy_only |= {n: getattr(backends, n) for n in ("Backend", "Checksummer", "RangeBody")}
    for name, fn in inspect.getmembers(objget.Downloader, inspect.isfunction):
        if name.startswith("_"):
            continue
        for hint in typing.get_type_hints(fn, localns=mypy_only).values():
            for t in _types_in(hint):
                if t.__module__.startswith("objget"):
                    assert id(t) in public, f"Downloader.{name} names {t.__module__}.{t.__name__}"
    config = objget.DownloadConfig(retry=no_wait_retry())
    with objget.Downloader(config=config) as dl:  # a str or a PathLike, side files beside it
        dl.download_object(MemoryBackend({"k": b"abc"}), "k", tmp_path / "a")
        dl.download_object(MemoryBackend({"k": b"xyz"}), "k", str(tmp_path / "b"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "a").read_bytes() == b"abc"
