"""The report's charts, drawn with matplotlib's Agg backend (no display) and saved as PNG files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from content_arena.report.data import ReportData

DPI = 110


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def version_label(data: ReportData, version: int) -> str:
    info = next((v for v in data.versions if v.version == version), None)
    tag = ""
    if info is not None:
        tag = "champion" if "champion" in info.aliases else (info.status or "")
    return f"v{version}\n{tag}" if tag else f"v{version}"


def evasion_heatmap(data: ReportData, path: Path) -> Path | None:
    """Held-out evasion rate per strategy (rows) × model version (columns), values written in the cells."""
    versions = [v for v in data.versions if any(k.startswith("evasion_rate.") for k in v.metrics)]
    if not versions or not data.strategies:
        return None
    plt = _pyplot()
    grid = [[v.metric(f"evasion_rate.{s}") for v in versions] for s in data.strategies]
    values = [[math.nan if x is None else x for x in line] for line in grid]
    finite = [x for line in values for x in line if not math.isnan(x)]
    top = max([0.2, *finite])
    width = max(4.5, 1.2 * len(versions) + 2.8)
    height = max(2.6, 0.5 * len(data.strategies) + 1.6)
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    image = ax.imshow(values, cmap="Reds", vmin=0.0, vmax=top, aspect="auto")
    ax.set_xticks(range(len(versions)), [version_label(data, v.version) for v in versions], fontsize=8)
    ax.set_yticks(range(len(data.strategies)), data.strategies, fontsize=9)
    for i, line in enumerate(values):
        for j, x in enumerate(line):
            text = "—" if math.isnan(x) else f"{x:.2f}"
            dark = not math.isnan(x) and x > 0.6 * top
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="evasion rate")
    ax.set_title("Evasion rate per strategy (held-out adversarial set)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def reliability_plot(data: ReportData, path: Path) -> Path | None:
    """The champion's reliability curve on held-out clean texts: toxic share against mean score per bin,
    the diagonal a calibrated model follows, and its threshold."""
    calibration = data.calibration
    if calibration is None or calibration.error or not calibration.bins:
        return None
    plt = _pyplot()
    filled = [b for b in calibration.bins if b["count"]]
    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=DPI)
    ax.plot([0, 1], [0, 1], color="tab:gray", linestyle=":", linewidth=1, label="calibrated")
    ax.plot([b["mean_score"] for b in filled], [b["toxic_rate"] for b in filled], color="tab:blue", marker="o",
            label=f"v{calibration.version} (ECE {calibration.ece:.3f})")
    for b in filled:
        ax.annotate(str(b["count"]), (b["mean_score"], b["toxic_rate"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=6, color="tab:blue")
    ax.axvline(calibration.threshold, color="tab:red", linestyle="--", linewidth=1,
               label=f"threshold {calibration.threshold:.3f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("mean toxic_score in bin")
    ax.set_ylabel("share of toxic texts")
    ax.grid(alpha=0.3)
    ax.set_title(f"Calibration of v{calibration.version} on {calibration.n} held-out texts", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def quality_trend(data: ReportData, path: Path) -> Path | None:
    """Clean F1, overall evasion and attacked-clean FPR across versions, with the gate's limits."""
    versions = [v for v in data.versions if v.metric("clean_f1") is not None]
    if not versions:
        return None
    plt = _pyplot()
    xs = [v.version for v in versions]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(xs) + 3.5), 3.4), dpi=DPI)
    series = (
        ("clean F1", "clean_f1", "tab:blue", "o"),
        ("attacked-clean FPR", "attacked_clean_fpr", "tab:orange", "s"),
        ("clean FPR", "clean_fpr", "tab:gray", "^"),
        ("evasion rate", "evasion_rate", "tab:red", "D"),
    )
    for label, key, color, marker in series:
        ys = [v.metric(key) for v in versions]
        if all(y is None for y in ys):
            continue
        ax.plot(xs, [math.nan if y is None else y for y in ys], marker=marker, color=color, label=label)
    gate = data.gate
    if "min_f1_score" in gate:
        ax.axhline(gate["min_f1_score"], color="tab:blue", linestyle=":", linewidth=1, label="gate: min F1")
    if "max_evasion_rate" in gate:
        ax.axhline(gate["max_evasion_rate"], color="tab:red", linestyle=":", linewidth=1,
                   label="gate: max evasion")
    ax.set_xticks(xs, [version_label(data, x) for x in xs], fontsize=8)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("rate")
    ax.grid(alpha=0.3)
    ax.set_title("Clean F1 and attacked-clean FPR across versions", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
