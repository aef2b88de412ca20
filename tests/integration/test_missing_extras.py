"""A missing optional extra (botocore, fastcrc) ends the command with exit 2 (usage) and one
line naming the extra to install, never a traceback (issue 14 item 9). The extra is hidden
from the subprocess by `sys.modules[name] = None`, which makes every import of it fail."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from .._servers.oss_fixture import cli_env

WRAPPER = (
    "import sys; sys.modules[sys.argv.pop(1)] = None; sys.argv[0] = 'objget'; "
    "from objget.cli import main; main()"
)
REPO = Path(__file__).resolve().parents[2]


def without(module: str, *args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    env = dict(env or os.environ)
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, module, *(str(a) for a in args)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


def assert_names_the_extra(code: int, err: str, extra: str) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert f"pip install 'objget[{extra}]'" in err, err
    assert err.startswith("objget: "), err


@pytest.mark.parametrize(
    "args",
    [
        ["s3://bucket/key.bin", "{tmp}/out.bin"],
        ["s3://bucket/key.bin", "{tmp}/out.bin", "--no-sign-request"],
        ["--recursive", "s3://bucket/prefix/", "{tmp}/dir/"],
        ["--manifest", "{tmp}/list.txt", "{tmp}/dir/"],
    ],
    ids=["single", "single-anonymous", "batch-recursive", "batch-manifest"],
)
def test_s3_without_botocore(args, tmp_path):
    (tmp_path / "list.txt").write_text("s3://bucket/a.bin\ns3://bucket/b.bin\n")
    argv = [a.format(tmp=tmp_path) for a in args]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x" * 20}
    code, err = without("botocore", *argv, "-q", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert_names_the_extra(code, err, "s3")
    assert not (tmp_path / "out.bin").exists()


def test_oss_without_fastcrc(oss, tmp_path):
    oss.create_bucket("extras")
    data = random.Random(9).randbytes(300_000)
    oss.put("extras", "p/o.bin", data)
    env = cli_env(oss)
    code, err = without("fastcrc", "oss://extras/p/o.bin", tmp_path / "o.bin", "-q", env=env)
    assert_names_the_extra(code, err, "oss")
    assert not (tmp_path / "o.bin").exists()
    (tmp_path / "list.txt").write_text("oss://extras/p/o.bin\n")
    code, err = without("fastcrc", "--manifest", tmp_path / "list.txt", tmp_path / "d", "-q",
                        env=env)  # fmt: skip
    assert_names_the_extra(code, err, "oss")
    assert not (tmp_path / "d" / "o.bin").exists()
