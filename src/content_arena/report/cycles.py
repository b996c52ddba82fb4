"""The co-evolution chart: evasion per strategy per cycle, from ``ARENA_HOME/coevolution/lineage.json``.

One line per strategy (the attacker's population, retired and newborn ones included: a line starts at
the cycle a strategy was born and ends where it was retired), plus the champion's overall evasion and
clean recall per cycle from ``cycles.jsonl``. Figures are on the loop's held-out adversarial set, at the
champion's threshold, as the cycle measured them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from content_arena.config import ArenaConfig

IMAGE = "evasion_by_cycle.png"
CAPTION = ("Evasion per attack strategy per cycle (arena pipeline run --cycles): the attacker's strategies, "
           "born when others stopped evading; black: overall evasion, blue: clean recall of the champion.")
MAX_LINES = 16  # the strongest strategies get a line; the legend stays readable


def cycle_history(cfg: ArenaConfig) -> tuple[dict[str, dict[int, float]], list[dict[str, Any]]]:
    """Evasion per strategy per cycle, and the cycle summaries ({}/[] before any ``--cycles`` run).

    Args:
        cfg: The configuration (``home``).

    Returns:
        (strategy -> {cycle: evasion}, cycle summaries oldest first).
    """
    from content_arena.coevolution import read_cycle_log

    path = cfg.home_path / "coevolution" / "lineage.json"
    if not path.is_file():
        return {}, []
    data = json.loads(path.read_text(encoding="utf-8"))
    history = {s["name"]: {int(c): float(v) for c, v in s.get("success", {}).items()} for s in data.get("strategies", [])}
    return {k: v for k, v in history.items() if v}, read_cycle_log(cfg)


def evasion_by_cycle(cfg: ArenaConfig, path: Path) -> Path | None:
    """Draw the chart to ``path`` (PNG); None when no cycle has been recorded.

    Args:
        cfg: The configuration.
        path: Where to save the PNG.

    Returns:
        ``path``, or None.
    """
    history, cycles = cycle_history(cfg)
    if not history:
        return None
    from content_arena.report.charts import DPI, _pyplot

    plt = _pyplot()
    strongest = sorted(history, key=lambda n: -max(history[n].values()))[:MAX_LINES]
    every = sorted({c for h in history.values() for c in h})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(every) + 5.0), 4.0), dpi=DPI)
    for name in strongest:
        xs = sorted(history[name])
        ax.plot(xs, [history[name][x] for x in xs], marker="o", markersize=3, linewidth=1, label=name)
    if cycles:
        xs = [c["cycle"] for c in cycles]
        ax.plot(xs, [c.get("evasion_rate", math.nan) for c in cycles], color="black", linewidth=2.2,
                label="overall evasion")
        ax.plot(xs, [c.get("recall", math.nan) for c in cycles], color="tab:blue", linestyle="--", linewidth=1.5,
                label="clean recall")
    ax.set_xticks(every)
    ax.set_xlabel("cycle")
    ax.set_ylabel("rate")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.set_title("Evasion per strategy per cycle", fontsize=10)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
