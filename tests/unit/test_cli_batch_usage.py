"""The batch forms' usage errors (`_cli_batch.BatchJob`): exit 2 with the message, before any
request and before anything is written."""

from __future__ import annotations

import pytest

from objget.cli import run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ray", "auto", "s3://bucket/prefix/", "{dir}"], "a prefix needs --recursive"),
        (["--manifest", "{manifest}", "{dir}", "{dir}/x"], "give only the destination directory"),
    ],
)
def test_batch_usage_errors_exit_2(tmp_path, capsys, args, message):
    manifest = tmp_path / "urls.txt"
    manifest.write_text("http://127.0.0.1:9/a.bin\n")  # port 9 (discard): never asked
    dest = tmp_path / "out"
    argv = [a.format(dir=dest, manifest=manifest) for a in args]
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert message in err and out == ""
    assert not dest.exists()


def test_a_manifest_names_the_destination_and_a_prefix_lists_into_it(tmp_path):
    from objget._config import DownloadConfig
    from objget.backends import BackendOptions
    from objget.cli._cli_batch import BatchJob

    common = {
        "include": (), "exclude": (), "dry_run": True, "ray_address": None,
        "config": DownloadConfig(), "options": BackendOptions(),
    }  # fmt: skip
    by_manifest = BatchJob(source="dir", dest=None, recursive=False, manifest="m", **common)
    assert (by_manifest.prefix, by_manifest.dest_dir) == (None, "dir")
    by_prefix = BatchJob(source="s3://b/p/", dest=None, recursive=True, manifest=None, **common)
    assert (by_prefix.prefix, by_prefix.dest_dir) == ("s3://b/p/", ".")
