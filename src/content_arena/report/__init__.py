"""The robustness report: an HTML page with PNG charts, built from the user's own store and MLflow registry.

    from content_arena.report import build_report
    html_path = build_report(cfg, out_dir)      # out_dir/index.html + out_dir/*.png

``arena report [--config arena.yaml] [--out DIR]`` calls the same function.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from content_arena.config import ArenaConfig

__all__ = ["HTML_FILE", "build_report", "default_report_dir"]

HTML_FILE = "index.html"
IMAGES = {"evasion": "evasion_by_strategy.png", "trend": "quality_by_version.png", "reliability": "reliability.png"}

log = logging.getLogger(__name__)


def default_report_dir(cfg: ArenaConfig) -> Path:
    return cfg.home_path / "report"


def build_report(cfg: ArenaConfig, out_dir: str | Path | None = None, *, with_examples: bool = True) -> Path:
    """Write the report into ``out_dir`` (default ``<home>/report``) and return the HTML file's path.

    ``with_examples=False`` skips loading each version's defender (the "learned to catch" section and the
    champion's calibration).
    """
    from content_arena.report.charts import evasion_heatmap, quality_trend, reliability_plot
    from content_arena.report.data import collect
    from content_arena.report.html import render

    out = Path(out_dir) if out_dir is not None else default_report_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    data = collect(cfg, with_examples=with_examples)
    images: dict[str, str] = {}
    for key, draw in (("evasion", evasion_heatmap), ("trend", quality_trend), ("reliability", reliability_plot)):
        target = out / IMAGES[key]
        if draw(data, target) is not None:
            images[key] = target.name
        elif target.exists():
            target.unlink()  # a stale chart from an earlier report must not be shown
    html_path = out / HTML_FILE
    html_path.write_text(render(data, images), encoding="utf-8")
    log.info("report written to %s", html_path)
    return html_path
