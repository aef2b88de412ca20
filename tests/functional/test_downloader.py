"""The Downloader against objget.testing's in-memory store with scripted faults."""

import hashlib
import os
import random
import threading
import time

import pytest

import objget
from objget.engine._checkpoint import Paths, load
from objget.testing import Fault, MemoryBackend, no_wait_retry

MiB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def run(backend, dest, *, key="k", **cfg):
    cfg.setdefault("retry", no_wait_retry())
    cfg.setdefault("part_size", 1 * MiB)
    cfg.setdefault("buffer_size", 64 * 1024)
    with objget.Downloader(config=objget.DownloadConfig(**cfg)) as dl:
        return dl.download_object(backend, key, dest)


def leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("size", [0, 1, 65_537, 5 * MiB + 3])
def test_sizes(tmp_path, size):
    data = payload(size)
    be = MemoryBackend({"k": data})
    res = run(be, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert res.size == size and res.bytes_fetched == size and res.verified == ("size",)
    assert leftovers(tmp_path) == ["out"]


def test_reset_short_body_and_503_are_retried(tmp_path):
    data = payload(4 * MiB)
    faults = [
        Fault.reset_after(1000),
        Fault.status_error(503, retry_after=0.01),
        Fault.short_body(10),
        Fault.status_error(429),
    ]
    be = MemoryBackend({"k": data}, faults=faults)
    res = run(be, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert res.retries == 4


def test_retry_resumes_from_last_written_byte(tmp_path):
    data = payload(1 * MiB)
    be = MemoryBackend({"k": data}, faults=[Fault.reset_after(300_000)])
    run(be, tmp_path / "out", max_workers=1, min_workers=1)
    assert be.requests[0] == objget.ByteRange(0, MiB)
    assert be.requests[1].start == 300_000  # not from the part's start


def test_retries_exhausted(tmp_path):
    be = MemoryBackend({"k": payload(MiB)}, faults=[Fault.status_error(503)] * 10)
    with pytest.raises(objget.RetriesExhausted) as info:
        run(be, tmp_path / "out", retry=no_wait_retry(attempts=3))
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, objget.TransportError)
    assert not (tmp_path / "out").exists()


def test_200_to_a_range_writes_nothing(tmp_path):
    be = MemoryBackend({"k": payload(2 * MiB)}, faults=[Fault.full_body()])
    with pytest.raises(objget.RangeNotSupported, match="status 200"):
        run(be, tmp_path / "out", max_workers=1)
    assert not (tmp_path / "out").exists()
    ckpt = load(str(tmp_path / "out.objget-ckpt"))
    assert ckpt is not None and ckpt.spans == ()


def test_wrong_content_range_is_refused(tmp_path):
    be = MemoryBackend({"k": payload(2 * MiB)}, faults=[Fault.wrong_range()])
    with pytest.raises(objget.RangeNotSupported, match="does not match"):
        run(be, tmp_path / "out", max_workers=1)
    assert not (tmp_path / "out").exists()


def test_server_without_ranges_uses_one_stream(tmp_path):
    data = payload(3 * MiB)
    be = MemoryBackend({"k": data}, ranges=False, faults=[Fault.reset_after(5000)])
    res = run(be, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert not res.resumable
    assert be.requests == [None, None]


def test_not_found(tmp_path):
    with pytest.raises(objget.ObjectNotFound):
        run(MemoryBackend({}), tmp_path / "out")
    assert leftovers(tmp_path) == []


def test_existing_destination_replaced_only_at_the_end(tmp_path):
    (tmp_path / "out").write_bytes(b"old content")
    be = MemoryBackend({"k": payload(MiB)}, faults=[Fault.status_error(403)])
    with pytest.raises(objget.AccessDenied):
        run(be, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"old content"
    res = run(be, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == payload(MiB)
    assert res.bytes_fetched == MiB


def interrupted(tmp_path, data, after_parts, **cfg):
    """Download until `after_parts` parts succeeded, then a final error stops it."""
    be = MemoryBackend({"k": data})

    class Stop(MemoryBackend):
        pass

    calls = {"n": 0}
    orig = be.get_range

    def get_range(key, rng, *, meta):
        calls["n"] += 1
        if calls["n"] > after_parts:
            raise objget.AccessDenied("stop here", status=403)
        return orig(key, rng, meta=meta)

    be.get_range = get_range  # type: ignore[method-assign]
    with pytest.raises(objget.AccessDenied):
        run(be, tmp_path / "out", max_workers=1, min_workers=1, **cfg)
    return be


def test_resume_fetches_only_missing_bytes_with_other_part_size(tmp_path):
    data = payload(8 * MiB)
    interrupted(tmp_path, data, 3)
    ckpt = load(str(tmp_path / "out.objget-ckpt"))
    assert ckpt is not None
    assert ckpt.spans[0].start == 0 and ckpt.spans[0].stop == 3 * MiB
    be = MemoryBackend({"k": data})
    res = run(be, tmp_path / "out", part_size=3 * MiB, max_workers=4)
    assert (tmp_path / "out").read_bytes() == data
    assert res.bytes_resumed == 3 * MiB
    assert res.bytes_fetched == 5 * MiB
    assert be.bytes_served == 5 * MiB
    assert leftovers(tmp_path) == ["out"]


def test_object_changed_between_runs_restarts(tmp_path):
    data = payload(4 * MiB)
    interrupted(tmp_path, data, 2)
    be = MemoryBackend({"k": payload(4 * MiB, seed=2)})
    res = run(be, tmp_path / "out")
    assert res.restarted and "changed" in res.restarted
    assert res.bytes_resumed == 0
    assert (tmp_path / "out").read_bytes() == payload(4 * MiB, seed=2)


@pytest.mark.interrupt
def test_object_changed_mid_download(tmp_path):
    data = payload(4 * MiB)
    be = MemoryBackend({"k": data})
    orig = be.get_range
    calls = {"n": 0}

    def get_range(key, rng, *, meta):
        calls["n"] += 1
        if calls["n"] == 2:
            be.replace("k", payload(4 * MiB, seed=9))
        return orig(key, rng, meta=meta)

    be.get_range = get_range  # type: ignore[method-assign]
    with pytest.raises(objget.ObjectChanged):
        run(be, tmp_path / "out", max_workers=1)
    assert leftovers(tmp_path) == []  # the mixed temp data is discarded
    res = run(be, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == payload(4 * MiB, seed=9)
    assert res.restarted is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_checkpoint_is_reported_and_ignored(tmp_path, damage):
    data = payload(4 * MiB)
    interrupted(tmp_path, data, 2)
    path = tmp_path / "out.objget-ckpt"
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[len(raw) // 3] ^= 0x10
    elif damage == "garbage":
        raw = bytearray(os.urandom(300))
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    res = run(MemoryBackend({"k": data}), tmp_path / "out")
    assert res.restarted and "unusable" in res.restarted
    assert (tmp_path / "out").read_bytes() == data


def test_checkpoint_claiming_missing_bytes_is_not_trusted(tmp_path):
    data = payload(4 * MiB)
    interrupted(tmp_path, data, 2)
    os.truncate(tmp_path / "out.objget-part", 1000)
    res = run(MemoryBackend({"k": data}), tmp_path / "out")
    assert res.restarted and "shorter" in res.restarted
    assert (tmp_path / "out").read_bytes() == data


def test_restart_flag(tmp_path):
    data = payload(4 * MiB)
    interrupted(tmp_path, data, 2)
    res = run(MemoryBackend({"k": data}), tmp_path / "out", restart=True)
    assert res.bytes_resumed == 0 and res.bytes_fetched == 4 * MiB


def test_locked_destination(tmp_path):
    from objget.engine._checkpoint import DestLock

    paths = Paths.beside(str(tmp_path / "out"))
    with DestLock(paths.lock, dest=paths.dest), pytest.raises(objget.LockedError) as info:
        run(MemoryBackend({"k": b"x"}), tmp_path / "out")
    assert "objget-lock" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_sha256_checksum(tmp_path):
    data = payload(MiB)
    good = hashlib.sha256(data).hexdigest()
    res = run(MemoryBackend({"k": data}), tmp_path / "out", checksum=f"sha256:{good}")
    assert res.verified == ("size", "sha256")
    with pytest.raises(objget.IntegrityError) as info:
        run(MemoryBackend({"k": data}), tmp_path / "bad", checksum="sha256:" + "0" * 64)
    assert info.value.algorithm == "sha256"
    assert not (tmp_path / "bad").exists()


class SumCheck:
    """A toy combinable checksum (byte sum) to exercise the CRC plumbing."""

    name = "bytesum"

    def __init__(self, expected):
        self.expected = expected

    def update(self, crc, data):
        return crc + sum(bytes(data))

    def combine(self, a, b, len_b):
        return a + b


def test_combined_checksum_verified_and_mismatch(tmp_path):
    data = payload(300_000)
    be = MemoryBackend({"k": data}, checksummer=SumCheck(sum(data)))
    res = run(be, tmp_path / "out", part_size=64 * 1024, buffer_size=16 * 1024, max_workers=3)
    assert res.verified == ("size", "bytesum")
    be = MemoryBackend({"k": data}, checksummer=SumCheck(sum(data) + 1))
    with pytest.raises(objget.IntegrityError):
        run(be, tmp_path / "bad", part_size=64 * 1024, buffer_size=16 * 1024)
    assert not (tmp_path / "bad").exists()


def test_progress_is_monotonic_and_complete(tmp_path):
    data = payload(6 * MiB)
    seen = []
    be = MemoryBackend({"k": data})
    with objget.Downloader(
        config=objget.DownloadConfig(retry=no_wait_retry(), part_size=MiB)
    ) as dl:
        dl.download_object(be, "k", tmp_path / "o", on_progress=seen.append)
    dones = [p.done for p in seen]
    assert dones == sorted(dones)
    assert seen[-1].done == seen[-1].total == len(data)
    assert not [t for t in threading.enumerate() if t.name.startswith("objget-worker")]


def test_the_memory_store_read_delay_slows_every_read():
    """`read_delay` (the slow link the stealing test below relies on) reaches the body."""
    be = MemoryBackend({"k": b"x" * 10}, read_delay=0.05)
    body = be.get_range("k", objget.ByteRange(0, 10), meta=be.head("k"))
    started = time.monotonic()
    assert body.readinto(memoryview(bytearray(4))) == 4
    assert time.monotonic() - started >= 0.05


def test_work_stealing_splits_a_slow_tail(tmp_path):
    data = payload(8 * MiB)
    be = MemoryBackend({"k": data}, read_delay=0.03)
    res = run(
        be, tmp_path / "out", part_size=8 * MiB, max_workers=4, min_workers=4, buffer_size=64 * 1024
    )
    assert (tmp_path / "out").read_bytes() == data
    # One 8 MiB part, four workers: the three with nothing to claim split the in-flight
    # remainder (its upper half, from 1 MiB pieces on), so ranges that start inside the part
    # are asked for. Without stealing the one part is the only request. The first worker
    # needs about 4 s for the part at this read delay, far longer than the others take to start.
    assert all(r is not None for r in be.requests)
    assert res.retries == 0  # no retry asked for a range from the middle either
    stolen = [r for r in be.requests if r is not None and r.start > 0]
    assert stolen, be.requests
    assert all(r.stop - r.start >= MiB for r in stolen), stolen
    assert res.bytes_fetched == len(data)  # every byte once, none lost
