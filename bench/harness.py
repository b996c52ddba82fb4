"""The benchmark harness: every section measures a figure and, in the same run, the baseline it is read against.

Sections (``--only`` takes these names):

- ``defender``: texts/s of ``TransformerDefender.scores`` at batch 1/16/64 beside a transformers
  ``pipeline("text-classification")`` over the same weights, texts and threads.
- ``attacks``: variants/s of each rule strategy beside the defender's batch-64 scoring rate on the same
  texts (the battle is bounded by the slower of the two).
- ``battle``: rounds/s of a battle persisted to SQLite and to PostgreSQL beside the same rounds with
  nothing persisted (an in-memory store).
- ``api``: the classify API, through ``bench/bench_api.py`` when that file provides an entry point.
- ``loop``: wall time and peak RSS of one ``run_pipeline`` in a child process beside a child that only
  trains the champion on the same data.
- ``quality``: see :mod:`bench.quality` (BEEP! splits; the champion beside TF-IDF LR + normaliser at the
  policy operating point, korcen beside them).
- ``quality_holdout``: the champion with each rule family of its recipe held out of training, its
  evasion of that family beside the baseline's (:mod:`bench.quality`).

A row is ``{section, figure, unit, value, baseline, baseline_value, ratio, others, note, status}``.
Every row with a value has a baseline value measured in the same run; a section that cannot run
leaves one ``skipped`` row whose note says why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import BEEP_TRAIN, median_rate, set_threads

log = logging.getLogger("bench")

SECTIONS: tuple[str, ...] = ("defender", "attacks", "battle", "api", "loop", "quality", "quality_holdout")
# The tiny loop used by --quick and the tests: the same stages, seconds instead of minutes.
TINY_LOOP = {
    "model": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "ngram_buckets": 4096, "ngram_dim": 16,
              "max_length": 64},
    "training": {"epochs": 2, "challenger_epochs": 1, "batch_size": 32, "learning_rate": 3e-3, "seed": 3},
    "attack": {"rounds": 120, "batch_size": 64},
    "augment": {"variants_per_failure": 2},
}
# Smaller still, for the tests (that the pieces run, not how fast): a gate that passes, so no challenger.
TEST_LOOP = {**TINY_LOOP, "training": {**TINY_LOOP["training"], "epochs": 1, "max_train_examples": 400},
             "attack": {"rounds": 36, "batch_size": 64},
             "quality_gate": {"max_evasion_rate": 1.0, "max_strategy_evasion_rate": 1.0, "min_f1_score": 0.0, "max_attacked_clean_fpr_increase": 1.0}}


class Skip(Exception):
    """A section cannot run here; the message says why."""


@dataclass(frozen=True)
class Sizes:
    texts: int  # texts scored per timing run at batch 16 and 64
    texts_batch1: int  # texts scored per timing run at batch 1
    repeats: int
    attack_texts: int
    battle_rounds: int
    battle_repeats: int
    throughput_epochs: int  # the model timed in `defender`: its weights do not change the timing, so it
    throughput_train: int = 256  # trains briefly on this many examples (its tokenizer sees the whole corpus)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # {} = the default architecture
    api_seconds: float = 8.0  # length of each load phase of bench_api
    api_max_requests: int = 5000
    loop_overrides: dict[str, Any] = field(default_factory=dict)  # {} = the default config
    quality_train: int | None = None  # None = the whole train part
    quality_test: int | None = None
    quality_epochs: int | None = None  # None = the config default
    quality_unlabeled: int | None = None  # lines of unlabelled comments for the tokenizer; None = all
    quality_splits: int = 5  # BEEP! split seeds 0..n-1 judged by `quality`
    holdout_splits: int = 2  # and by `quality_holdout` (one champion per family and split)


FULL = Sizes(texts=512, texts_batch1=256, repeats=5, attack_texts=2000, battle_rounds=1200, battle_repeats=3,
             throughput_epochs=1)
QUICK = Sizes(texts=128, texts_batch1=48, repeats=3, attack_texts=300, battle_rounds=256, battle_repeats=3,
              throughput_epochs=1, api_seconds=3.0, api_max_requests=1500, loop_overrides=TINY_LOOP,
              quality_train=1500, quality_test=400, quality_unlabeled=0, quality_splits=2, holdout_splits=1)
# For the tests: every piece runs, on sizes that take seconds.
TINY = Sizes(texts=16, texts_batch1=4, repeats=1, attack_texts=20, battle_rounds=24, battle_repeats=1,
             throughput_epochs=1, model_overrides=TINY_LOOP["model"], loop_overrides=TEST_LOOP, api_seconds=1.0,
             api_max_requests=100, quality_train=200, quality_test=60, quality_epochs=1, quality_unlabeled=0,
             quality_splits=1, holdout_splits=1)


# -- rows -----------------------------------------------------------------------------------------


def row(section: str, figure: str, unit: str, value: float | None, baseline: str | None,
        baseline_value: float | None, *, others: dict[str, float | None] | None = None, note: str = "",
        status: str = "ok") -> dict[str, Any]:
    ratio = None
    if value is not None and baseline_value:
        ratio = value / baseline_value
    return {
        "section": section, "figure": figure, "unit": unit, "value": value, "baseline": baseline,
        "baseline_value": baseline_value, "ratio": ratio, "others": dict(others or {}), "note": note,
        "status": status,
    }


def skipped(section: str, reason: str, status: str = "skipped") -> dict[str, Any]:
    return row(section, "—", "", None, None, None, note=f"{status}: {reason}", status=status)


# -- shared state of one run ----------------------------------------------------------------------


class Context:
    """What sections share: sizes, threads, a scratch directory, one trained model and its texts."""

    def __init__(self, sizes: Sizes, *, threads: int, quick: bool, workdir: Path):
        self.sizes = sizes
        self.threads = threads
        self.quick = quick
        self.workdir = workdir
        self.details: dict[str, Any] = {}
        self._model_dirs: dict[bool, Path] = {}
        self._texts: list[str] | None = None
        self.judged: Any = None  # the quality section's models and figures (bench.quality.Judged), for later sections

    def config(self, home: Path, **overrides: Any) -> Any:
        from content_arena.config import load_config

        training = {"torch_threads": self.threads, **overrides.pop("training", {})}
        inference = {"torch_threads": self.threads, **overrides.pop("inference", {})}
        with _clean_arena_env():
            return load_config(None, home=str(home), training=training, inference=inference, **overrides)

    def corpus_texts(self) -> tuple[list[str], str]:
        """Texts to time: real comments when ../shared is here, else the shipped seed corpus."""
        if self._texts is None:
            from content_arena.data import load_examples, load_seed_corpus

            if BEEP_TRAIN.is_file():
                self._texts = [e.text for e in load_examples(BEEP_TRAIN, "beep")]
                self.details["texts"] = f"BEEP! comments ({BEEP_TRAIN})"
            else:
                self._texts = [e.text for e in load_seed_corpus()]
                self.details["texts"] = "the shipped seed corpus (../shared is absent)"
        return self._texts, self.details["texts"]

    def texts(self, n: int) -> list[str]:
        pool, _ = self.corpus_texts()
        return [pool[i % len(pool)] for i in range(n)]

    def model_dir(self, encoder: bool = False) -> Path:
        """A defender with the default architecture (vocabulary included), trained briefly: for timing only.

        ``encoder=False``: the default recipe, the n-gram branch alone; ``True``: with the encoder
        (``model.encoder``) kept whatever it adds (``experimental.min_encoder_gain: null``), to show what
        it costs.
        """
        if encoder not in self._model_dirs:
            from content_arena.data import load_seed_corpus, split_examples
            from content_arena.training import train_champion

            training = {"epochs": self.sizes.throughput_epochs}
            experimental = {"min_encoder_gain": None}
            name = "throughput-model-encoder" if encoder else "throughput-model"
            cfg = self.config(self.workdir / f"{name}-home", training=training,
                              model={**self.sizes.model_overrides, "encoder": encoder}, experimental=experimental)
            corpus = load_seed_corpus()
            rest, fit = split_examples(corpus, test_fraction=self.sizes.throughput_train / len(corpus), seed=1)
            started = time.perf_counter()
            result = train_champion(fit, self.workdir / name, cfg, val_examples=rest[:200],
                                    tokenizer_texts=[e.text for e in rest])
            self.details[name.replace("-", "_")] = {
                "dir": str(result.model_dir), "train_seconds": round(time.perf_counter() - started, 2),
                "hidden_size": cfg.model.hidden_size, "num_layers": cfg.model.num_layers,
                "use_encoder": json.loads((result.model_dir / "config.json").read_text()).get("use_encoder", True),
                "epochs": cfg.training.epochs, "val": result.val_metrics,
            }
            self._model_dirs[encoder] = result.model_dir
        return self._model_dirs[encoder]

    def defender(self, batch_size: int = 64, encoder: bool = False) -> Any:
        from content_arena.defender import TransformerDefender

        return TransformerDefender(self.model_dir(encoder), batch_size=batch_size, device="cpu").load()

    def scoring_rate(self, texts: Sequence[str]) -> float:
        """The defender's batch-64 texts/s on ``texts`` (what other sections are read against)."""
        defender = self.defender(64)
        chosen = list(texts)
        return median_rate(lambda: len(defender.scores(chosen)), self.sizes.repeats)


@contextlib.contextmanager
def _clean_arena_env() -> Iterator[None]:
    """The user's ARENA_* variables must not change what the benchmark measures."""
    saved = {k: v for k, v in os.environ.items() if is_user_arena_var(k)}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def is_user_arena_var(key: str) -> bool:
    return key.startswith("ARENA_") and not key.startswith(("ARENA_BENCH", "ARENA_TEST", "ARENA_SHARED"))


def runner(name: str) -> Callable[[Context], list[dict[str, Any]]]:
    """The function that measures section ``name`` (imported only when it runs)."""
    if name in ("quality", "quality_holdout"):
        from bench import quality

        return getattr(quality, f"run_{name}")
    from bench import throughput

    return getattr(throughput, f"bench_{name}")


# -- the run --------------------------------------------------------------------------------------


def run(sections: Sequence[str] = SECTIONS, *, sizes: Sizes | None = None, quick: bool = False,
        threads: int | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Run ``sections`` and return the JSON payload (meta, sections, rows, details)."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    sizes = sizes or (QUICK if quick else FULL)
    n_threads = set_threads(threads)
    started = time.perf_counter()
    load_before = _load_average()
    own_tmp = workdir is None
    base = Path(tempfile.mkdtemp(prefix="arena-bench-")) if own_tmp else Path(workdir)
    base.mkdir(parents=True, exist_ok=True)
    ctx = Context(sizes, threads=n_threads, quick=quick, workdir=base)
    rows: list[dict[str, Any]] = []
    status: dict[str, dict[str, Any]] = {}
    try:
        for name in sections:
            t0 = time.perf_counter()
            log.info("bench: %s…", name)
            try:
                got = runner(name)(ctx)
                state = {"status": "ok", "reason": None}
            except Skip as exc:
                got, state = [skipped(name, str(exc))], {"status": "skipped", "reason": str(exc)}
            except Exception as exc:  # one broken section must not hide the others' figures
                log.exception("bench: %s failed", name)
                reason = f"{type(exc).__name__}: {exc}"
                got, state = [skipped(name, reason, "error")], {"status": "error", "reason": reason}
            state["seconds"] = round(time.perf_counter() - t0, 2)
            status[name] = state
            rows.extend(got)
    finally:
        if own_tmp:
            shutil.rmtree(base, ignore_errors=True)
    return {
        "meta": meta(quick=quick, threads=n_threads, sizes=sizes, seconds=time.perf_counter() - started,
                     load_before=load_before),
        "sections": status,
        "rows": rows,
        "details": ctx.details,
    }


def meta(*, quick: bool, threads: int, sizes: Sizes, seconds: float,
         load_before: list[float] | None = None) -> dict[str, Any]:
    import torch
    import transformers

    return {
        "quick": quick,
        "threads": threads,
        "sizes": asdict(sizes),
        "seconds": round(seconds, 1),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(),
        # Other jobs share the cores: the 1/5/15-minute load averages before and after say how much.
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "machine": platform.machine(),
        "commit": _git_commit(),
    }


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def table_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows as printed: one line per figure, its baseline beside it."""
    out = []
    for r in payload["rows"]:
        others = " · ".join(f"{k} {_num(v)}" for k, v in r["others"].items())
        out.append({
            "section": r["section"],
            "figure": r["figure"] + (f" ({r['unit']})" if r["unit"] else ""),
            "value": r["value"],
            "baseline": r["baseline"],
            "baseline value": r["baseline_value"],
            "ratio": None if r["ratio"] is None else f"{r['ratio']:.2f}×",
            "also": others or None,
            "note": r["note"] or None,
        })
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
