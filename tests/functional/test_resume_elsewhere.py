"""The Downloader resuming a checkpoint made with another URL of the same object (a mirror),
against objget.testing's in-memory store: resumed when size, strong ETag and Last-Modified
match, refused (a fresh start, with the reason) for a weak ETag or another object."""

import dataclasses
import random

import pytest

import objget
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def run(backend, dest, **cfg):
    cfg.setdefault("retry", no_wait_retry())
    cfg.setdefault("part_size", 1 * MiB)
    cfg.setdefault("buffer_size", 64 * 1024)
    with objget.Downloader(config=objget.DownloadConfig(**cfg)) as dl:
        return dl.download_object(backend, "k", dest)


def leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


class Mirror(MemoryBackend):
    """The same objects at another host, with a strong ETag (or a weak one) and a date."""

    def __init__(self, host: str, objects, *, weak: bool = False, **kw) -> None:
        super().__init__(objects, **kw)
        self.host, self.weak = host, weak

    def display(self, key: str) -> str:
        return f"https://{self.host}/{key}"

    def head(self, key, *, version_id=None):
        meta = super().head(key, version_id=version_id)
        etag = f"W/{meta.etag}" if self.weak else meta.etag
        return dataclasses.replace(meta, etag=etag, last_modified="Fri, 04 Dec 2026 08:00:00 GMT")

    def get_range(self, key, rng, *, meta):
        if self.weak:  # the store compares its own (strong) ETag
            meta = dataclasses.replace(meta, etag=meta.etag.removeprefix("W/"))
        return super().get_range(key, rng, meta=meta)


def test_a_checkpoint_of_another_url_resumes_when_the_object_is_the_same(tmp_path):
    data = payload(8 * MiB)
    first = Mirror("a.example", {"k": data})
    stopped_after(first, 3, tmp_path)
    mirror = Mirror("b.example", {"k": data})
    res = run(mirror, tmp_path / "out")
    assert res.resumed_from == "https://a.example/k" and res.source == "https://b.example/k"
    assert res.restarted is None
    assert res.bytes_resumed == 3 * MiB and mirror.bytes_served == 5 * MiB
    assert (tmp_path / "out").read_bytes() == data
    assert leftovers(tmp_path) == ["out"]


@pytest.mark.parametrize("weak", [True, False], ids=["weak-etag", "other-object"])
def test_a_checkpoint_of_another_url_is_refused_without_proof(tmp_path, weak):
    data = payload(8 * MiB)
    stopped_after(Mirror("a.example", {"k": data}, weak=weak), 3, tmp_path)
    other = data if weak else payload(8 * MiB, seed=5)
    mirror = Mirror("b.example", {"k": other}, weak=weak)
    res = run(mirror, tmp_path / "out")
    assert res.resumed_from is None and res.bytes_resumed == 0
    assert res.restarted and "another source (https://a.example/k)" in res.restarted
    assert ("strong ETag" if weak else "differs") in res.restarted
    assert mirror.bytes_served == 8 * MiB and (tmp_path / "out").read_bytes() == other


def stopped_after(be: MemoryBackend, parts: int, tmp_path) -> None:
    """Download with `be` on one stream, stopped by a final error after `parts` parts."""
    orig, calls = be.get_range, {"n": 0}

    def get_range(key, rng, *, meta):
        calls["n"] += 1
        if calls["n"] > parts:
            raise objget.AccessDenied("stop here", status=403)
        return orig(key, rng, meta=meta)

    be.get_range = get_range  # type: ignore[method-assign]
    with pytest.raises(objget.AccessDenied):
        run(be, tmp_path / "out", max_workers=1, min_workers=1)
