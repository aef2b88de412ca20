"""oss:// through the OSS-protocol test server (SeaweedFS behind it): DEST's mtime is the
object's Last-Modified and `--skip-existing` sends no GET; `--request-payer` in aws-cli's
spelling and the earlier bare flag (also in front of SOURCE, which it must not swallow)."""

from __future__ import annotations

import json
import os
import random

import pytest

from .._servers.oss_fixture import MiB, cli_env, gets, make_bucket, run_cli
from .._servers.oss_server import OssServer

BUCKET = "objget-sync-it"


@pytest.fixture(scope="module")
def stored(oss: OssServer) -> tuple[str, bytes]:
    oss.create_bucket(BUCKET)
    data = random.Random(17).randbytes(2 * MiB + 5)
    oss.put(BUCKET, "sync/obj.bin", data)
    return "sync/obj.bin", data


def test_oss_dest_mtime_and_skip_existing(oss, stored, tmp_path):
    key, data = stored
    dest = tmp_path / "obj.bin"
    first = run_cli([f"oss://{BUCKET}/{key}", str(dest), "--json"], cli_env(oss))
    assert first.returncode == 0, first.stderr
    assert dest.read_bytes() == data
    last_modified = make_bucket(oss, BUCKET).head_object(key).last_modified  # oss2: seconds
    assert int(dest.stat().st_mtime) == last_modified

    mark = len(oss.log)
    again = run_cli([f"oss://{BUCKET}/{key}", str(dest), "--skip-existing", "--json"], cli_env(oss))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skipped"] is True
    assert gets(oss, BUCKET, key, mark) == []

    os.utime(dest, (0, 0))
    mark = len(oss.log)
    third = run_cli([f"oss://{BUCKET}/{key}", str(dest), "--skip-existing", "--json"], cli_env(oss))
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["skipped"] is False
    assert gets(oss, BUCKET, key, mark)


@pytest.mark.parametrize(
    "spelling",
    [["--request-payer", "requester"], ["--request-payer=requester"], ["--request-payer"]],
)
def test_request_payer_spellings(oss, stored, tmp_path, spelling):
    key, data = stored
    out = tmp_path / "rp.bin"
    mark = len(oss.log)
    proc = run_cli([*spelling, f"oss://{BUCKET}/{key}", str(out)], cli_env(oss))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == data
    sent = [e.request.headers for e in oss.log[mark:] if e.request and e.request.key == key]
    assert sent and all(h.get("x-oss-request-payer") == "requester" for h in sent)


def test_request_payer_other_value_is_a_usage_error(oss, stored, tmp_path):
    key, _ = stored
    proc = run_cli(
        [f"oss://{BUCKET}/{key}", str(tmp_path / "x"), "--request-payer=owner"], cli_env(oss)
    )
    assert proc.returncode == 2 and "requester" in proc.stderr
