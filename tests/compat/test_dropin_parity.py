"""`objget.resumable_download` behaves like `oss2.resumable_download`, with oss2 as the oracle.

Each test makes the same call with both functions, against the OSS-protocol test server, and
compares what a caller can observe: the final file, where checkpoints live (`store.dir`, keyed
by `store.make_store_key(...)`; objget's file is that key plus `.objget-ckpt`), the exception
types (and their status/code), and the progress callbacks. A CryptoBucket is handed to oss2;
a bucket with `proxies=` is not (objget's engine goes through the proxy).
"""

from __future__ import annotations

import functools
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oss2
import oss2.exceptions as oe
import pytest

import objget
from objget.engine import _checkpoint as ck

from .._servers.oss_fixture import AK, SK, MiB, make_bucket
from .._servers.oss_server import Fault, OssServer, RequestInfo
from .._servers.proxy import ForwardProxy

# oss2 logs "object overwritten" with the deprecated Logger.warn (its bug, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

BUCKET = "objget-parity"
BOTH = {"oss2": oss2.resumable_download, "objget": objget.resumable_download}
PARALLEL = {"multiget_threshold": MiB, "part_size": MiB, "num_threads": 4}


@pytest.fixture(scope="module")
def bucket_name(oss: OssServer) -> str:
    oss.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="module")
def obj(oss: OssServer, bucket_name: str) -> tuple[str, bytes]:
    data = random.Random(1).randbytes(9 * MiB + 7)
    oss.put(BUCKET, "parity/nine.bin", data)
    return "parity/nine.bin", data


def store_at(tmp_path: Path) -> Any:
    return oss2.ResumableDownloadStore(root=str(tmp_path / "store"))


def record_name(store: Any, key: str, dest: Path) -> str:
    return store.make_store_key(BUCKET, key, os.path.abspath(dest))


def raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


# --- the final file --------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["below-threshold", "parallel", "existing-target"])
def test_same_final_file(oss, obj, tmp_path, case):
    key, data = obj
    kw = {} if case == "below-threshold" else PARALLEL
    store = store_at(tmp_path)
    bucket = make_bucket(oss, BUCKET)
    for name, download in BOTH.items():
        dest = tmp_path / name / "out.bin"
        dest.parent.mkdir()
        if case == "existing-target":
            dest.write_bytes(b"an older, longer file " * 1_000_000)
        assert download(bucket, key, str(dest), store=store, **kw) is None
        assert dest.read_bytes() == data
        assert os.listdir(dest.parent) == ["out.bin"]  # no temp, lock or checkpoint left
    assert not os.listdir(store.dir)


def test_default_store_is_under_home(oss, obj, tmp_path, monkeypatch):
    """No `store`: both keep checkpoints in ~/.py-oss-download (created, emptied at the end)."""
    key, data = obj
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    bucket = make_bucket(oss, BUCKET)
    for name, download in BOTH.items():
        dest = tmp_path / f"{name}.bin"
        download(bucket, key, str(dest), **PARALLEL)
        assert dest.read_bytes() == data
    assert os.listdir(tmp_path / "home") == [".py-oss-download"]
    assert not os.listdir(tmp_path / "home" / ".py-oss-download")


# --- checkpoints after an interrupted run ----------------------------------------------------
def test_interrupted_run_leaves_its_checkpoint_under_store_dir(oss, obj, tmp_path):
    key, data = obj
    store = store_at(tmp_path)
    bucket = make_bucket(oss, BUCKET)

    def refuse_late_parts(r: RequestInfo) -> Fault | None:
        if r.method == "GET" and r.key == key and "range" in r.headers:
            start = int(r.headers["range"].removeprefix("bytes=").partition("-")[0])
            if start >= 4 * MiB:
                return Fault(code="AccessDenied")
        return None

    dests = {name: tmp_path / name / "out.bin" for name in BOTH}
    errors = {}
    for name, download in BOTH.items():
        dests[name].parent.mkdir()
        oss.on_request = refuse_late_parts
        errors[name] = raised(
            functools.partial(download, bucket, key, str(dests[name]), store=store, **PARALLEL)
        )
    assert type(errors["objget"]) is type(errors["oss2"]) is oe.AccessDenied
    assert errors["objget"].status == errors["oss2"].status == 403
    oss2_record = record_name(store, key, dests["oss2"])
    objget_record = record_name(store, key, dests["objget"])
    assert sorted(os.listdir(store.dir)) == sorted([oss2_record, objget_record + ".objget-ckpt"])
    saved = ck.load(os.path.join(store.dir, objget_record + ".objget-ckpt"))
    assert saved is not None and saved.spans and saved.spans[0].start == 0
    [oss2_tmp] = [p for p in os.listdir(dests["oss2"].parent) if p.startswith("out.bin.tmp-")]
    assert os.listdir(dests["objget"].parent) == ["out.bin.objget-part"]
    oss.clear_faults()
    asked = {}
    for name, download in BOTH.items():
        mark = len(oss.log)
        download(bucket, key, str(dests[name]), store=store, **PARALLEL)
        assert dests[name].read_bytes() == data
        assert os.listdir(dests[name].parent) == ["out.bin"]
        asked[name] = [
            e.range for e in oss.log[mark:] if e.method == "GET" and e.request.key == key
        ]
    assert not os.listdir(store.dir) and oss2_tmp
    for rng in asked["objget"]:  # objget asks only for what its checkpoint did not have
        start, _, last = rng.removeprefix("bytes=").partition("-")
        assert not any(int(start) < s.stop and s.start <= int(last) for s in saved.spans)
    assert sum(s.stop - s.start for s in saved.spans) >= MiB


# --- exception types -------------------------------------------------------------------------
def changing_object(oss: OssServer, key: str, old: bytes, new: bytes) -> None:
    """Store `old`; the second GET of `key` first overwrites it with `new` (412 for that GET),
    while the first GET is held mid-body."""
    oss.put(BUCKET, key, old)
    seen = 0
    lock = threading.Lock()

    def hook(r: RequestInfo) -> Fault | None:
        nonlocal seen
        if r.method != "GET" or r.key != key:
            return None
        with lock:
            seen += 1
            if seen == 2:
                oss.put(BUCKET, key, new)
            return Fault(pause_after=128 * 1024, pause=0.5) if seen == 1 else None

    oss.on_request = hook


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not-found", oe.NoSuchKey),
        ("wrong-secret-v1", oe.SignatureDoesNotMatch),
        ("wrong-secret-v4", oe.SignatureDoesNotMatch),
        ("refused", oe.AccessDenied),
        ("changed", oe.PreconditionFailed),
    ],
)
def test_same_exception_types(oss, obj, tmp_path, case, expected):
    key, data = obj
    auth = {"wrong-secret-v1": "wrong-v1", "wrong-secret-v4": "wrong-v4"}.get(case, "v4")
    bucket = make_bucket(oss, BUCKET, auth)
    store = store_at(tmp_path)
    new = random.Random(2).randbytes(len(data))
    errors = {}
    for name, download in BOTH.items():
        target = {"not-found": "parity/missing.bin", "changed": f"parity/changing-{name}"}
        k = target.get(case, key)
        if case == "changed":
            changing_object(oss, k, data, new)
        elif case == "refused":
            oss.on_request = lambda r: Fault(code="AccessDenied") if r.key == key else None
        dest = tmp_path / f"{name}.bin"
        dest.write_bytes(b"previous")
        errors[name] = raised(
            functools.partial(download, bucket, k, str(dest), store=store, **PARALLEL)
        )
        assert dest.read_bytes() == b"previous"
        oss.clear_faults()
        if case == "changed":  # the next call starts over and gets only the new bytes
            download(bucket, k, str(dest), store=store, **PARALLEL)
            assert dest.read_bytes() == new
    for name, exc in errors.items():
        assert type(exc) is expected, (name, exc)
    mine, theirs = errors["objget"], errors["oss2"]
    assert (mine.status, mine.code) == (theirs.status, theirs.code)
    assert mine.request_id and isinstance(mine.__cause__, objget.DownloadError)
    assert not os.listdir(store.dir)


def test_server_busy_after_the_retries_is_a_server_error(oss, obj, tmp_path, monkeypatch):
    """oss2 does not retry a 503 and raises ServerError(503); objget retries, then raises the
    same type (not RequestError), so `except ServerError` clauses keep catching it."""
    key, _ = obj
    quick = objget.RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.05)
    monkeypatch.setattr(
        "objget._oss2_compat.DownloadConfig",
        functools.partial(objget.DownloadConfig, retry=quick),
    )
    oss.on_request = lambda r: (
        Fault(code="ServiceUnavailable") if r.method == "GET" and r.key == key else None
    )
    bucket = make_bucket(oss, BUCKET)
    errors = {
        name: raised(
            functools.partial(
                download, bucket, key, str(tmp_path / name), store=store_at(tmp_path), **PARALLEL
            )
        )
        for name, download in BOTH.items()
    }
    assert type(errors["objget"]) is type(errors["oss2"]) is oe.ServerError
    assert errors["objget"].status == errors["oss2"].status == 503
    assert isinstance(errors["objget"].__cause__, objget.RetriesExhausted)


# --- progress --------------------------------------------------------------------------------
class ProgressRecorder:
    """A progress_callback that records its calls and fails on two calls at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self._inside = threading.Lock()

    def __call__(self, consumed: int, total: int | None) -> None:
        assert self._inside.acquire(blocking=False), "progress called from two threads at once"
        try:
            self.calls.append((consumed, total))
        finally:
            self._inside.release()


@pytest.mark.parametrize("kw", [{}, PARALLEL], ids=["below-threshold", "parallel"])
def test_progress_callbacks_grow_and_end_at_total(oss, obj, tmp_path, kw):
    key, data = obj
    total = len(data)
    bucket = make_bucket(oss, BUCKET)
    for name, download in BOTH.items():
        recorder = ProgressRecorder()
        calls = recorder.calls
        dest = tmp_path / f"{name}.bin"
        download(bucket, key, str(dest), progress_callback=recorder, store=store_at(tmp_path), **kw)
        assert dest.read_bytes() == data
        assert calls[-1] == (total, total), name
        assert all(size == total for _, size in calls), name
        counts = [c for c, _ in calls]
        assert counts == sorted(counts), name  # never decreasing
        assert 0 <= counts[0] <= total


# --- CryptoBucket ----------------------------------------------------------------------------
def test_crypto_bucket_is_handed_to_oss2(oss, bucket_name, tmp_path, monkeypatch):
    from Crypto.PublicKey import RSA

    rsa = RSA.generate(2048)
    pair = {
        "private_key": rsa.export_key().decode(),
        "public_key": rsa.publickey().export_key().decode(),
    }
    crypto = oss2.CryptoBucket(
        oss2.Auth(AK, SK), oss.endpoint, BUCKET, crypto_provider=oss2.RsaProvider(pair)
    )
    plain = random.Random(3).randbytes(300_000)
    crypto.put_object("parity/encrypted.bin", plain)
    stored = make_bucket(oss, BUCKET).get_object("parity/encrypted.bin").read()
    assert stored != plain  # encrypted at rest: a plain download would give ciphertext
    calls = []
    real = oss2.resumable_download

    def spy(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        real(*args, **kwargs)

    monkeypatch.setattr(oss2, "resumable_download", spy)
    store = store_at(tmp_path)
    dest = tmp_path / "plain.bin"
    progress = []
    objget.resumable_download(
        crypto,
        "parity/encrypted.bin",
        str(dest),
        part_size=MiB,
        progress_callback=lambda a, b: progress.append((a, b)),
        store=store,
        params=None,
        headers={"x-oss-request-payer": "requester"},
    )
    assert dest.read_bytes() == plain  # decrypted by oss2
    [(args, kwargs)] = calls
    assert args == (crypto, "parity/encrypted.bin", str(dest))
    assert kwargs["part_size"] == MiB and kwargs["store"] is store
    assert kwargs["headers"] == {"x-oss-request-payer": "requester"}
    assert progress and progress[-1][0] == progress[-1][1]


def test_bucket_with_proxies_downloads_on_objget_through_the_proxy(oss, obj, tmp_path, monkeypatch):
    """A bucket made with `proxies=` is downloaded by objget's engine (not handed to oss2),
    every request through the proxy requests would pick for the endpoint; the same file,
    progress and checkpoint place as oss2 through the same proxy."""
    for name in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # requests does not bypass an explicit proxy
    key, data = obj
    handed = []
    real = oss2.resumable_download
    with ForwardProxy() as proxy:
        bucket = oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, BUCKET, proxies={"http": proxy.url})
        dest = tmp_path / "oss2.bin"
        real(bucket, key, str(dest), store=store_at(tmp_path / "a"), **PARALLEL)
        assert dest.read_bytes() == data
        by_oss2 = len(proxy.requests)
        assert by_oss2 > 0  # the oracle: oss2 itself goes through it

        monkeypatch.setattr(oss2, "resumable_download", lambda *a, **kw: handed.append(a))
        mark = len(oss.log)
        dest = tmp_path / "objget.bin"
        progress: list[tuple[int, int | None]] = []
        objget.resumable_download(
            bucket, key, str(dest), store=store_at(tmp_path / "b"),
            progress_callback=lambda a, b: progress.append((a, b)), **PARALLEL,
        )  # fmt: skip
        assert handed == []
        assert dest.read_bytes() == data
        assert progress[-1] == (len(data), len(data))
        mine = proxy.requests[by_oss2:]
        assert len(mine) == len(oss.log) - mark > 1  # every request objget sent went through it
        assert all(t.startswith(oss.endpoint) for _, t in mine)
        assert any(m == "GET" for m, _ in mine)


def test_second_call_on_a_locked_filename_is_a_client_error(oss, obj, tmp_path):
    """oss2 has no lock (two calls write one temp file); objget refuses the second at once."""
    key, _ = obj
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous")
    with ck.DestLock(f"{dest}.objget-lock", dest=str(dest)):
        with pytest.raises(oe.ClientError) as err:
            objget.resumable_download(
                make_bucket(oss, BUCKET), key, str(dest), store=store_at(tmp_path), **PARALLEL
            )
        assert isinstance(err.value.__cause__, objget.LockedError)
    assert dest.read_bytes() == b"previous"
    assert not os.listdir(store_at(tmp_path).dir)
