"""A fresh download saves its first durable checkpoint at its first periodic save, not before
its first byte (issue 16, start-up): a checkpoint with no span gives a resume nothing, and a
data file without a checkpoint is started over, never trusted."""

from __future__ import annotations

import random
from typing import Any

import objget
from objget.engine import _checkpoint
from objget.engine._checkpoint import Paths
from objget.engine._checkpoint_record import Checkpoint
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024


def payload(size: int) -> bytes:
    return random.Random(5).randbytes(size)


def run(backend: MemoryBackend, dest: str, **cfg: Any) -> objget.DownloadResult:
    config = objget.DownloadConfig(retry=no_wait_retry(), part_size=MiB, **cfg)
    with objget.Downloader(config=config) as dl:
        return dl.download_object(backend, "k", dest)


def counted_saves(monkeypatch) -> list[str]:
    saves: list[str] = []
    real = _checkpoint.save

    def save(path: str, ckpt: Checkpoint) -> None:
        saves.append(path)
        real(path, ckpt)

    monkeypatch.setattr(_checkpoint, "save", save)
    return saves


def test_a_fresh_download_shorter_than_its_interval_saves_no_checkpoint(tmp_path, monkeypatch):
    saves = counted_saves(monkeypatch)
    data = payload(3 * MiB + 5)
    res = run(MemoryBackend({"k": data}), str(tmp_path / "out"), checkpoint_interval=60.0)
    assert (tmp_path / "out").read_bytes() == data
    assert res.bytes_fetched == len(data) and res.resumable
    assert saves == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_longer_download_saves_at_its_first_interval(tmp_path, monkeypatch):
    saves = counted_saves(monkeypatch)
    data = payload(2 * MiB)
    backend = MemoryBackend({"k": data}, read_delay=0.01)
    run(backend, str(tmp_path / "out"), checkpoint_interval=0.05, buffer_size=64 * 1024)
    assert (tmp_path / "out").read_bytes() == data
    assert saves and set(saves) == {f"{tmp_path / 'out'}.objget-ckpt"}


def test_a_data_file_left_without_a_checkpoint_is_started_over(tmp_path):
    """What a run killed before its first save leaves: the data file (preallocated, partly
    written) and maybe a live record, no checkpoint. The next run trusts none of it."""
    data = payload(MiB + 17)
    paths = Paths.beside(str(tmp_path / "out"))
    with open(paths.part, "wb") as f:
        f.write(data[:300_000])
        f.truncate(len(data))
    with open(paths.live, "wb") as f:
        f.write(b"an earlier run's live record\n")
    res = run(MemoryBackend({"k": data}), paths.dest)
    assert (tmp_path / "out").read_bytes() == data
    assert res.bytes_resumed == 0 and res.bytes_fetched == len(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
