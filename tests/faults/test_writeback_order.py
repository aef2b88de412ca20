"""Write-back beside the download changes no durability order: under strace, the part file's
write-back is started while bytes still arrive (`sync_file_range`), and its last `fsync` still
comes before the rename onto DEST, after every `pwrite64` to it."""

from __future__ import annotations

import re

from ._harness import MiB, run, same

SIZE = 96 * MiB
_CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)")


def test_part_file_synced_before_rename_with_write_back_started_early(
    web, make_object, tmp_path, summary
):
    source = make_object("writeback.bin", SIZE)
    dest = tmp_path / "writeback.bin"
    trace = tmp_path / "trace"
    done = run(
        [f"{web.url}/writeback.bin", dest, "-q", "-j", "2"],
        prefix=[
            "strace",
            "-f",
            "-qq",
            "-o",
            str(trace),
            "-e",
            "trace=openat,pwrite64,sync_file_range,fsync,fdatasync,rename",
        ],
    )
    assert done.rc == 0, done.err
    part_fd = None
    events: list[tuple[str, str]] = []
    for line in trace.read_text().splitlines():
        m = _CALL.match(line)
        if not m:
            continue
        name, args = m.group(2), m.group(3)
        if name == "openat" and ".objget-part" in args and "O_CREAT" in args:
            part_fd = args.rsplit("= ", 1)[-1].strip()
            continue
        if part_fd is not None and re.match(rf"{part_fd}[,) ]", args):
            events.append((name, args))
        elif name == "rename" and ".objget-part" in args.split(",")[0]:
            events.append((name, args))
            break  # the part fd is closed by now; its number may be reused
    assert part_fd is not None, "the part file's open was not traced"
    names = [n for n, _ in events]
    assert names.count("rename") == 1, names[-5:]
    at_rename = names.index("rename")
    last_write = max(i for i, n in enumerate(names) if n == "pwrite64")
    last_fsync = max((i for i, n in enumerate(names) if n == "fsync"), default=-1)
    started = [i for i, n in enumerate(names) if n == "sync_file_range"]
    ok = last_write < last_fsync < at_rename and started and started[0] < last_write
    summary.trial(
        "crash points: write-back order under strace", correct=bool(ok and same(dest, source))
    )
    assert started, "no write-back was started during the download"
    assert started[0] < last_write, "write-back started only after the last byte"
    assert last_write < last_fsync < at_rename, names[last_write - 2 : at_rename + 1]
    assert same(dest, source)
