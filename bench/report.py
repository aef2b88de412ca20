"""Write report.md from the raw results (tables, resume, many, targets, commands, versions)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.model import PYTHON, REPO, human_size
from bench.stats import Row, tables, targets

METHOD = """\
Method (as in the peer benchmark): servers run on 127.0.0.1 in a fresh temp dir; every object
is uploaded once with one PutObject; client and server share the same 2 vCPUs. For each
repetition and each size, every tool runs once, in an order rotated per repetition (interleaved,
not blocks). The destination is a fresh, non-existent file; after each run it is compared byte
for byte with the uploaded object (small objects of `many`: by sha256),
deleted, and `sync` is called (untimed). `median s` = the download call for the Python tools
(in-process; imports and client construction excluded), the whole process for CLIs (objget's CLI
includes interpreter start-up); `wall s` = whole process. `x curl` = median over repetitions of
(curl time / tool time) in the same repetition (paired; >1 = faster than curl). Peak RSS =
`/usr/bin/time %M` of the process (max over runs). Client CPU = user+sys of the tool's process
tree (whole process); server CPU = user+sys of the server's process tree during the run (median);
spread % = (max−min)/median.
"""

_HEAD = ("| tool | median s | MiB/s | x curl | peak RSS MiB | verified | wall s | min–max s | "
         "spread % | client CPU s | CPU s/GiB | server CPU s | ok/runs |")  # fmt: skip


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _row(r: Row) -> str:
    rng = f"{_f(r.lo)}–{_f(r.hi)}" if r.lo is not None else "–"
    return (f"| {r.label} | {_f(r.median)} | {_f(r.mib_s, '.0f')} | {_f(r.x_curl, '.2f')} | "
            f"{_f(r.rss_mib, '.0f')} | {r.verified} | {_f(r.wall)} | {rng} | "
            f"{_f(r.spread, '.0f')} | {_f(r.client_cpu, '.2f')} | {_f(r.cpu_per_gib, '.2f')} | "
            f"{_f(r.server_cpu, '.2f')} | {r.ok}/{r.runs} |")  # fmt: skip


def _noise(records: list[dict[str, Any]]) -> str:
    """How busy the rest of the machine was during these runs (cores used by other processes)."""
    load = sorted(r["other_cpu"] / r["wall"] for r in records
                  if r.get("other_cpu") is not None and r["wall"])  # fmt: skip
    if not load:
        return ""
    med = load[len(load) // 2]
    warn = " — **busy machine: these timings are noisy**" if med > 0.25 else ""
    return (f"Other load during these runs (busy CPU not from the tool or the server, per second "
            f"of run): median {med:.2f} cores, max {load[-1]:.2f} cores{warn}.")  # fmt: skip


def _many_table(rows: list[Row]) -> list[str]:
    lines = [
        "| tool | median s | objects/s | MiB/s | x curl | peak RSS MiB | verified | "
        "client CPU s | server CPU s | ok/runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.label} | {_f(r.median)} | {_f(r.objects_s, '.0f')} | "
                     f"{_f(r.mib_s, '.0f')} | {_f(r.x_curl, '.2f')} | {_f(r.rss_mib, '.0f')} | "
                     f"{r.verified} | {_f(r.client_cpu, '.2f')} | {_f(r.server_cpu, '.2f')} | "
                     f"{r.ok}/{r.runs} |")  # fmt: skip
    return lines


def _bytes(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    return f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def _resume_table(resume: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| tool | rep | fetched before kill | left on disk after kill | re-fetched on restart | "
        "resumed? | restart s | kill-phase s + restart s | uninterrupted s (proxy) | "
        "final verified |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(resume, key=lambda x: (x["label"], x["rep"])):
        left = ", ".join(f"{Path(n).name} ({_bytes(s)})" for n, s in r["left_on_disk"])
        if not r["killed"]:
            left = "(not killed: it finished or failed before 40%)"
        resumed = "yes" if r["killed"] and r["refetched"] < 0.9 else "no"
        total = r["kill_phase_s"] + r["restart_s"]
        lines.append(f"| {r['label']} | {r['rep'] + 1} | {r['fetched_before_kill']:.0%} | "
                     f"{left or '(nothing)'} | {r['refetched']:.0%} | {resumed} | "
                     f"{r['restart_s']:.2f} | {total:.2f} | {_f(r['uninterrupted_s'], '.2f')} | "
                     f"{'yes' if r['final_ok'] else 'NO'} |")  # fmt: skip
    return lines


def scrub(cmd: str, workdir: str) -> str:
    """Machine-specific paths and ports out of a command (or any text) of a run."""
    cmd = cmd.replace(workdir + "/dst", "DST").replace(workdir + "/store", "STORE")
    cmd = cmd.replace(workdir, "RUN").replace(PYTHON, "python").replace(str(REPO) + "/", "")
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", cmd)


def _pages(meta: dict[str, Any]) -> str:
    """The memory state runs started from (bench/pages.py), and what the guest handed back."""
    mode = meta.get("pages", "as-is")
    said = (
        "Pages: warm (before each timed run, as much memory as it writes was populated and "
        "freed: bench/pages.py)."
        if mode == "warm"
        else "Pages: as-is (each run took the memory the run before left: bench/pages.py)."
    )
    start, end = meta.get("reported_kib_start"), meta.get("reported_kib_end")
    if isinstance(start, int) and isinstance(end, int):
        said += f" Free memory handed back to the host during the run: {(end - start) // 1024} MiB."
    return said


def write(out: Path, data: dict[str, Any], charts: dict[str, str]) -> Path:
    records, resume = data["records"], data["resume"]
    meta = data["meta"]
    lines = [
        "# objget peer benchmark", "",
        f"Run {meta['started']} on {meta['versions'].get('cpu')}, "
        f"{meta['versions'].get('memory')} RAM, kernel {meta['versions'].get('kernel')}. "
        f"Command: `{meta['command']}`. Repetitions: {meta['reps']}. "
        f"Whole run: {meta['wall_s'] / 60:.1f} min "
        f"({', '.join(f'{k} {v / 60:.1f}' for k, v in meta['scenario_s'].items())}). "
        f"Load average at start / end: {meta['load_start']} / {meta['load_end']}. "
        f"{_pages(meta)}", "",
        f"Servers: {meta['servers']}.", "", METHOD,
    ]  # fmt: skip
    if meta.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in meta["notes"]], ""]
    checks = targets(records, resume)
    if checks:
        lines += [
            "## Targets (issues 7, 10 and 16)",
            "",
            "| target | measured | verdict |",
            "|---|---|---|",
            *[f"| {a} | {b} | {c} |" for a, b, c in checks],
            "",
        ]
    current = None
    for (scen, group), rows in tables(records).items():
        if scen != current:
            lines += [f"## {meta['scenario_titles'].get(scen, scen)}", ""]
            current = scen
        lines += [f"### {group}", ""]
        lines += _many_table(rows) if scen == "many" else [_HEAD, "|---" * 13 + "|",
                                                           *map(_row, rows)]  # fmt: skip
        lines += ["", _noise([r for r in records if r["scenario"] == scen and r["group"] == group])]
        chart = charts.get(f"{scen}/{group}")
        lines += ["", f"![{scen} {group}]({chart})" if chart else "", ""]
        failed = [r for r in records if r["scenario"] == scen and r["group"] == group
                  and not r["ok"]]  # fmt: skip
        for r in failed:
            lines.append(f"- failed: {r['label']} rep {r['rep'] + 1}: {r['error']}")
        if failed:
            lines.append("")
    if resume:
        size = human_size(resume[0]["size"])
        lines += [f"## {meta['scenario_titles']['resume']}", "",
                  f"Object {size}; every command goes through a byte-counting TCP proxy on "
                  "127.0.0.1 (so times are slower than the loopback table); the tool's process "
                  "group gets SIGKILL once the proxy has delivered 40% of the object; then the "
                  "identical command runs again. `re-fetched` = bytes the server sent during "
                  "the second run / object size (ideal ≈ 1 − fetched-before-kill).", "",
                  *_resume_table(resume), ""]  # fmt: skip
        if charts.get("resume"):
            lines += [f"![resume]({charts['resume']})", ""]
    if meta.get("skipped"):
        lines += ["## Rows not run", "", *[f"- {k}: {v}" for k, v in meta["skipped"].items()], ""]
    lines += ["## Exact commands", "",
              "Placeholders: `RUN` = the run's temp dir, `DST` = RUN/dst, `STORE` = RUN/store, "
              "`PORT` = the free port the server got; `python` = the venv's interpreter; "
              "bench/peer_runner.py times only the download call.", ""]  # fmt: skip
    for scen, cmds in meta["commands"].items():
        lines += [f"### {scen}", "", "```"]
        for label, cmd in cmds.items():
            lines += [f"# {label}", scrub(cmd, meta["workdir"])]
        lines += ["```", ""]
    lines += ["## Versions", "", *[f"- {k}: `{v}`" for k, v in meta["versions"].items()], ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
