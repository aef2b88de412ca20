"""objget.distributed on a local Ray cluster (`ray.init(num_cpus=2)`): the 1,999-object prefix
downloads byte-identically while a worker running one of our tasks is SIGKILLed by its PID
(found through Ray's state API); Ray re-runs the task and it resumes."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time

import pytest
import ray

from objget import DownloadConfig
from objget.backends import BackendOptions

from .._servers.util import free_port
from ._batch_data import PREFIX, Dataset, build

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OUR_TASKS = ("run_range", "run_group")


@pytest.fixture(scope="module")
def cluster():
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = tempfile.mkdtemp(prefix="objget-ray-")
    ray.init(
        num_cpus=2,
        include_dashboard=True,
        _node_ip_address="127.0.0.1",
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        log_to_driver=False,
        _temp_dir=temp,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


class Killer(threading.Thread):
    """Kills the worker process of a running objget task (range tasks first), until Ray shows
    a re-run attempt of one of them: the state API's RUNNING list may lag, so a kill can land on
    a worker whose task just ended (nothing to re-run); then the next running one is killed
    (at most `MOST` kills)."""

    MOST = 4

    def __init__(self) -> None:
        super().__init__(name="ray-killer")
        self.stop = threading.Event()
        self.killed: list[tuple[str, int]] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        from ray.util.state import list_tasks

        start = time.monotonic()
        try:
            while not self.stop.is_set() and time.monotonic() < start + 120:
                if self.killed and _rerun_seen():
                    return
                if len(self.killed) < self.MOST:
                    tasks = list_tasks(
                        address=_address(), filters=[("state", "=", "RUNNING")], timeout=10
                    )
                    ours = [t for t in tasks if t.name in OUR_TASKS and t.worker_pid]
                    ours.sort(key=lambda t: t.name != "run_range")
                    if ours and (ours[0].name == "run_range" or time.monotonic() > start + 3):
                        try:
                            os.kill(ours[0].worker_pid, signal.SIGKILL)
                        except ProcessLookupError:  # it finished between the query and the kill
                            continue
                        self.killed.append((ours[0].name, ours[0].worker_pid))
                        self.stop.wait(1.0)  # the state API reports the re-run in a moment
                        continue
                self.stop.wait(0.1)
        except BaseException as exc:
            self.errors.append(exc)


def _address() -> str:
    """This test's cluster (another Ray instance on the machine makes "auto" ambiguous)."""
    return str(ray.get_runtime_context().gcs_address)


def _rerun_seen() -> bool:
    from ray.util.state import list_tasks

    tasks = list_tasks(address=_address(), limit=10000, timeout=10)
    return any(t.name in OUR_TASKS and t.attempt_number > 0 for t in tasks)


def test_prefix_on_ray_survives_a_killed_worker(cluster, seaweed, tmp_path):
    from objget.distributed import download_many

    dataset: Dataset = build(seaweed)
    killer = Killer()
    killer.start()
    try:
        result = download_many(
            f"s3://test/{PREFIX}",
            tmp_path / "out",
            options=BackendOptions(endpoint=seaweed.s3_url, anonymous=True),
            range_size=4 * 1024 * 1024,
            group_size=100,
            task_connections=2,
            # each task at 4 MiB/s: a range task runs ~1 s, long enough for the state API to
            # show it RUNNING (unthrottled, the whole batch could end before it showed any)
            config=DownloadConfig(limit_rate=4 * 1024 * 1024),
        )
    finally:
        killer.stop.set()
        killer.join(timeout=60)
    assert not killer.errors, killer.errors
    assert killer.killed, "no objget task was seen running"
    assert [f.error for f in result.failed] == []
    assert len(result.downloaded) == 1999
    dataset.check(tmp_path / "out")
    leftovers = [n for _, _, files in os.walk(tmp_path / "out") for n in files if ".objget-" in n]
    assert leftovers == [], leftovers  # a batch in which every object succeeded leaves DIR clean

    from ray.util.state import list_tasks

    attempts = list_tasks(address=_address(), limit=10000, timeout=10)
    assert any(t.name in OUR_TASKS and t.attempt_number > 0 for t in attempts), (
        f"Ray re-ran none of our tasks after {len(killer.killed)} kill(s)"
    )


def test_cli_ray_auto_joins_the_running_cluster(cluster, seaweed, tmp_path):
    import json
    import subprocess
    import sys

    data = {f"bray/sub/{i:02d}.bin": os.urandom(100 * i) for i in range(20)}
    for key, value in data.items():
        seaweed.put("test", key, value)
    env = dict(os.environ)
    env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    cmd = [
        sys.executable, "-m", "objget", "--recursive", "--ray", "auto", "--json",
        "--endpoint-url", seaweed.s3_url, "--no-sign-request", "s3://test/bray/",
        str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["downloaded"] == 20 and summary["failed"] == 0
    for key, value in data.items():
        assert (tmp_path / "out" / key[len("bray/") :]).read_bytes() == value
    assert [p.name for p in (tmp_path / "out").iterdir() if ".objget-" in p.name] == []


def test_range_checkpoint_of_a_lost_node_with_lost_bytes_is_not_trusted(cluster, seaweed, tmp_path):
    """Every range task of an object finished and checkpointed, then its node and the driver
    were lost, and the shared file system kept zeros where one range's bytes were (a write it
    never stored). The next run's task for that range reads its resumed spans back and fetches
    the bad one again: the object is byte-identical, not committed "verified" with zeros."""
    from objget._config import DownloadConfig
    from objget.backends import resolve
    from objget.backends._transport import Transport
    from objget.distributed import RangeJob, download_many, picklable, run_range
    from objget.engine._fileio import open_part

    mib = 1024 * 1024
    size, rng_size = 8 * mib, 2 * mib
    data = os.urandom(size)
    seaweed.put("test", "rlost/obj.bin", data)
    options = BackendOptions(endpoint=seaweed.s3_url, anonymous=True)
    dest = tmp_path / "out" / "obj.bin"
    dest.parent.mkdir()
    source = "s3://test/rlost/obj.bin"
    transport = Transport(DownloadConfig())
    try:
        found = resolve(source, transport, options, {})
        meta = found.backend.head(found.key)
    finally:
        transport.close()
    fd = open_part(f"{dest}.objget-part", fresh=True)
    os.ftruncate(fd, size)
    os.close(fd)
    for start in range(0, size, rng_size):  # the lost run: every range done and checkpointed
        job = RangeJob(source=source, dest=str(dest), start=start, stop=start + rng_size,
                       meta=picklable(meta))  # fmt: skip
        assert run_range(job, DownloadConfig(), options).error is None
    with open(f"{dest}.objget-part", "r+b") as f:  # what the lost node's disk never got
        f.seek(rng_size + 12345)
        f.write(bytes(64 * 1024))
    result = download_many(
        "s3://test/rlost/", tmp_path / "out", options=options, range_size=rng_size,
        task_connections=2,
    )  # fmt: skip
    assert [f.error for f in result.failed] == []
    assert len(result.downloaded) == 1
    assert dest.read_bytes() == data
    fetched = result.downloaded[0].result.bytes_fetched
    assert 0 < fetched <= rng_size, fetched  # only the bad span of that range came again
