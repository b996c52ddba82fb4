"""Recipe experiments at the policy point: a candidate change to the default champion, judged on BEEP! splits
beside the baseline (char 1–4-gram TF-IDF LR + normaliser) trained and judged in the same run.

    python -m bench.recipes run CANDIDATE [--splits 0,1,2,3,4] [--quick]
    python -m bench.recipes show CANDIDATE [CANDIDATE ...]

``run`` writes one JSON per split to ``bench/results/recipes/<candidate>/split-<seed>.json`` (so splits can
run in separate invocations, each short); ``show`` prints, for each candidate, the mean and sd over the
splits it has, beside the baseline's on the same splits, and the candidate's difference from the first
candidate named, split by split (mean and sd of the paired difference).

Candidates are config overrides of the default recipe (and bench-side garbled clean negatives): nothing
here changes the product's defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import RESULTS
from bench.quality import (
    BASELINE,
    CHAMPION,
    DEFAULT_RECIPE,
    FIGURES,
    Recipe,
    aggregate,
    beep_splits,
    compare,
    mean_sd,
)

OUT = RESULTS / "recipes"
# Families whose garbled clean texts the models flag most above the clean FPR: clean-negatives teaches that
# these garblings alone are not toxic. Only the worst ones, because its one variant per clean text cycles
# through the families: each family added gets fewer variants. Re-measure them when the recipe changes.
GARBLING_FAMILIES = ("ko_roman", "ko_shape", "repeat", "ko_keyboard", "symbol", "filler")
# Families that evade the default champion most at the policy point: the harden candidate trains on them.
# Hardening where evasion is highest buys the most, but its one variant per fit text cycles through the
# families, so each family added dilutes the others. Re-measure them when the recipe changes.
EVADING_FAMILIES = ("ko_roman", "symbol", "repeat", "leet_phonetic", "ko_shape", "ko_vowel", "ko_consonant",
                    "ko_keyboard", "ko_pronounce")

CANDIDATES: dict[str, Recipe] = {
    "default": DEFAULT_RECIPE,
    "ngram-1-4": Recipe("ngram-1-4", model={"ngram_orders": [1, 2, 3, 4]}),
    "clean-negatives": Recipe("clean-negatives", clean_negatives=GARBLING_FAMILIES,
                              note="one garbled variant (label 0) of every clean fit text, the families in turn"),
    "harden": Recipe("harden", experimental={"harden_strategies": list(EVADING_FAMILIES)},
                     note="experimental.harden_strategies: one variant of every fit text, labels kept"),
    "buckets-512k": Recipe("buckets-512k", model={"ngram_buckets": 524_288, "ngram_dim": 16},
                           note="4x the hash buckets (fewer collisions), a quarter of the dimensions (same table size)"),
    "buckets-1m": Recipe("buckets-1m", model={"ngram_buckets": 1_048_576, "ngram_dim": 8},
                         note="8x the hash buckets, an eighth of the dimensions (same table size)"),
    "buckets-2m": Recipe("buckets-2m", model={"ngram_buckets": 2_097_152, "ngram_dim": 4},
                         note="4x the default's hash buckets at a quarter of its dimensions (same table size)"),
    "buckets-4m": Recipe("buckets-4m", model={"ngram_buckets": 4_194_304, "ngram_dim": 2},
                         note="8x the default's hash buckets at an eighth of its dimensions (same table size)"),
    "plain-lr": Recipe("plain-lr", note="n-gram branch without NBSVM scaling (bench-side patch, no config knob)"),
    "phonetic-fold": Recipe("phonetic-fold", experimental={"ngram_phonetic_fold": True}),
    "recognizer-novel": Recipe("recognizer-novel", experimental={"recognizer_novel_only": True},
                               note="the recogniser reads only Korean words with a character pair no known word has"),
    "harden-levels": Recipe("harden-levels", experimental={"harden_strategies": ["ko_level2", "ko_level3"]},
                            note="experimental.harden_strategies with the stacked difficulty levels"),
}


@contextlib.contextmanager
def _plain_lr() -> Iterator[None]:
    """The n-gram branch solved without NBSVM scaling (every feature's scale 1): a plain TF-IDF logistic
    regression, as the baseline is. An experiment-only patch of the solver, undone on exit."""
    from content_arena.training import ngram_solver

    original = ngram_solver._log_count_ratio

    def ones(features: Any, labels: Any, buckets: int) -> Any:
        import torch

        return torch.ones(buckets)

    ngram_solver._log_count_ratio = ones
    try:
        yield
    finally:
        ngram_solver._log_count_ratio = original


# Candidates that need a bench-side patch of the product (no config knob exists): name -> context manager.
PATCHES: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {"plain-lr": _plain_lr}


def _kiwi(examples: list[Any]) -> Any:
    from bench.baselines import TfidfLRDefender

    return TfidfLRDefender(examples, normalize=True, morphemes=True)


# Baseline-like models a run can add (``--extra``): name -> factory from training examples.
EXTRAS = {"kiwi": ("tfidf-lr+norm+kiwi", _kiwi)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.recipes", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and judge a candidate on some splits")
    run.add_argument("candidate", choices=sorted(CANDIDATES))
    run.add_argument("--splits", default="0,1,2,3,4", help="split seeds (comma-separated)")
    run.add_argument("--quick", action="store_true", help="the harness's --quick subsample")
    run.add_argument("--threads", type=int, default=None)
    run.add_argument("--extra", action="append", default=[], choices=sorted(EXTRAS),
                     help="also train and judge this baseline-like model beside the baseline")
    show = sub.add_parser("show", help="print candidates' means beside the baseline and the first candidate")
    show.add_argument("candidates", nargs="+")
    show.add_argument("--quick", action="store_true")
    return parser.parse_args(argv)


def folder(name: str, quick: bool) -> Path:
    return OUT / (f"{name}-quick" if quick else name)


def run(name: str, seeds: list[int], *, quick: bool, threads: int | None, extras: list[str] = ()) -> list[Path]:
    from bench import harness
    from bench.common import set_threads
    from bench.throughput import cold_scoring_rate

    sizes = harness.QUICK if quick else harness.FULL
    n_threads = set_threads(threads)
    recipe = CANDIDATES[name]
    written = []
    with tempfile.TemporaryDirectory(prefix="arena-recipe-") as tmp:
        ctx = harness.Context(sizes, threads=n_threads, quick=quick, workdir=Path(tmp))
        for split in beep_splits(sizes, seeds):
            with PATCHES.get(name, contextlib.nullcontext)():
                judged = compare(ctx, [split], recipe, with_korcen=False,
                                 extras=dict(EXTRAS[e] for e in extras))
            texts = [e.text for e in split.test][: sizes.texts]
            rates = {m: cold_scoring_rate(model, texts, sizes.repeats) for m, model in judged.first_models.items()}
            record = {"candidate": name, "scoring_rate_cold": rates, "recipe": {"model": recipe.model, "training": recipe.training,
                                                    "experimental": recipe.experimental,
                                                    "clean_negatives": list(recipe.clean_negatives),
                                                    "note": recipe.note},
                      "split_seed": split.seed, "policy": judged.policy, "quick": quick,
                      "meta": harness.meta(quick=quick, threads=n_threads, sizes=sizes, seconds=0.0),
                      "judged": {m: judged.per_split[m][0] for m in judged.per_split},
                      "models": {m: judged.info[m][0] for m in judged.info}}
            path = folder(name, quick) / f"split-{split.seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str))
            written.append(path)
            print(f"{name} split {split.seed}: recall {record['judged'][CHAMPION]['recall']:.3f} "
                  f"(baseline {record['judged'][BASELINE]['recall']:.3f}), AUROC "
                  f"{record['judged'][CHAMPION]['auroc']:.3f} ({record['judged'][BASELINE]['auroc']:.3f}), "
                  f"train {record['models'][CHAMPION]['train_seconds']:.0f} s -> {path}", flush=True)
    return written


def load(name: str, quick: bool) -> dict[int, dict[str, Any]]:
    records = {}
    for path in sorted(folder(name, quick).glob("split-*.json")):
        record = json.loads(path.read_text())
        records[record["split_seed"]] = record
    return records


def summary_lines(names: list[str], quick: bool) -> list[str]:
    """A markdown table per candidate: mean ± sd over its splits, the baseline's, the paired difference from
    the first candidate."""
    loaded = {name: load(name, quick) for name in names}
    reference = loaded[names[0]]
    keys = [(k, label) for k, label, _ in FIGURES] + [("worst_evasion", "worst strategy evasion"),
                                                      ("n_evasion_over", "strategies evading > 10%"),
                                                      ("worst_rise_points", "worst attacked-clean FPR rise (points)"),
                                                      ("n_rise_over", "strategies raising > 3 points"),
                                                      ("train_seconds", "training time (s)")]
    lines = []
    for name in names:
        records = loaded[name]
        if not records:
            lines.append(f"\n{name}: no results in {folder(name, quick)}")
            continue
        seeds = sorted(records)
        champ = aggregate([records[s]["judged"][CHAMPION] for s in seeds])
        base = aggregate([records[s]["judged"][BASELINE] for s in seeds])
        champ["train_seconds"] = _stat([records[s]["models"][CHAMPION]["train_seconds"] for s in seeds])
        base["train_seconds"] = _stat([records[s]["models"][BASELINE]["train_seconds"] for s in seeds])
        shared = [s for s in seeds if s in reference]
        ref = None
        if name != names[0] and shared:
            ref = aggregate([reference[s]["judged"][CHAMPION] for s in shared])
        extra_names = [m for m in records[seeds[0]]["judged"] if m not in (CHAMPION, BASELINE)]
        extra = {m: aggregate([records[s]["judged"][m] for s in seeds]) for m in extra_names}
        for m in extra_names:
            extra[m]["train_seconds"] = _stat([records[s]["models"][m]["train_seconds"] for s in seeds])
        lines.append(f"\n### {name} (splits {', '.join(map(str, seeds))}; policy {records[seeds[0]]['policy']})\n")
        head = (f"| figure | {name} | {BASELINE} |" + "".join(f" {m} |" for m in extra_names)
                + (f" Δ vs {names[0]} (paired, splits {shared}) |" if ref else ""))
        lines.append(head)
        lines.append("|---|---|---|" + "---|" * len(extra_names) + ("---|" if ref else ""))
        for key, label in keys:
            row = f"| {label} | {_cell(champ, key)} | {_cell(base, key)} |" + "".join(
                f" {_cell(extra[m], key)} |" for m in extra_names)
            if ref is not None:
                row += f" {_paired(records, reference, shared, key)} |"
            lines.append(row)
        rates = [records[s].get("scoring_rate_cold", {}) for s in seeds]
        if rates and rates[0]:
            cells = " · ".join(f"{m} {statistics.fmean(r[m] for r in rates if m in r):,.0f}" for m in rates[0])
            lines.append(f"\nscoring, batch 64, word caches emptied (texts/s, mean over splits): {cells}")
    return lines


def _stat(values: list[float]) -> dict[str, Any]:
    mean, sd = mean_sd(values)
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values), "splits": values}


def _cell(summary: dict[str, Any], key: str) -> str:
    value = summary.get(key)
    if value is None:
        return "—"
    if key in ("worst_evasion", "worst_rise_points"):
        return f"{value['mean']:.3f} ({value['strategy']})"
    if key in ("n_evasion_over", "n_rise_over"):
        return f"{value} of {summary['n_strategies']}"
    if value.get("mean") is None:
        return "—"
    return f"{value['mean']:.3f} ± {value['sd']:.3f}"


def _paired(records: dict[int, Any], reference: dict[int, Any], seeds: list[int], key: str) -> str:
    if key in ("worst_evasion", "worst_rise_points", "n_evasion_over", "n_rise_over"):
        return ""
    if key == "train_seconds":
        get = lambda r: r["models"][CHAMPION]["train_seconds"]  # noqa: E731
    else:
        get = lambda r: r["judged"][CHAMPION].get(key)  # noqa: E731
    diffs = [get(records[s]) - get(reference[s]) for s in seeds
             if get(records[s]) is not None and get(reference[s]) is not None]
    mean, sd = mean_sd(diffs)
    return "—" if mean is None else f"{mean:+.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from bench.__main__ import quiet

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    quiet()
    if args.command == "run":
        run(args.candidate, [int(s) for s in args.splits.split(",") if s.strip()], quick=args.quick,
            threads=args.threads, extras=args.extra)
    else:
        print("\n".join(summary_lines(args.candidates, args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
