"""Concurrency: two and four processes on one destination (exactly one runs, the others exit 7
with the lock message and write nothing); two destinations of one object at once (both
byte-identical)."""

from __future__ import annotations

import pytest

from ._harness import MiB, dest_wrong_bytes, kill, same, start

SIZE = 16 * MiB


@pytest.mark.parametrize("processes", [2, 4])
def test_one_destination_many_processes(web, make_object, tmp_path, summary, trials, processes):
    source = make_object("conc.bin", SIZE)
    url = f"{web.url}/conc.bin"
    row = f"concurrency: {processes} processes, one destination"
    for r in range(trials(2, 8)):
        dest = tmp_path / f"r{r}" / "conc.bin"
        dest.parent.mkdir()
        logs = [tmp_path / f"r{r}-{i}.log" for i in range(processes)]
        procs = [start([url, dest, "-q", "--limit-rate", "3M"], log) for log in logs]
        try:
            codes = [p.wait(timeout=120) for p in procs]
        finally:
            for p in procs:
                kill(p)
        texts = [log.read_text() for log in logs]
        losers = [t for c, t in zip(codes, texts, strict=True) if c == 7]
        clean = all(
            "another objget run is downloading to" in t and "objget-lock" in t for t in losers
        )
        ok = sorted(codes) == [0] + [7] * (processes - 1) and clean and same(dest, source)
        leftovers = sorted(p.name for p in dest.parent.iterdir())
        for c in codes:
            summary.trial(
                row,
                correct=ok and c == 0,
                typed=ok and c == 7,
                wrong_bytes=dest_wrong_bytes(dest, source),
            )
        assert ok, (codes, texts)
        assert leftovers == ["conc.bin"], leftovers


def test_two_destinations_of_one_object_at_once(web, make_object, tmp_path, summary, trials):
    source = make_object("conc.bin", SIZE)
    url = f"{web.url}/conc.bin"
    for r in range(trials(1, 5)):
        dests = [tmp_path / f"a{r}.bin", tmp_path / f"b{r}.bin"]
        procs = [
            start([url, dests[0], "-q", "-j", "4", "--limit-rate", "12M"], tmp_path / "a.log"),
            start([url, dests[1], "-q", "-j", "2", "--part-size", "1M"], tmp_path / "b.log"),
        ]
        try:
            codes = [p.wait(timeout=120) for p in procs]
        finally:
            for p in procs:
                kill(p)
        for d in dests:
            ok = codes == [0, 0] and same(d, source)
            summary.trial(
                "concurrency: two destinations, one object",
                correct=ok,
                wrong_bytes=dest_wrong_bytes(d, source),
            )
            assert ok, (codes, (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text())
