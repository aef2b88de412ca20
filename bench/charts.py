"""PNG bar charts (matplotlib, Agg backend): one per table, plus the resume chart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.stats import Row, tables

COLORS = {"objget": "#d9480f", "reference": "#1c7ed6", "peer": "#868e96", "limit": "#c5d0da"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _bar_chart(path: Path, title: str, rows: list[Row], *, many: bool) -> None:
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.median]
    labels = [r.label for r in rows][::-1]
    values = [(r.objects_s if many else r.mib_s) or 0.0 for r in rows][::-1]
    colors = [COLORS.get(r.family, "#868e96") for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.4))
    bars = ax.barh(labels, values, color=colors)
    for bar, r in zip(bars, rows[::-1], strict=True):
        note = f" {bar.get_width():.0f}"
        if r.x_curl is not None:
            note += f"  ({r.x_curl:.2f}× curl)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, note, va="center",
                fontsize=8)  # fmt: skip
    ax.set_xlabel("objects/s (median)" if many else "MiB/s (median)")
    ax.set_title(title, fontsize=11)
    ax.set_xlim(0, max([*values, 1e-9]) * 1.3)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _resume_chart(path: Path, resume: list[dict[str, Any]]) -> None:
    import matplotlib.pyplot as plt

    by: dict[str, list[dict[str, Any]]] = {}
    for r in resume:
        by.setdefault(r["label"], []).append(r)
    labels = list(by)[::-1]
    refetch = [max(x["refetched"] for x in by[k]) * 100 for k in labels]
    before = [min(x["fetched_before_kill"] for x in by[k]) * 100 for k in labels]
    fam = [by[k][0]["family"] for k in labels]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.4))
    ax.barh(labels, refetch, color=[COLORS.get(f, "#868e96") for f in fam])
    for i, (v, b) in enumerate(zip(refetch, before, strict=True)):
        ax.text(v, i, f" {v:.0f}% (killed at {b:.0f}%)", va="center", fontsize=8)
    ax.axvline(60, color="#2b8a3e", linestyle="--", linewidth=1)
    ax.set_xlabel("re-fetched on restart, % of object (worst repetition; ideal ≈ 60%)")
    ax.set_title("Resume after SIGKILL at 40%", fontsize=11)
    ax.set_xlim(0, max([*refetch, 100.0]) * 1.35)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(out: Path, data: dict[str, Any]) -> dict[str, str]:
    """Write the PNGs into `out`; returns key -> file name for the report's image links."""
    import matplotlib

    matplotlib.use("Agg")
    made: dict[str, str] = {}
    for (scen, group), rows in tables(data["records"]).items():
        name = f"{_slug(scen)}-{_slug(group)}.png"
        title = f"{scen} — {group}"
        _bar_chart(out / name, title, rows, many=scen == "many")
        made[f"{scen}/{group}"] = name
    if data["resume"]:
        _resume_chart(out / "resume.png", data["resume"])
        made["resume"] = "resume.png"
    return made
