"""Aggregate runs into table rows (median, paired ratio to curl, spread...) and check targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.model import GiB, MiB

REFERENCE = "curl"


@dataclass(frozen=True, kw_only=True)
class Row:
    scenario: str
    group: str
    tool: str
    label: str
    family: str
    size: int
    median: float | None
    mib_s: float | None
    x_curl: float | None
    rss_mib: float | None
    verified: str
    wall: float | None
    lo: float | None
    hi: float | None
    spread: float | None
    client_cpu: float | None
    cpu_per_gib: float | None
    server_cpu: float | None
    ok: int
    runs: int
    objects_s: float | None = None


def _med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _by_rep(records: list[dict[str, Any]], tool: str) -> dict[int, float]:
    return {r["rep"]: r["seconds"] for r in records if r["tool"] == tool and r["ok"]}


def paired_ratio(records: list[dict[str, Any]], num: str, den: str) -> float | None:
    """median over repetitions of time(num) / time(den): >1 means `den` is faster. In a
    repetition where `num` did not run (see `Row.reps`), its median stands in."""
    a, b = _by_rep(records, num), _by_rep(records, den)
    fill = _med(list(a.values()))
    if fill is None:
        return None
    ratios = [a.get(k, fill) / b[k] for k in b if b[k] > 0]
    return _med(ratios)


def group_rows(records: list[dict[str, Any]]) -> list[Row]:
    """Rows of one (scenario, group) table, fastest first, limit rows last, failures at the end."""
    rows = []
    tools: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        tools.setdefault(r["tool"], []).append(r)
    for tool, runs in tools.items():
        ok = [r for r in runs if r["ok"]]
        secs = [r["seconds"] for r in ok]
        med = _med(secs)
        size = runs[0]["size"]
        rss = [r["rss_kib"] for r in runs if r["rss_kib"] is not None]
        cpu = _med([r["client_cpu"] for r in ok if r["client_cpu"] is not None])
        checks = {r["verified"] for r in runs}
        verified = "n/a" if checks == {None} else ("yes" if checks == {True} else "NO")
        count = (runs[0].get("extra") or {}).get("count")
        rows.append(Row(
            scenario=runs[0]["scenario"], group=runs[0]["group"], tool=tool,
            label=runs[0]["label"], family=runs[0]["family"], size=size, median=med,
            mib_s=size / MiB / med if med else None,
            x_curl=paired_ratio(records, REFERENCE, tool),
            rss_mib=max(rss) / 1024 if rss else None, verified=verified,
            wall=_med([r["wall"] for r in ok]), lo=min(secs) if secs else None,
            hi=max(secs) if secs else None,
            spread=(max(secs) - min(secs)) / med * 100 if med else None,
            client_cpu=cpu, cpu_per_gib=cpu / (size / GiB) if cpu is not None else None,
            server_cpu=_med([r["server_cpu"] for r in ok if r["server_cpu"] is not None]),
            ok=len(ok), runs=len(runs),
            objects_s=count / med if count and med else None,
        ))  # fmt: skip

    def key(row: Row) -> tuple[int, float]:
        return (2 if row.median is None else 1 if row.family == "limit" else 0,
                row.median or 0.0)  # fmt: skip

    return sorted(rows, key=key)


def tables(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[Row]]:
    """(scenario, group) -> rows, in the order the groups first ran."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        grouped.setdefault((r["scenario"], r["group"]), []).append(r)
    return {k: group_rows(v) for k, v in grouped.items()}


def _find(rows: list[Row], tool: str) -> Row | None:
    return next((r for r in rows if r.tool == tool), None)


def targets(
    records: list[dict[str, Any]], resume: list[dict[str, Any]]
) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the issue #7/#10/#16 targets that this run can judge."""
    out: list[tuple[str, str, str]] = []
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        grouped.setdefault((r["scenario"], r["group"]), []).append(r)

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    def ratio_line(name: str, recs: list[dict[str, Any]], num: str, den: str, goal: float) -> None:
        v = paired_ratio(recs, num, den)
        out.append((f"{name} ≥ {goal}", "n/a" if v is None else f"{v:.2f}",
                    verdict(None if v is None else v >= goal)))  # fmt: skip

    for (scen, group), recs in grouped.items():
        size = recs[0]["size"]
        if scen == "loopback":
            rows = group_rows(recs)
            present = {r.tool for r in rows if r.median}
            # issue 16: the CLI, whole process, from SeaweedFS (S3) and from nginx (curl -> file)
            goal = {8 * MiB: 0.3, 256 * MiB: 1.3, GiB: 1.0}.get(size)
            nginx_goal = {8 * MiB: 0.3, 256 * MiB: 1.3, GiB: 1.8}.get(size)
            if goal is not None and {"curl", "objget"} <= present:
                ratio_line(f"loopback {group}: objget CLI x curl", recs, "curl", "objget", goal)
            if nginx_goal is not None and {"nginx-curl", "nginx-objget"} <= present:
                ratio_line(f"loopback {group}: [nginx] objget CLI x curl -> file", recs,
                           "nginx-curl", "nginx-objget", nginx_goal)  # fmt: skip
            obj = _find(rows, "objget")
            fixed = [r for r in rows if r.tool.startswith("objget-j") and r.median]
            if obj and obj.median and fixed:
                best = min(fixed, key=lambda r: r.median or 0)
                ratio_line(f"loopback {group}: no -j vs best fixed ({best.tool})", recs,
                           best.tool, "objget", 0.95)  # fmt: skip
            boto = _find(rows, "boto3")
            if size == GiB and obj and boto and boto.median:
                ratio_line(f"loopback {group}: objget CLI x boto3 download_file", recs,
                           "boto3", "objget", 2.5)  # fmt: skip
                if obj.rss_mib is not None and boto.rss_mib is not None:
                    out.append(("s3:// 1 GiB: objget peak RSS ≤ half of boto3's",
                                f"{obj.rss_mib:.0f} vs {boto.rss_mib:.0f} MiB",
                                verdict(obj.rss_mib * 2 <= boto.rss_mib)))  # fmt: skip
            if size == GiB and obj:
                if obj.rss_mib is not None:
                    out.append(("CLI peak RSS at 1 GiB ≤ 48 MiB", f"{obj.rss_mib:.0f} MiB",
                                verdict(obj.rss_mib <= 48)))  # fmt: skip
                for ours, ref in (("objget", "curl"), ("nginx-objget", "nginx-curl")):
                    a, b = _find(rows, ours), _find(rows, ref)
                    if a and b and a.client_cpu is not None and b.client_cpu:
                        v = a.client_cpu / b.client_cpu
                        out.append((f"client CPU at 1 GiB: {ours} ≤ 1.0× {ref}'s",
                                    f"{a.client_cpu:.2f} vs {b.client_cpu:.2f} s = {v:.2f}×",
                                    verdict(v <= 1.0)))  # fmt: skip
            for threads, part in (("4", ""), ("16", ""), ("16", "-p64M")):
                ours, theirs = f"objget-resumable-t{threads}{part}", f"oss2-t{threads}{part}"
                if _find(rows, ours) and _find(rows, theirs) and size >= 256 * MiB:
                    ratio_line(f"loopback {group}: objget.resumable_download vs oss2 "
                               f"t{threads}{part}", recs, theirs, ours, 5.0)  # fmt: skip
        elif scen == "wan" and (
            size >= 256 * MiB or ("limit_rate 4m" in group and size >= 64 * MiB)
        ):
            # issue 16: at 4 MB/s per connection, from 64 MiB on; before it: 512 MiB at 20m
            x_curl, x_aria = (12.0, 1.3) if "limit_rate 4m" in group else (10.0, 1.05)
            ratio_line(f"wan {group}: objget (no -j) x curl", recs, "curl", "objget", x_curl)
            ratio_line(f"wan {group}: objget (no -j) x aria2c -x16", recs, "aria2c-x16",
                       "objget", x_aria)  # fmt: skip
            if _find(group_rows(recs), "objget-base"):
                ratio_line(f"wan {group}: objget (no -j) x --baseline objget", recs,
                           "objget-base", "objget", 1.0)  # fmt: skip
        elif scen == "https" and size >= GiB:
            ratio_line(f"https {group}: objget x curl", recs, "curl", "objget", 1.3)  # issue 16
            rows = group_rows(recs)
            c, o = _find(rows, "curl"), _find(rows, "objget")
            if c and o and c.client_cpu and o.client_cpu is not None:
                v = o.client_cpu / c.client_cpu
                out.append((f"https {group}: objget client CPU ≤ 1.2× curl's", f"{v:.2f}×",
                            verdict(v <= 1.2)))  # fmt: skip
        elif scen == "many":  # issue 16: the client's CPU per object, start-up included
            if _find(group_rows(recs), "rclone-16"):
                ratio_line(f"many {group}: objget --recursive x rclone --transfers 16", recs,
                           "rclone-16", "objget-recursive", 1.1)  # fmt: skip
            for row in group_rows(recs):
                count = (recs[0].get("extra") or {}).get("count")
                if (
                    row.tool in ("objget-recursive", "objget-manifest")
                    and count
                    and (row.client_cpu is not None)
                ):
                    ms = row.client_cpu / count * 1000
                    out.append((f"many {group}: {row.tool} client CPU ≤ 0.5 ms per object",
                                f"{ms:.2f} ms", verdict(ms <= 0.5)))  # fmt: skip
    rss = {recs[0]["size"]: _find(group_rows(recs), "objget")
           for (scen, _), recs in grouped.items() if scen == "loopback"}  # fmt: skip
    small, big = rss.get(256 * MiB), rss.get(GiB)
    if small and big and small.rss_mib and big.rss_mib:
        out.append(("CLI peak RSS unchanged 256 MiB → 1 GiB (within 10%)",
                    f"{small.rss_mib:.1f} → {big.rss_mib:.1f} MiB",
                    verdict(big.rss_mib <= small.rss_mib * 1.1)))  # fmt: skip
    big_rows = next((group_rows(recs) for (scen, _), recs in grouped.items()
                     if scen == "loopback" and recs[0]["size"] == GiB), [])  # fmt: skip
    one, most = _find(big_rows, "objget-j1"), _find(big_rows, "objget-j16")
    if one and most and one.rss_mib and most.rss_mib:  # issue 16: flat as streams are added
        out.append(("CLI peak RSS at 1 GiB: -j16 within 10% of -j1",
                    f"{one.rss_mib:.1f} → {most.rss_mib:.1f} MiB",
                    verdict(most.rss_mib <= one.rss_mib * 1.1)))  # fmt: skip
    for tool in ("objget-j16", "objget"):
        vals = [r["refetched"] for r in resume
                if r["tool"] == tool and r["killed"] and r["size"] >= GiB]  # fmt: skip
        if vals:
            v = max(vals)
            out.append((f"resume: {tool} refetched ≤ 62% (worst rep)", f"{v:.0%}",
                        verdict(v <= 0.62)))  # fmt: skip
    return out
