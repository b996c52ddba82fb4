"""Quality on real comments: content_arena's champion beside a TF-IDF + LR baseline and the korcen filter.

BEEP! ``train.tsv`` (../shared) is split here, once and for all: ``split_examples(seed=0,
test_fraction=0.2)``. Every model learns from the train part only, and every model is measured by
``evaluation.evaluate`` on the same held-out texts and the same attacked variants (all rule
strategies, seed 10007), so evasion and attacked-clean FPR mean the same thing for all of them.

- champion: ``train_champion`` with the default config on 90% of the train part (the other 10% picks
  the best epoch and the F1-best threshold, as the loop does); its tokenizer and its n-gram IDF table
  also see the unlabelled comments.
- champion-hardened: the same with ``training.harden_strategies: [spacing, leet_phonetic]`` (a variant of
  every training text added, label kept).
- tfidf-lr: char 1–4-gram TF-IDF + logistic regression on the whole train part, raw text.
- tfidf-lr+norm: the same with the project's normaliser in front (what the normaliser alone buys).
- korcen: the keyword filter, raw text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench.common import BEEP_TRAIN, BEEP_UNLABELED, SHARED

if TYPE_CHECKING:
    from bench.harness import Context

SPLIT_SEED = 0
TEST_FRACTION = 0.2
ATTACK_SEED = 10_007
BASELINE = "tfidf-lr"
HARDENED = "champion-hardened"
HARDEN_STRATEGIES = ("spacing", "leet_phonetic")


def beep_split(sizes: Any) -> tuple[list[Any], list[Any]]:
    """The fixed train/test split of BEEP! train.tsv, optionally subsampled (stratified) for --quick."""
    from content_arena.data import load_examples, split_examples

    examples = load_examples(BEEP_TRAIN, "beep")
    train, test = split_examples(examples, test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    return _subsample(train, sizes.quality_train), _subsample(test, sizes.quality_test)


def _subsample(examples: list[Any], n: int | None) -> list[Any]:
    from content_arena.data import split_examples

    if n is None or n >= len(examples):
        return examples
    _, chosen = split_examples(examples, test_fraction=n / len(examples), seed=SPLIT_SEED + 7)
    return chosen


def unlabeled_texts(limit: int | None) -> list[str]:
    if limit == 0 or not BEEP_UNLABELED.is_file():
        return []
    lines = [line.strip() for line in BEEP_UNLABELED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines if limit is None else lines[:limit]


def train_models(ctx: Context, train: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The five defenders, loaded, and how each was built."""
    from bench.baselines import KorcenDefender, KorcenUnavailable, TfidfLRDefender
    from content_arena.data import split_examples
    from content_arena.defender import TransformerDefender
    from content_arena.training import train_champion

    models: dict[str, Any] = {}
    info: dict[str, Any] = {}
    overrides = {"epochs": ctx.sizes.quality_epochs} if ctx.sizes.quality_epochs else {}
    cfg = ctx.config(ctx.workdir / "quality-home", training=overrides, model=dict(ctx.sizes.model_overrides))
    fit, val = split_examples(train, test_fraction=0.1, seed=SPLIT_SEED + 1)
    unlabeled = unlabeled_texts(ctx.sizes.quality_unlabeled)
    started = time.perf_counter()
    result = train_champion(fit, ctx.workdir / "beep-champion", cfg, val_examples=val, tokenizer_texts=unlabeled)
    info["champion"] = {"train_seconds": time.perf_counter() - started, "n_fit": len(fit), "n_val": len(val),
                        "unlabeled_for_tokenizer": len(unlabeled), "epochs": cfg.training.epochs,
                        "best_epoch": result.best_epoch, "hidden_size": cfg.model.hidden_size,
                        "num_layers": cfg.model.num_layers}
    models["champion"] = TransformerDefender(result.model_dir, batch_size=64, device="cpu").load()
    info["champion"]["threshold"] = models["champion"].threshold  # tuned on the validation part
    # The same champion hardened against the two rules the normaliser cannot undo (opt-in config).
    hardened_cfg = ctx.config(ctx.workdir / "quality-home-hardened", model=dict(ctx.sizes.model_overrides),
                              training={**overrides, "harden_strategies": list(HARDEN_STRATEGIES)})
    started = time.perf_counter()
    hardened = train_champion(fit, ctx.workdir / "beep-champion-hardened", hardened_cfg, val_examples=val,
                              tokenizer_texts=unlabeled)
    info[HARDENED] = {"train_seconds": time.perf_counter() - started, "n_fit": hardened.n_train,
                      "harden_strategies": list(HARDEN_STRATEGIES), "best_epoch": hardened.best_epoch}
    models[HARDENED] = TransformerDefender(hardened.model_dir, batch_size=64, device="cpu").load()
    info[HARDENED]["threshold"] = models[HARDENED].threshold
    for normalize in (False, True):
        started = time.perf_counter()
        model = TfidfLRDefender(train, normalize=normalize).load()
        models[model.name] = model
        info[model.name] = {"train_seconds": time.perf_counter() - started, "n_train": len(train)}
    try:
        models["korcen"] = KorcenDefender().load()
        info["korcen"] = {"train_seconds": 0.0}
    except KorcenUnavailable as exc:
        info["korcen"] = {"skipped": str(exc)}
    return models, info


def metric_rows(reports: dict[str, Any], skipped_note: str = "") -> list[dict[str, Any]]:
    """One row per metric: the champion's value, TF-IDF LR's as the baseline, the others beside them."""
    from bench.harness import row

    summaries = {name: report.summary() for name, report in reports.items()}
    figures: list[tuple[str, str, Any]] = [
        ("clean F1", "", lambda s: s["f1"]),
        ("clean AUROC", "", lambda s: s["auroc"]),
        ("clean FPR", "lower is better", lambda s: s["fpr"]),
        ("evasion rate, all strategies", "lower is better", lambda s: s["evasion_rate"]),
        ("attacked-clean FPR, all strategies", "lower is better", lambda s: s["attacked_clean_fpr"]),
    ]
    for name in summaries["champion"]["per_strategy"]:
        figures.append((f"evasion: {name}", "", lambda s, n=name: s["per_strategy"][n]))
        figures.append((f"attacked-clean FPR: {name}", "",
                        lambda s, n=name: s["per_strategy_attacked_clean_fpr"][n]))
    rows = []
    for i, (figure, note, get) in enumerate(figures):
        others = {name: get(s) for name, s in summaries.items() if name not in ("champion", BASELINE)}
        text = "; ".join(x for x in (note, skipped_note if i == 0 else "") if x)
        rows.append(row("quality", figure, "", get(summaries["champion"]), BASELINE, get(summaries[BASELINE]),
                        others=others, note=text))
    return rows


def run_quality(ctx: Context) -> list[dict[str, Any]]:
    from bench.harness import Skip, row
    from content_arena.attacks import resolve_strategies
    from content_arena.evaluation import AdversarialSet, evaluate

    if not BEEP_TRAIN.is_file():
        raise Skip(f"BEEP! data not found at {BEEP_TRAIN} (../shared is absent: {SHARED})")
    train, test = beep_split(ctx.sizes)
    models, info = train_models(ctx, train)
    adversarial = AdversarialSet.build(test, resolve_strategies("all"), seed=ATTACK_SEED)
    reports = {}
    for name, model in models.items():
        started = time.perf_counter()
        reports[name] = evaluate(model, adversarial)
        info[name]["evaluate_seconds"] = time.perf_counter() - started
    subsample = ctx.sizes.quality_train is not None or ctx.sizes.quality_test is not None
    ctx.details["quality"] = {
        "data": str(BEEP_TRAIN), "split": {"seed": SPLIT_SEED, "test_fraction": TEST_FRACTION},
        "n_train": len(train), "n_test": len(test), "subsample": subsample, "attack_seed": ATTACK_SEED,
        "models": info, "reports": {name: report.to_dict() for name, report in reports.items()},
    }
    note = f"subsample: {len(train)} train / {len(test)} test" if subsample else ""
    if "korcen" not in reports:
        note = "; ".join(x for x in (note, f"korcen skipped: {info['korcen']['skipped']}") if x)
    rows = metric_rows(reports, note)
    rows.append(row("quality", "training time", "s", info["champion"]["train_seconds"], BASELINE,
                    info[BASELINE]["train_seconds"], note="champion: tokenizer + epochs; TF-IDF: fit"))
    return rows
