"""Shared helpers for the benchmarks: shared-data lookup, timing, tables, torch threads."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ARENA_SHARED_DIR", REPO.parent / "shared"))
BEEP_TRAIN = SHARED / "data" / "beep" / "train.tsv"
BEEP_UNLABELED = SHARED / "data" / "beep" / "unlabeled_comments.txt"
RESULTS = REPO / "bench" / "results"


def set_threads(n: int | None = None) -> int:
    import torch

    n = n or int(os.environ.get("ARENA_BENCH_THREADS", min(2, os.cpu_count() or 1)))
    torch.set_num_threads(n)
    return n


def median_rate(func: Callable[[], int], repeats: int = 5, warmup: int = 1) -> float:
    """Median items/s of ``func`` (which returns how many items it processed)."""
    for _ in range(warmup):
        func()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = func()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    print(f"\n{title}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return "—" if value is None else str(value)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    return path
