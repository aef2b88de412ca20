"""One `download_many` for local and Ray: `objget.download_many(..., runner=RayRunner(...))`,
with Ray replaced by an in-process stand-in (`tests.faults._ray_inline`), on a SeaweedFS
prefix: small objects go in group tasks, a large one in range tasks (the engine's
window phases) that the driver finishes (the engine's finish); `objget.distributed.download_many`
is the same call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import objget
from objget import distributed
from objget.backends import BackendOptions
from objget.distributed import RayRunner

from ..faults._ray_inline import InlineRay

MiB = 1024 * 1024


@pytest.fixture
def inline_ray(monkeypatch):
    ray = InlineRay(2)
    monkeypatch.setattr(distributed, "import_ray", lambda: ray)
    yield ray
    ray.shutdown()


@pytest.fixture
def served(seaweed, request):
    """Three small objects and one of 3 MiB (three ranges of 1 MiB) under a prefix of their
    own: the prefix, and each file name with its bytes."""
    prefix = f"runner-{request.node.name[-40:]}/"
    objects = {f"s{i}.bin": os.urandom(1000 + i) for i in range(3)}
    objects["big.bin"] = os.urandom(3 * MiB)
    for name, data in objects.items():
        seaweed.put("test", prefix + name, data)
    return f"s3://test/{prefix}", BackendOptions(endpoint=seaweed.s3_url, anonymous=True), objects


def check(out: Path, objects: dict[str, bytes], result: objget.BatchResult) -> None:
    assert sorted(r.status for r in result.objects) == ["downloaded"] * 4, result.objects
    for name, data in objects.items():
        assert (out / name).read_bytes() == data
    big = next(r for r in result.objects if r.source.endswith("/big.bin"))
    assert big.result is not None and big.result.workers == 3  # finished from three ranges
    assert sorted(p.name for p in out.iterdir()) == sorted(objects)  # no side files left


def test_download_many_runs_on_the_ray_runner_it_is_given(tmp_path, served, inline_ray):
    prefix, options, objects = served
    out = tmp_path / "out"
    config = objget.DownloadConfig(part_size=256 * 1024)
    runner = RayRunner(range_size=1 * MiB, task_connections=2)
    result = objget.download_many(prefix, out, config=config, options=options, runner=runner)
    check(out, objects, result)


def test_distributed_download_many_is_download_many_with_a_ray_runner(tmp_path, served, inline_ray):
    prefix, options, objects = served
    out = tmp_path / "out"
    seen: list[objget.ObjectResult] = []
    result = distributed.download_many(
        prefix, out, options=options, range_size=1 * MiB, task_connections=2,
        on_result=seen.append,
    )  # fmt: skip
    check(out, objects, result)
    assert sorted(r.source for r in seen) == sorted(r.source for r in result.objects)
    again = distributed.download_many(prefix, out, options=options, range_size=1 * MiB)
    assert [r.status for r in again.objects] == ["skipped"] * 4


def test_a_dry_run_on_ray_needs_no_ray(tmp_path, served, monkeypatch):
    def no_ray() -> None:
        raise ImportError("no ray here")

    prefix, options, _ = served
    monkeypatch.setattr(distributed, "import_ray", no_ray)
    result = distributed.download_many(prefix, tmp_path / "out", options=options, dry_run=True)
    assert [r.status for r in result.objects] == ["planned"] * 4
    with pytest.raises(ValueError, match="range_size"):
        RayRunner(range_size=1024)


def test_the_driver_journals_a_group_tasks_objects_in_one_commit(
    tmp_path, served, inline_ray, monkeypatch
):
    """The three small objects come back from one group task: their rows are written in one
    journal commit, not one each (the large object's own rows are separate)."""
    from objget.many._batch_journal import Journal

    prefix, options, objects = served
    commits: list[list[str]] = []
    real = Journal.put

    def put(self, rows):
        commits.append(sorted(os.path.basename(r.dest) for r in rows if r.state == "done"))
        real(self, rows)

    monkeypatch.setattr(Journal, "put", put)
    out = tmp_path / "out"
    runner = RayRunner(range_size=1 * MiB, task_connections=2)
    result = objget.download_many(prefix, out, options=options, runner=runner)
    check(out, objects, result)
    assert ["s0.bin", "s1.bin", "s2.bin"] in commits, commits
