"""Co-evolution bench: does robustness generalise beyond what the loop was shown?

    python bench/bench_cycles.py [--cycles 5] [--threads 2] [--json PATH] [--beep N] [--seed K]
                                 [--set section.key=VALUE ...]
    python -m bench --only cycles

``--seed K`` draws another holdout and loop split (and another loop attack seed): run several for a
spread. ``--set`` overrides a configuration key for an experiment (``--set augment.hard_example_copies=2``;
the value is read as YAML); the payload records every override.

The data (the seed corpus by default; ``--beep N``: N comments of the project's BEEP! train split) is
split once: a *holdout* quarter the loop never attacks, trains on or evaluates on, and the rest, which
the loop splits as usual. Families are held out of the loop entirely (never attacked with, bred,
searched by the adaptive attacker or used for augmentation): :data:`HELD_OUT` (the Korean difficulty
levels too, since they stack the held-out edits). ``cycles`` cycles of ``arena pipeline run --cycles``
run on the rest, with the adaptive search in the loop; after each cycle the champion is measured on the
holdout. Printed, bootstrap champion beside the final one (each at its own threshold):

* per cycle: evasion overall and per family (loop families and held-out ones), clean recall, FPR;
* a fresh adaptive search (every transformation, held-out ones included, a seed the loop never used)
  against each: target final ≤ half the bootstrap's success;
* the held-out families' mean evasion: target a fall of at least a quarter;
* clean recall within 0.01 of the bootstrap's; attacked-clean FPR rise ≤ 3 points.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BEEP_TRAIN, print_table, set_threads, write_json  # noqa: E402

log = logging.getLogger("bench.cycles")

# Families the loop never sees; the first four are the measured targets.
HELD_OUT = ("ko_shape", "ko_roman", "symbol", "ko_level4")
NEVER_IN_LOOP = (*HELD_OUT, "ko_level2", "ko_level3", "en_level2", "en_level3", "en_level4")
LOOP_STRATEGIES = ("jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic",
                   "ko_consonant", "ko_vowel", "ko_pronounce", "ko_keyboard", "ko_chosung", "repeat", "filler",
                   "adaptive")
MEASURED = tuple(s for s in LOOP_STRATEGIES if s != "adaptive") + HELD_OUT
HOLDOUT_FRACTION = 0.25
HOLDOUT_SEED = 4_242
MEASURE_SEED = 50_021  # attack seed of the holdout sets: apart from the loop's battle, evaluation and augmentation
FRESH_SEED = 60_013

# The loop runs at the product's defaults (attack.rounds, augment.*); only the strategies are the bench's.
LOOP: dict[str, dict[str, Any]] = {"attack": {}, "augment": {}}


def holdout_split(beep: int | None, seed: int = 0) -> tuple[list[Any], list[Any], str]:
    from content_arena.data import load_examples, load_seed_corpus, split_examples

    if beep:
        examples = load_examples(str(BEEP_TRAIN), "beep")[:beep]
        name = f"BEEP! train, first {len(examples)}"
    else:
        examples = load_seed_corpus()
        name = "seed corpus"
    rest, holdout = split_examples(examples, test_fraction=HOLDOUT_FRACTION, seed=HOLDOUT_SEED + seed)
    return rest, holdout, name


def write_tsv(examples: list[Any], path: Path) -> Path:
    lines = ["text\tlabel\tlang"]
    lines += [f"{e.text}\t{e.label}\t{e.lang or 'ko'}" for e in examples if "\t" not in e.text and "\n" not in e.text]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure(model: Any, holdout: list[Any]) -> dict[str, Any]:
    """Clean recall/FPR and per-family evasion and attacked-clean FPR of ``model`` on the holdout."""
    from content_arena.attacks import resolve_strategies
    from content_arena.evaluation import AdversarialSet, evaluate

    strategies = resolve_strategies(list(MEASURED))
    report = evaluate(model, AdversarialSet.build(holdout, strategies, seed=MEASURE_SEED))
    per = {name: r.evasion_rate for name, r in report.attacks.items()}
    acfpr = {name: r.attacked_clean_fpr for name, r in report.attacks.items()}
    loop = [n for n in per if n not in HELD_OUT]
    return {
        "threshold": report.threshold,
        "recall": report.clean.recall,
        "fpr": report.clean.fpr,
        "f1": report.clean.f1,
        "evasion_loop_families": sum(per[n] for n in loop) / len(loop),
        "evasion_held_out": sum(per[n] for n in HELD_OUT) / len(HELD_OUT),
        "attacked_clean_fpr": report.attacked_clean_fpr,
        "per_family": per,
        "per_family_attacked_clean_fpr": acfpr,
    }


def fresh_search(model: Any, holdout: list[Any]) -> dict[str, Any]:
    """A fresh adaptive search (all transformations, default budget) on the holdout's toxic texts."""
    from content_arena.attacks import AdaptiveAttacker

    texts = [e.text for e in holdout if e.label == 1]
    _, summary = AdaptiveAttacker(model).run(texts, seed=FRESH_SEED)
    return {"success_rate": summary.success_rate, "attacked": summary.attacked, "successes": summary.successes,
            "queries_per_text": summary.queries_per_text}


def parse_sets(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["augment.hard_example_copies=2", ...]`` as nested overrides; a clear error for anything else."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ValueError(f"--set takes section.key=VALUE, got {pair!r}")
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def run(cycles: int = 5, *, threads: int | None = None, beep: int | None = None, workdir: Path | None = None,
        seed: int = 0, sets: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The bench; returns the JSON payload (tables are printed as it goes).

    Args:
        cycles: Cycles of the loop.
        threads: Torch threads.
        beep: N comments of BEEP! train instead of the seed corpus.
        workdir: Where the loop's home goes (default: a new temporary folder).
        seed: 0 is the recorded split; another value draws another holdout, loop split and attack seed.
        sets: Configuration overrides by section (see :func:`parse_sets`).
    """
    from content_arena.coevolution import run_cycles
    from content_arena.config import load_config
    from content_arena.steps import Workspace, load_model

    n_threads = set_threads(threads)
    base = Path(workdir or tempfile.mkdtemp(prefix="arena-cycles-"))
    base.mkdir(parents=True, exist_ok=True)
    rest, holdout, source = holdout_split(beep, seed)
    data = write_tsv(rest, base / "loop-data.tsv")
    sets = sets or {}
    overrides: dict[str, dict[str, Any]] = {**LOOP, "attack": {**LOOP["attack"], "strategies": list(LOOP_STRATEGIES)},
                                            "data": {"path": str(data), "format": "seed"},
                                            "training": {"torch_threads": n_threads}}
    if seed:
        overrides["data"]["split_seed"] = seed
        overrides["attack"]["seed"] = seed
    for section, values in sets.items():
        overrides[section] = {**overrides.get(section, {}), **values}
    cfg = load_config(None, home=str(base / ".arena"), **overrides)
    started = time.perf_counter()
    curve: list[dict[str, Any]] = []
    ws = Workspace.open(cfg)

    def on_cycle(summary: Any) -> None:
        model = load_model(ws, summary.champion_version)
        row = {"cycle": summary.cycle, "gate": summary.gate, "promoted": summary.promoted,
               "champion": summary.champion_version, "born": summary.born, "seconds": summary.seconds,
               "loop_test_evasion": summary.evasion_rate, **measure(model, holdout)}
        curve.append(row)
        log.info("cycle %d done in %.0fs", summary.cycle, summary.seconds)

    result = run_cycles(cfg, cycles, console=None, excluded=NEVER_IN_LOOP, on_cycle=on_cycle)
    loop_seconds = time.perf_counter() - started
    bootstrap, final = load_model(ws, 1), load_model(ws, result.runs[-1].champion_version)
    before, after = measure(bootstrap, holdout), measure(final, holdout)
    fresh_before, fresh_after = fresh_search(bootstrap, holdout), fresh_search(final, holdout)
    ws.close()
    lineage = json.loads((cfg.home_path / "coevolution" / "lineage.json").read_text())
    targets = {
        "fresh search success final/bootstrap <= 0.5": _ratio(fresh_after["success_rate"], fresh_before["success_rate"]),
        "held-out evasion fall >= 0.25": 1 - (_ratio(after["evasion_held_out"], before["evasion_held_out"]) or 1.0),
        "clean recall change >= -0.01": after["recall"] - before["recall"],
        "attacked-clean FPR rise <= 0.03": after["attacked_clean_fpr"] - before["attacked_clean_fpr"],
    }
    holds = {
        "fresh search success final/bootstrap <= 0.5": (targets["fresh search success final/bootstrap <= 0.5"] or 0) <= 0.5,
        "held-out evasion fall >= 0.25": targets["held-out evasion fall >= 0.25"] >= 0.25,
        "clean recall change >= -0.01": targets["clean recall change >= -0.01"] >= -0.01,
        "attacked-clean FPR rise <= 0.03": targets["attacked-clean FPR rise <= 0.03"] <= 0.03,
    }
    payload = {
        "source": source, "seed": seed, "overrides": sets, "holdout": len(holdout), "loop_data": len(rest), "threads": n_threads,
        "cycles": len(result.cycles), "loop_seconds": round(loop_seconds, 1), "held_out": list(HELD_OUT),
        "never_in_loop": list(NEVER_IN_LOOP), "curve": curve, "bootstrap": before, "final": after,
        "fresh_search": {"bootstrap": fresh_before, "final": fresh_after}, "targets": targets, "holds": holds,
        "lineage": lineage, "cycle_summaries": [c.to_dict() for c in result.cycles],
        "gate_attacked_clean_fpr": [run.gate.checks.get("worst_attacked_clean_fpr") for run in result.runs],
    }
    print_report(payload)
    return payload


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def print_report(p: dict[str, Any]) -> None:
    extra = "".join(f", {s}.{k}={v}" for s, values in p.get("overrides", {}).items() for k, v in values.items())
    title = (f"Co-evolution on {p['source']} (seed {p.get('seed', 0)}{extra}): {p['cycles']} cycles in "
             f"{p['loop_seconds']:.0f} s "
             f"({p['threads']} threads); measured on {p['holdout']} holdout texts the loop never saw")
    rows = [{"cycle": "bootstrap", "evasion (loop fam.)": p["bootstrap"]["evasion_loop_families"],
             "evasion (held-out)": p["bootstrap"]["evasion_held_out"], "clean recall": p["bootstrap"]["recall"],
             "FPR": p["bootstrap"]["fpr"], "attacked-clean FPR": p["bootstrap"]["attacked_clean_fpr"],
             "gate": "", "promoted": "", "born": ""}]
    for c in p["curve"]:
        rows.append({"cycle": c["cycle"], "evasion (loop fam.)": c["evasion_loop_families"],
                     "evasion (held-out)": c["evasion_held_out"], "clean recall": c["recall"], "FPR": c["fpr"],
                     "attacked-clean FPR": c["attacked_clean_fpr"], "gate": c["gate"],
                     "promoted": f"v{c['champion']}" if c["promoted"] else "no",
                     "born": ", ".join(c["born"]) or "—"})
    print_table(title, rows)
    print_table("gate and promoter per cycle (the loop's own held-out split)", [
        {"cycle": c["cycle"], "gate": "; ".join(c["reasons"]) or "PASS",
         "promoter": "; ".join(c["decision"]) or "—"} for c in p["cycle_summaries"]])
    print_table("the gate's worst attacked-clean FPR rise per cycle (the loop's own held-out split)", [
        {"cycle": c["cycle"], "strategy": w["strategy"], "rise": w["increase"], "newly": w["newly_flagged"],
         "no longer": w["no_longer_flagged"], "p": _p(w["p_value"]), "Holm p": _p(w["holm_p_value"])}
        for c, w in zip(p["cycle_summaries"], p.get("gate_attacked_clean_fpr", []), strict=False) if w])
    families = list(p["bootstrap"]["per_family"])
    fam_rows = []
    for name in families:
        row = {"family": name + (" (held out)" if name in p["held_out"] else ""),
               "bootstrap": p["bootstrap"]["per_family"][name]}
        for c in p["curve"]:
            row[f"c{c['cycle']}"] = c["per_family"][name]
        row["attacked-clean FPR boot → final"] = (f"{p['bootstrap']['per_family_attacked_clean_fpr'][name]:.3f} → "
                                                  f"{p['final']['per_family_attacked_clean_fpr'][name]:.3f}")
        fam_rows.append(row)
    print_table("evasion per family per cycle (holdout)", fam_rows)
    fb, fa = p["fresh_search"]["bootstrap"], p["fresh_search"]["final"]
    print_table("fresh adaptive search on the holdout's toxic texts", [
        {"model": "bootstrap", "success": fb["success_rate"], "attacked": fb["attacked"], "queries/text": fb["queries_per_text"]},
        {"model": "final champion", "success": fa["success_rate"], "attacked": fa["attacked"], "queries/text": fa["queries_per_text"]},
    ])
    print_table("targets", [{"target": k, "value": v, "holds": "yes" if p["holds"][k] else "NO"}
                            for k, v in p["targets"].items()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_cycles", description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--beep", type=int, default=None, help="use N comments of BEEP! train instead of the seed corpus")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0, help="another holdout, loop split and attack seed (spread)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a configuration override for an experiment (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    for noisy in ("alembic", "mlflow", "httpx", "urllib3", "transformers", "peft"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("bench").setLevel(logging.INFO)
    try:
        sets = parse_sets(args.sets)
    except ValueError as exc:
        parser.error(str(exc))
    payload = run(args.cycles, threads=args.threads, beep=args.beep, seed=args.seed, sets=sets)
    path = args.json or write_json("cycles", payload)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
