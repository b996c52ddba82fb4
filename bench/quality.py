"""Quality on real comments at the policy operating point: the default champion beside char 1–4-gram
TF-IDF LR + our normaliser, over several BEEP! splits (mean and spread), korcen beside them when installed.

BEEP! ``train.tsv`` (../shared) is split once per split seed (0-4 by default):
``split_examples(seed=s, test_fraction=0.2)`` gives train and test; the train part is split again
(``seed=s + 1``, 10%) into fit and validation texts. Both models see exactly the same texts:

- champion: ``train_champion`` with the default config (or a :class:`Recipe`'s overrides) on the fit
  texts, validation texts passed in as the loop does; its calibration and threshold are the ones training
  fitted on validation by the configured policy (``defender.operating_point``); its tokenizer and n-gram
  IDF table also read the unlabelled comments.
- tfidf-lr+norm: char 1–4-gram TF-IDF + logistic regression behind the project's normaliser, fitted on
  the fit texts; calibrated and given its threshold on its own scores of the same validation texts by the
  same policy and the same function as the champion (``training.calibration.fit_policy``).
- korcen (optional): the keyword filter, a fixed 0/1 rule with no threshold to choose.

Every model is judged by ``evaluation.evaluate`` at its own threshold on the same held-out texts and
the same attacked variants: every registered rule strategy (every family and difficulty level; not the
LLM or the adaptive search), attack seed 10007. Attacked-clean FPR rise is the attacked clean texts'
FPR minus the clean FPR, in points.

Section ``quality_holdout``: for each rule family the champion's recipe trains on (hardening or garbled
clean negatives), the champion trained without that family, and its evasion of that family at the
policy point beside the baseline's (which trains on no family) and the full recipe's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.common import BEEP_TRAIN, BEEP_UNLABELED, SHARED

if TYPE_CHECKING:
    from bench.harness import Context
    from content_arena.data import Example
    from content_arena.defender import Defender
    from content_arena.evaluation import AdversarialSet

SPLIT_SEEDS = (0, 1, 2, 3, 4)
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
ATTACK_SEED = 10_007
CHAMPION = "champion"
BASELINE = "tfidf-lr+norm"
KORCEN = "korcen"
# The limits on every rule strategy at the policy point.
MAX_STRATEGY_EVASION = 0.10
MAX_STRATEGY_RISE_POINTS = 3.0
# Strategies left out of "every registered rule strategy": they are not rules.
NOT_RULES = ("llm", "adaptive")


# -- data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """One split of BEEP! train.tsv: fit and validation texts for training, test texts for judging."""

    seed: int
    fit: list[Example]
    val: list[Example]
    test: list[Example]

    @property
    def train(self) -> list[Example]:
        return self.fit + self.val


def beep_split(sizes: Any, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """The train/test split of BEEP! train.tsv for ``seed``, optionally subsampled (stratified) for --quick."""
    from content_arena.data import load_examples, split_examples

    examples = load_examples(BEEP_TRAIN, "beep")
    train, test = split_examples(examples, test_fraction=TEST_FRACTION, seed=seed)
    return _subsample(train, sizes.quality_train, seed), _subsample(test, sizes.quality_test, seed)


def make_split(train: list[Example], test: list[Example], seed: int) -> Split:
    from content_arena.data import split_examples

    fit, val = split_examples(train, test_fraction=VAL_FRACTION, seed=seed + 1)
    return Split(seed, fit, val, test)


def beep_splits(sizes: Any, seeds: Sequence[int] | None = None) -> list[Split]:
    chosen = list(seeds) if seeds is not None else list(SPLIT_SEEDS[: sizes.quality_splits])
    return [make_split(*beep_split(sizes, seed), seed) for seed in chosen]


def _subsample(examples: list[Example], n: int | None, seed: int = 0) -> list[Example]:
    from content_arena.data import split_examples

    if n is None or n >= len(examples):
        return examples
    _, chosen = split_examples(examples, test_fraction=n / len(examples), seed=seed + 7)
    return chosen


def unlabeled_texts(limit: int | None) -> list[str]:
    if limit == 0 or not BEEP_UNLABELED.is_file():
        return []
    lines = [line.strip() for line in BEEP_UNLABELED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines if limit is None else lines[:limit]


def rule_strategy_names() -> list[str]:
    """Every registered rule strategy: the six unicode/respelling rules, every family, every level."""
    from content_arena.attacks import available_strategies

    return [name for name in available_strategies() if name not in NOT_RULES]


def is_level(name: str) -> bool:
    """Whether ``name`` is a difficulty level (a stack of families), not a family of its own."""
    return "_level" in name


def adversarial_set(test: Sequence[Example], names: Sequence[str] | None = None) -> AdversarialSet:
    from content_arena.attacks import resolve_strategies
    from content_arena.evaluation import AdversarialSet

    return AdversarialSet.build(test, resolve_strategies(list(names or rule_strategy_names())), seed=ATTACK_SEED)


# -- the policy ---------------------------------------------------------------------------------------


def policy_of(cfg: Any) -> dict[str, Any]:
    """The configured operating point as ``{"metric", "value"}``."""
    return cfg.defender.operating_point.to_dict()


# -- recipes and models -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A champion recipe: config overrides, and families whose variants of the clean fit texts are added as
    negatives (label 0) before training (a bench-side transform; ``experimental.harden_strategies`` is the
    recipe's own, labels kept)."""

    name: str = CHAMPION
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    clean_negatives: tuple[str, ...] = ()
    note: str = ""
    experimental: dict[str, Any] = field(default_factory=dict)

    def families(self, cfg: Any) -> list[str]:
        """The rule families this recipe trains on, in order, without repeats."""
        names = [*cfg.experimental.harden_strategies, *self.clean_negatives]
        return list(dict.fromkeys(names))

    def without(self, family: str, cfg: Any) -> Recipe:
        harden = [s for s in cfg.experimental.harden_strategies if s != family]
        return Recipe(f"{self.name}-without-{family}", dict(self.model), dict(self.training),
                      tuple(s for s in self.clean_negatives if s != family),
                      experimental={**self.experimental, "harden_strategies": harden})


DEFAULT_RECIPE = Recipe()


def with_clean_negatives(fit: list[Example], families: Sequence[str], seed: int) -> list[Example]:
    """``fit`` plus one variant (label 0) of every clean fit text, the families taking turns."""
    from content_arena.attacks import resolve_strategies
    from content_arena.data_augmentor import with_rule_variants

    if not families:
        return list(fit)
    clean = [e for e in fit if e.label == 0]
    variants = with_rule_variants(clean, resolve_strategies(list(families)), 1.0, seed=seed)[len(clean):]
    return list(fit) + variants


def train_recipe(ctx: Context, split: Split, recipe: Recipe, unlabeled: list[str],
                 tag: str | None = None) -> tuple[Defender, dict[str, Any]]:
    """Train the champion of ``recipe`` on ``split`` and load it at the threshold training chose."""
    from content_arena.defender import TransformerDefender
    from content_arena.defender.artifacts import read_manifest
    from content_arena.training import train_champion

    tag = tag or f"{recipe.name}-s{split.seed}"
    training = dict(recipe.training)
    if ctx.sizes.quality_epochs:
        training.setdefault("epochs", ctx.sizes.quality_epochs)
    cfg = ctx.config(ctx.workdir / f"home-{tag}", training=training,
                     model={**ctx.sizes.model_overrides, **recipe.model}, experimental=dict(recipe.experimental))
    fit = with_clean_negatives(split.fit, recipe.clean_negatives, seed=cfg.training.seed)
    started = time.perf_counter()
    result = train_champion(fit, ctx.workdir / f"model-{tag}", cfg, val_examples=split.val, tokenizer_texts=unlabeled)
    seconds = time.perf_counter() - started
    model = TransformerDefender(result.model_dir, batch_size=64, device="cpu").load()
    manifest = read_manifest(result.model_dir)
    policy = policy_of(cfg)
    if manifest.operating_point != policy:
        raise RuntimeError(f"the champion was saved at {manifest.operating_point}, not the configured {policy}")
    info = {"train_seconds": seconds, "n_fit": len(fit), "n_val": len(split.val), "threshold": model.threshold,
            "policy": policy, "validation": manifest.validation, "calibration": (manifest.calibration or {}).get("kind"), "families": recipe.families(cfg), "overrides": {"model": recipe.model,
                                                                              "training": recipe.training,
                                                                              "experimental": recipe.experimental},
            "clean_negatives": list(recipe.clean_negatives),
            "use_encoder": bool(getattr(model.model.config, "use_encoder", True))}
    return model, info


def train_baseline(split: Split, cfg: Any, *,
                   factory: Callable[[list[Example]], Defender] | None = None) -> tuple[Defender, dict[str, Any]]:
    """TF-IDF LR + normaliser (or ``factory``'s model) fitted on the fit texts, then calibrated and given its
    threshold on its raw scores of the validation texts by the configured policy, with the same function
    training uses for the champion (``training.calibration.fit_policy``)."""
    from bench.baselines import TfidfLRDefender
    from content_arena.training.calibration import fit_policy

    factory = factory or (lambda examples: TfidfLRDefender(examples, normalize=True))
    started = time.perf_counter()
    model = factory(split.fit).load()
    raw = model.predict(model.preprocess([e.text for e in split.val]))
    fitted = fit_policy([e.label for e in split.val], raw, cfg.defender.operating_point,
                        calibration=cfg.defender.calibration, fallback_threshold=cfg.model.threshold)
    model.calibrator, model.threshold = fitted.calibrator, fitted.threshold
    return model, {"train_seconds": time.perf_counter() - started, "n_fit": len(split.fit),
                   "n_val": len(split.val), "threshold": fitted.threshold, "policy": policy_of(cfg),
                   "validation": fitted.validation_record(), "calibration": fitted.calibrator.kind}


# -- judging ----------------------------------------------------------------------------------------


def judge(model: Defender, adversarial: AdversarialSet, policy: dict[str, Any]) -> dict[str, Any]:
    """Every quality figure of ``model`` at its threshold (``model.threshold``) on ``adversarial``."""
    from content_arena.evaluation import evaluate

    report = evaluate(model, adversarial)
    clean = report.clean
    per_strategy = {
        name: {"evasion": r.evasion_rate, "attacked_clean_fpr": r.attacked_clean_fpr,
               "rise_points": 100.0 * (r.attacked_clean_fpr - clean.fpr)}
        for name, r in report.attacks.items()
    }
    out: dict[str, Any] = {
        "threshold": float(model.threshold), "recall": clean.recall, "precision": clean.precision,
        "fpr": clean.fpr, "f1": clean.f1, "auroc": clean.auroc, "pr_auc": clean.pr_auc,
        "ece": clean.ece, "evasion_rate": report.evasion_rate,
        "attacked_clean_fpr": report.attacked_clean_fpr, "per_strategy": per_strategy,
    }
    if policy["metric"] == "fpr":
        out["fpr_gap"] = abs(clean.fpr - policy["value"])
    return out


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value) of the values that are not None."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    return statistics.fmean(present), (statistics.stdev(present) if len(present) > 1 else 0.0)


def aggregate(judged: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-figure mean, sd, min and max over splits; per-strategy means; the worst strategies and how many
    exceed the limits (judged on the per-strategy means)."""
    scalar = [k for k, v in judged[0].items() if isinstance(v, (int, float)) or v is None]
    out: dict[str, Any] = {}
    for key in scalar:
        values = [j.get(key) for j in judged]
        mean, sd = mean_sd(values)
        present = [v for v in values if v is not None]
        out[key] = {"mean": mean, "sd": sd, "min": min(present, default=None), "max": max(present, default=None),
                    "splits": values}
    names = list(judged[0]["per_strategy"])
    per = {}
    for name in names:
        per[name] = {}
        for key in ("evasion", "rise_points"):
            values = [j["per_strategy"][name][key] for j in judged]
            mean, sd = mean_sd(values)
            per[name][key] = {"mean": mean, "sd": sd, "splits": values}
    out["per_strategy"] = per
    evasion = {n: per[n]["evasion"]["mean"] for n in names}
    rise = {n: per[n]["rise_points"]["mean"] for n in names}
    worst_e = max(evasion, key=evasion.__getitem__)
    worst_r = max(rise, key=rise.__getitem__)
    out["worst_evasion"] = {"strategy": worst_e, "mean": evasion[worst_e]}
    out["worst_rise_points"] = {"strategy": worst_r, "mean": rise[worst_r]}
    out["n_strategies"] = len(names)
    out["n_evasion_over"] = sum(v > MAX_STRATEGY_EVASION for v in evasion.values())
    out["n_rise_over"] = sum(v > MAX_STRATEGY_RISE_POINTS for v in rise.values())
    # The same on each split alone: the worst single-split figure.
    out["worst_evasion_any_split"] = max(max(j["per_strategy"][n]["evasion"] for n in names) for j in judged)
    out["worst_rise_points_any_split"] = max(max(j["per_strategy"][n]["rise_points"] for n in names) for j in judged)
    return out


# Figures printed for each model, in order: (key, label, unit).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("threshold", "threshold (chosen on validation)", ""),
    ("recall", "recall at the policy point", ""),
    ("precision", "precision at the policy point", ""),
    ("fpr", "held-out clean FPR", ""),
    ("fpr_gap", "|held-out FPR − target|", ""),
    ("auroc", "AUROC", ""),
    ("pr_auc", "PR-AUC", ""),
    ("ece", "expected calibration error", ""),
    ("f1", "F1 at the policy point", ""),
    ("evasion_rate", "evasion, every rule strategy pooled", ""),
    ("attacked_clean_fpr", "attacked-clean FPR, every rule strategy pooled", ""),
)


def quality_rows(summaries: dict[str, dict[str, Any]], policy: dict[str, Any], note: str = "") -> list[dict[str, Any]]:
    """Rows of the harness table: the champion's mean beside the baseline's, sd of each and korcen beside."""
    from bench.harness import row

    champion, baseline = summaries[CHAMPION], summaries[BASELINE]
    korcen = summaries.get(KORCEN)
    n = len(champion["recall"]["splits"])
    rows: list[dict[str, Any]] = []

    def add(figure: str, unit: str, get: Callable[[dict[str, Any]], Any], extra_note: str = "",
            spread: Callable[[dict[str, Any]], Any] | None = None) -> None:
        others: dict[str, float | None] = {}
        if spread is not None:
            others["sd"], others["baseline sd"] = spread(champion), spread(baseline)
        if korcen is not None:
            others[KORCEN] = get(korcen)
        text = "; ".join(x for x in (extra_note, note if not rows else "") if x)
        rows.append(row("quality", figure, unit, get(champion), BASELINE, get(baseline), others=others, note=text))

    target = f"{policy['metric']} {policy['value']:g}"
    for key, label, unit in FIGURES:
        if key not in champion:
            continue
        first = f"policy {target}; mean of {n} split(s), sd beside" if key == "threshold" else ""
        add(label, unit, lambda s, k=key: s[k]["mean"], first, spread=lambda s, k=key: s[k]["sd"])
    add("worst strategy evasion", "", lambda s: s["worst_evasion"]["mean"],
        f"champion: {champion['worst_evasion']['strategy']}, baseline: {baseline['worst_evasion']['strategy']}; "
        f"per-strategy mean over splits")
    add(f"strategies evading > {MAX_STRATEGY_EVASION:.0%}", "count", lambda s: float(s["n_evasion_over"]),
        f"of {champion['n_strategies']} rule strategies")
    add("worst attacked-clean FPR rise", "points", lambda s: s["worst_rise_points"]["mean"],
        f"champion: {champion['worst_rise_points']['strategy']}, baseline: "
        f"{baseline['worst_rise_points']['strategy']}")
    add(f"strategies raising attacked-clean FPR > {MAX_STRATEGY_RISE_POINTS:g} points", "count",
        lambda s: float(s["n_rise_over"]), f"of {champion['n_strategies']} rule strategies")
    for name in champion["per_strategy"]:
        add(f"evasion: {name}", "", lambda s, n=name: s["per_strategy"][n]["evasion"]["mean"],
            spread=lambda s, n=name: s["per_strategy"][n]["evasion"]["sd"])
        add(f"attacked-clean FPR rise: {name}", "points", lambda s, n=name: s["per_strategy"][n]["rise_points"]["mean"],
            spread=lambda s, n=name: s["per_strategy"][n]["rise_points"]["sd"])
    return rows


# -- the sections -------------------------------------------------------------------------------------


@dataclass
class Judged:
    """What one run of models over the splits gave: the summaries, per-split figures and model info."""

    summaries: dict[str, dict[str, Any]]
    per_split: dict[str, list[dict[str, Any]]]
    info: dict[str, list[dict[str, Any]]]
    policy: dict[str, Any]
    first_models: dict[str, Defender]  # the models of the first split, for timing


def compare(ctx: Context, splits: Sequence[Split], recipe: Recipe = DEFAULT_RECIPE, *,
            strategies: Sequence[str] | None = None, with_korcen: bool = True,
            extras: dict[str, Callable[[list[Example]], Defender]] | None = None) -> Judged:
    """Train ``recipe``'s champion and the baseline on each split and judge both at the policy point.

    ``extras``: more baseline-like models (a factory from training examples), each given its threshold on
    the validation texts by the same policy, as the baseline is."""
    from bench.baselines import KorcenDefender, KorcenUnavailable

    unlabeled = unlabeled_texts(ctx.sizes.quality_unlabeled)
    extras = dict(extras or {})
    per_split: dict[str, list[dict[str, Any]]] = {name: [] for name in (CHAMPION, BASELINE, *extras)}
    info: dict[str, list[dict[str, Any]]] = {name: [] for name in (CHAMPION, BASELINE, *extras)}
    korcen = None
    if with_korcen:
        try:
            korcen = KorcenDefender().load()
            per_split[KORCEN], info[KORCEN] = [], []
        except KorcenUnavailable as exc:
            ctx.details.setdefault("quality_notes", []).append(f"korcen skipped: {exc}")
    policy: dict[str, Any] = {}
    first: dict[str, Defender] = {}
    for split in splits:
        adversarial = adversarial_set(split.test, strategies)
        champion, champion_info = train_recipe(ctx, split, recipe, unlabeled)
        policy = champion_info["policy"]
        cfg = ctx.config(ctx.workdir / "policy-home", training=dict(recipe.training),
                         experimental=dict(recipe.experimental))
        baseline, baseline_info = train_baseline(split, cfg)
        models = {CHAMPION: (champion, champion_info), BASELINE: (baseline, baseline_info)}
        for name, factory in extras.items():
            models[name] = train_baseline(split, cfg, factory=factory)
        if korcen is not None:
            models[KORCEN] = (korcen, {"train_seconds": 0.0, "threshold": korcen.threshold})
        for name, (model, model_info) in models.items():
            started = time.perf_counter()
            per_split[name].append({"split_seed": split.seed, **judge(model, adversarial, policy)})
            model_info = {**model_info, "split_seed": split.seed, "evaluate_seconds": time.perf_counter() - started}
            info[name].append(model_info)
        if not first:
            first = {name: model for name, (model, _) in models.items() if name != KORCEN}
    summaries = {name: aggregate(judged) for name, judged in per_split.items()}
    for name in summaries:
        summaries[name]["train_seconds"] = dict(zip(("mean", "sd"),
                                                    mean_sd([i["train_seconds"] for i in info[name]]), strict=True))
    return Judged(summaries, per_split, info, policy, first)


def run_quality(ctx: Context) -> list[dict[str, Any]]:
    from bench.harness import Skip, row
    from bench.throughput import cold_scoring_rate

    if not BEEP_TRAIN.is_file():
        raise Skip(f"BEEP! data not found at {BEEP_TRAIN} (../shared is absent: {SHARED})")
    splits = beep_splits(ctx.sizes)
    judged = compare(ctx, splits)
    ctx.judged = judged  # quality_holdout reads the same splits' figures instead of training them again
    subsample = ctx.sizes.quality_train is not None or ctx.sizes.quality_test is not None
    note = (f"subsample: {len(splits[0].train)} train / {len(splits[0].test)} test" if subsample else "")
    rows = quality_rows(judged.summaries, judged.policy, note)
    train = {name: judged.summaries[name]["train_seconds"] for name in (CHAMPION, BASELINE)}
    rows.append(row("quality", "training time", "s", train[CHAMPION]["mean"], BASELINE, train[BASELINE]["mean"],
                    others={"sd": train[CHAMPION]["sd"], "baseline sd": train[BASELINE]["sd"]},
                    note=f"fit {len(splits[0].fit)} + validation {len(splits[0].val)} texts; champion: tokenizer, "
                         "n-gram branch, encoder stage, calibration; baseline: fit, calibration"))
    texts = [e.text for e in splits[0].test]
    texts = [texts[i % len(texts)] for i in range(ctx.sizes.texts)]
    rates = {name: cold_scoring_rate(judged.first_models[name], texts, ctx.sizes.repeats)
             for name in (CHAMPION, BASELINE)}
    rows.append(row("quality", "scores(), batch 64, word caches emptied", "texts/s", rates[CHAMPION], BASELINE,
                    rates[BASELINE], note=f"{len(texts)} held-out texts of split {splits[0].seed}; the models "
                                          "of that split; every unknown word looked up again"))
    ctx.details["quality"] = {
        "data": str(BEEP_TRAIN), "split_seeds": [s.seed for s in splits],
        "split": {"test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION},
        "n_fit": len(splits[0].fit), "n_val": len(splits[0].val), "n_test": len(splits[0].test),
        "subsample": subsample, "attack_seed": ATTACK_SEED, "policy": judged.policy,
        "strategies": rule_strategy_names(), "limits": {"strategy_evasion": MAX_STRATEGY_EVASION,
                                                        "rise_points": MAX_STRATEGY_RISE_POINTS},
        "summaries": judged.summaries, "per_split": judged.per_split, "models": judged.info,
        "scoring_rate_cold": rates,
    }
    return rows


def holdout(ctx: Context, splits: Sequence[Split], recipe: Recipe = DEFAULT_RECIPE) -> dict[str, Any]:
    """For each family of ``recipe``: the champion trained without it, its evasion of that family at the
    policy point beside the baseline's and the full recipe's (same splits)."""
    cfg = ctx.config(ctx.workdir / "holdout-home", training=dict(recipe.training), model=dict(recipe.model),
                     experimental=dict(recipe.experimental))
    families = recipe.families(cfg)
    names = rule_strategy_names()
    seeds = [s.seed for s in splits]
    earlier: Judged | None = getattr(ctx, "judged", None)
    judged_seeds = [j["split_seed"] for j in earlier.per_split[CHAMPION]] if earlier is not None else []
    if recipe is DEFAULT_RECIPE and earlier is not None and set(seeds) <= set(judged_seeds):
        per_split, policy = earlier.per_split, earlier.policy
        if not families:  # nothing to train again: every split the quality section judged
            seeds = judged_seeds
    else:
        judged = compare(ctx, splits, recipe, with_korcen=False)
        per_split, policy = judged.per_split, judged.policy
    summaries = {m: aggregate([j for j in per_split[m] if j["split_seed"] in seeds]) for m in (CHAMPION, BASELINE)}
    out: dict[str, Any] = {"recipe": recipe.name, "families": families, "policy": policy, "split_seeds": seeds,
                           "full": {n: summaries[CHAMPION]["per_strategy"][n]["evasion"] for n in names},
                           "baseline": {n: summaries[BASELINE]["per_strategy"][n]["evasion"] for n in names},
                           "held_out": {}}
    unlabeled = unlabeled_texts(ctx.sizes.quality_unlabeled)
    for family in families:
        reduced = recipe.without(family, cfg)
        values = []
        for split in splits:
            model, _ = train_recipe(ctx, split, reduced, unlabeled)
            values.append(judge(model, adversarial_set(split.test, [family]), policy)["per_strategy"][family]
                          ["evasion"])
        mean, sd = mean_sd(values)
        out["held_out"][family] = {"mean": mean, "sd": sd, "splits": values}
    return out


def run_quality_holdout(ctx: Context) -> list[dict[str, Any]]:
    from bench.harness import Skip, row

    if not BEEP_TRAIN.is_file():
        raise Skip(f"BEEP! data not found at {BEEP_TRAIN} (../shared is absent: {SHARED})")
    splits = beep_splits(ctx.sizes, SPLIT_SEEDS[: ctx.sizes.holdout_splits])
    result = holdout(ctx, splits)
    ctx.details["quality_holdout"] = result
    rows = []
    n = len(result["split_seeds"])
    if not result["families"]:
        note = (f"the default recipe trains on no rule family, so every family is unseen: its evasion beside the "
                f"baseline's; mean of {n} split(s)")
        for i, name in enumerate(n for n in rule_strategy_names() if not is_level(n)):
            full, base = result["full"][name], result["baseline"][name]
            rows.append(row("quality_holdout", f"unseen family evasion: {name}", "", full["mean"], BASELINE,
                            base["mean"], others={"sd": full["sd"], "baseline sd": base["sd"]},
                            note=note if i == 0 else ""))
        return rows
    for i, family in enumerate(result["families"]):
        held, base, full = result["held_out"][family], result["baseline"][family], result["full"][family]
        rows.append(row("quality_holdout", f"held-out family evasion: {family}", "", held["mean"], BASELINE,
                        base["mean"], others={"sd": held["sd"], "baseline sd": base["sd"], "trained on it": full["mean"]},
                        note=f"champion trained without {family}; mean of {n} split(s)" if i == 0 else ""))
    return rows


def markdown(details: dict[str, Any]) -> list[str]:
    """The quality section's headline figures as a markdown table (mean ± sd over splits), champion beside
    the baseline: what the README's quality table shows."""
    summaries, policy = details["summaries"], details["policy"]
    champion, baseline = summaries[CHAMPION], summaries[BASELINE]
    n = len(details["split_seeds"])

    def cell(summary: dict[str, Any], key: str) -> str:
        value = summary[key]
        return "—" if value["mean"] is None else f"{value['mean']:.3f} ± {value['sd']:.3f}"

    lines = [f"| BEEP!, {n} splits, policy {policy['metric']} {policy['value']:g} (mean ± sd) | champion | "
             f"{BASELINE} |", "|---|---|---|"]
    for key, label, _ in FIGURES:
        if key in champion:
            lines.append(f"| {label} | {cell(champion, key)} | {cell(baseline, key)} |")
    for key, label, unit in (("worst_evasion", "worst rule-strategy evasion", ""),
                             ("worst_rise_points", "worst attacked-clean FPR rise", " pts")):
        lines.append(f"| {label} | {champion[key]['mean']:.3f}{unit} ({champion[key]['strategy']}) | "
                     f"{baseline[key]['mean']:.3f}{unit} ({baseline[key]['strategy']}) |")
    total = champion["n_strategies"]
    lines.append(f"| strategies over {MAX_STRATEGY_EVASION:.0%} evasion / over {MAX_STRATEGY_RISE_POINTS:g} pts rise "
                 f"(of {total}) | {champion['n_evasion_over']} / {champion['n_rise_over']} | "
                 f"{baseline['n_evasion_over']} / {baseline['n_rise_over']} |")
    train = {m: summaries[m]["train_seconds"] for m in (CHAMPION, BASELINE)}
    lines.append(f"| training time (s) | {train[CHAMPION]['mean']:.1f} ± {train[CHAMPION]['sd']:.1f} | "
                 f"{train[BASELINE]['mean']:.1f} ± {train[BASELINE]['sd']:.1f} |")
    rates = details.get("scoring_rate_cold") or {}
    if rates:
        lines.append(f"| texts/s, batch 64, word caches emptied | {rates[CHAMPION]:,.0f} | {rates[BASELINE]:,.0f} |")
    return lines
