"""One run of the adversarial loop.

attack → evaluate → gate → collect → augment → train → compare → promote. Each stage is a plain
function elsewhere in the library; this module wires them in order, logs each step, and returns a
:class:`PipelineSummary`. The CLI, the API and the KFP components call these same stages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from content_arena.attack_runner import AttackRunner, BattleSummary
from content_arena.attacks import Strategy, resolve_strategies
from content_arena.attacks.adaptive import bind_adaptive, build_adversarial_set
from content_arena.config import ArenaConfig
from content_arena.data import Example, load_examples, load_seed_corpus, split_examples
from content_arena.data_augmentor import augment, with_replay
from content_arena.defender import TransformerDefender, load_defender
from content_arena.evaluation import AdversarialSet, EvaluationReport, evaluate
from content_arena.live_samples import with_reviewed
from content_arena.model_promoter import compare, promote, reject
from content_arena.quality_gate import GateResult, check_quality
from content_arena.registry import CHALLENGER, CHAMPION, ModelRegistry, RunTracker
from content_arena.sample_collector import collect_failures
from content_arena.store import Store, open_store
from content_arena.training import TrainResult, train_challenger, train_champion

log = logging.getLogger(__name__)

# Attack seeds for the held-out adversarial set differ from the battle's, so the challenger never
# sees the exact evaluation variants.
EVAL_ATTACK_SEED = 10_007


@dataclass
class PipelineSummary:
    gate: GateResult
    champion_before: dict[str, Any]
    challenger: dict[str, Any] | None
    promoted: bool
    champion_version: int
    battle: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    seconds: float = 0.0
    bootstrapped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": {"decision": self.gate.decision.value, "reasons": list(self.gate.reasons)},
            "champion_before": self.champion_before,
            "challenger": self.challenger,
            "promoted": self.promoted,
            "champion_version": self.champion_version,
            "battle": self.battle,
            "comparison": self.comparison,
            "bootstrapped": self.bootstrapped,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Workspace:
    """The long-lived handles of a run: config, store, registry."""

    config: ArenaConfig
    store: Store
    registry: ModelRegistry

    @classmethod
    def open(cls, config: ArenaConfig) -> Workspace:
        config.home_path.mkdir(parents=True, exist_ok=True)
        return cls(config, open_store(config.storage_url), ModelRegistry.from_config(config))

    @property
    def work_dir(self) -> Path:
        path = self.config.home_path / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path


class Stage:
    """Logs one step with its duration; shows a spinner when a console is attached."""

    def __init__(self, console: Any | None):
        self.console = console

    @contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        started = time.perf_counter()
        if self.console is not None:
            with self.console.status(f"[bold]{title}…"):
                yield
            self.console.log(f"[green]✓[/] {title} ({time.perf_counter() - started:.1f}s)")
        else:
            yield
        log.info("%s done in %.1fs", title, time.perf_counter() - started)

    @contextmanager
    def progress(self, title: str) -> Iterator[Any]:
        """A progress bar for a stage that reports (done, total); yields the callback."""
        started = time.perf_counter()
        if self.console is None:
            yield None
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=self.console, transient=True) as bar:
                task = bar.add_task(title, total=None)
                yield lambda done, total: bar.update(task, completed=done, total=total)
            self.console.log(f"[green]✓[/] {title} ({time.perf_counter() - started:.1f}s)")
        log.info("%s done in %.1fs", title, time.perf_counter() - started)


# -- stages ---------------------------------------------------------------------------------------


def load_dataset(cfg: ArenaConfig) -> tuple[list[Example], list[Example]]:
    """The configured labelled data (the shipped seed corpus by default), split train/test."""
    examples = load_seed_corpus() if cfg.data.path is None else load_examples(cfg.data.path, cfg.data.format)
    return split_examples(examples, test_fraction=cfg.data.test_fraction, seed=cfg.data.split_seed)


@dataclass
class Splits:
    """The loop's data: ``train`` is split again into ``fit`` (training, and the battle's seeds) and
    ``val`` (best epoch); ``test`` is held out for evaluation and the champion/challenger comparison."""

    train: list[Example]
    test: list[Example]
    fit: list[Example]
    val: list[Example]

    @property
    def seeds(self) -> list[Example]:
        """Toxic texts to attack: from ``fit`` only, so that no validation text comes back through the
        battle's failures into a challenger's training set."""
        return [e for e in self.fit if e.label == 1]


def load_splits(cfg: ArenaConfig) -> Splits:
    """The deterministic splits every entry point (loop, CLI, API battles, KFP steps) uses."""
    train, test = load_dataset(cfg)
    fit, val = split_examples(train, test_fraction=0.1, seed=cfg.data.split_seed + 1)
    return Splits(train, test, fit, val)


def ensure_champion(ws: Workspace, train: Sequence[Example], val: Sequence[Example]) -> tuple[int, bool]:
    """The registered champion's version; trains and registers the first one when there is none."""
    version = ws.registry.version_for(CHAMPION)
    if version is not None:
        return version, False
    cfg = ws.config
    with ws.registry.run("bootstrap-champion", tags={"stage": "train", "mode": "full"}) as run:
        result = train_champion(train, ws.work_dir / "bootstrap-champion", cfg, val_examples=val, tracker=run)
        version = register_model(ws, result, run, status="champion", alias=CHAMPION)
    ws.registry.set_alias(CHAMPION, version)
    return version, True


def register_model(ws: Workspace, result: TrainResult, run: RunTracker, *, status: str, alias: str | None) -> int:
    from content_arena.defender.artifacts import weights_sha256

    sha = weights_sha256(result.model_dir)
    version = ws.registry.register(result.model_dir, run, tags={"mode": result.mode, "sha256": sha})
    ws.store.upsert_model(
        name=ws.registry.model_name,
        version=version,
        uri=ws.registry.uri(version),
        run_id=run.run_id,
        alias=alias,
        sha256=sha,
        metrics=result.val_metrics,
        params={"mode": result.mode, "n_train": result.n_train, "best_epoch": result.best_epoch},
        status=status,
    )
    return version


def run_battle(
    ws: Workspace,
    defender: TransformerDefender,
    strategies: Sequence[Strategy],
    seeds: Sequence[Example],
    model_version: int,
    on_progress: Any = None,
) -> BattleSummary:
    """Attack the toxic seeds; resumes this model's unfinished battle with the same plan if there is one."""
    cfg = ws.config
    runner = AttackRunner(
        defender, ws.store, strategies, batch_size=cfg.attack.batch_size, seed=cfg.attack.seed, on_progress=on_progress
    )
    names = [s.name for s in strategies]
    battle_id = None
    for battle in ws.store.list_battles(limit=20):
        if (
            battle.status in ("pending", "running", "failed")
            and battle.model_version == str(model_version)
            and list(battle.strategies) == names
            and battle.rounds_planned == cfg.attack.rounds
            and battle.source == "pipeline"
        ):
            battle_id = battle.id
            log.info("resuming unfinished battle %s", battle_id)
            break
    if battle_id is None:
        battle_id = runner.start(seeds, cfg.attack.rounds, model_version=str(model_version), source="pipeline")
    return runner.run(battle_id, seeds)


def record_metrics(ws: Workspace, version: int, metrics: dict[str, float]) -> None:
    """Merge evaluation metrics into a version's model_metadata row, keeping its other fields."""
    name = ws.registry.model_name
    record = ws.store.get_model(name, version)
    if record is None:
        ws.store.upsert_model(name=name, version=version, uri=ws.registry.uri(version), metrics=metrics)
        return
    ws.store.upsert_model(
        name=name, version=version, uri=record.uri, run_id=record.run_id, alias=record.alias, sha256=record.sha256,
        metrics={**(record.metrics or {}), **metrics}, params=record.params, status=record.status,
    )


def robustness_validation_set(val: Sequence[Example], strategies: Sequence[Strategy]) -> list[Example]:
    """Validation texts plus one attacked copy of each per strategy: the challenger's best epoch is
    the one that classifies attacked text best, not only clean text."""
    attacked = AdversarialSet.build(val, strategies, seed=EVAL_ATTACK_SEED + 1)
    out = list(val)
    for variants in attacked.variants.values():
        out.extend(Example(text, e.label) for text, e in zip(variants, val, strict=True))
    return out


def champion_reference_f1(ws: Workspace, version: int) -> float | None:
    record = ws.store.get_model(ws.registry.model_name, version)
    if record is None or not record.metrics:
        return None
    value = record.metrics.get("clean_f1")
    return float(value) if value is not None else None


def run_pipeline(cfg: ArenaConfig, *, console: Any | None = None) -> PipelineSummary:
    started = time.perf_counter()
    stage = Stage(console)
    ws = Workspace.open(cfg)
    strategies = resolve_strategies(cfg.attack.strategies, llm=cfg.llm_options())

    with stage("load data"):
        splits = load_splits(cfg)
        test, fit_set, val = splits.test, splits.fit, splits.val
    with stage("champion"):
        champion_version, bootstrapped = ensure_champion(ws, fit_set, val)
        champion = load_defender(ws.registry.uri(champion_version), cfg)
        champion.version = str(champion_version)
        bind_adaptive(strategies, champion)  # "adaptive" in attack.strategies searches this champion
    seeds = splits.seeds
    with stage.progress(f"attack: {cfg.attack.rounds} rounds × {len(strategies)} strategies") as on_progress:
        battle = run_battle(ws, champion, strategies, seeds, champion_version, on_progress=on_progress)
    with stage("evaluate champion on clean and adversarial held-out sets"):
        adversarial = build_adversarial_set(test, strategies, EVAL_ATTACK_SEED, champion)
        before = evaluate(champion, adversarial)
        reference = champion_reference_f1(ws, champion_version)
        if reference is None:
            record_metrics(ws, champion_version, report_metrics(before))
    gate = check_quality(before, cfg.quality_gate, reference_f1=reference)
    log.info("quality gate: %s %s", gate.decision.value, "; ".join(gate.reasons))
    summary = PipelineSummary(
        gate=gate,
        champion_before={"version": champion_version, **before.summary()},
        challenger=None,
        promoted=False,
        champion_version=champion_version,
        battle=battle.to_dict(),
        bootstrapped=bootstrapped,
    )
    with ws.registry.run("evaluate-champion", tags={"stage": "evaluate", "model_version": champion_version}) as run:
        run.log_metrics(report_metrics(before))
        run.set_tags({"gate": gate.decision.value})
    if gate.passed:
        summary.seconds = time.perf_counter() - started
        return summary

    with stage("collect failures"):
        collected = collect_failures(ws.store, battle.battle_id)
        log.info("collected %d failures (%d duplicates)", len(collected.failures), collected.duplicates)
    with stage("augment"):
        augmented = augment(
            collected.failures, fit_set, strategies, cfg.augment, toxic_pool=seeds, seed=cfg.attack.seed
        )
        if augmented.examples:
            challenger_train = with_replay(augmented.examples, fit_set, cfg.augment.replay_ratio, seed=cfg.attack.seed)
        else:
            # The gate failed on F1 or on attacked-clean FPR, not on evasions: retrain on the data itself.
            log.info("no evasions to learn from: the challenger trains on the training set alone")
            challenger_train = list(fit_set)
        challenger_train = with_reviewed(challenger_train, ws.store)  # live texts a person labelled
        ws.store.add_training_samples(
            [
                {"text": e.text, "label": e.label, "source": "augment", "battle_id": battle.battle_id,
                 "text_hash": _hash(e.text)}
                for e in augmented.examples
                if e.source == "augment"
            ]
        )
    with stage(f"train challenger on {len(challenger_train)} examples"):
        with ws.registry.run("challenger", tags={"stage": "train", "battle_id": battle.battle_id}) as run:
            result = train_challenger(
                champion.model_dir, challenger_train, ws.work_dir / f"challenger-b{battle.battle_id[:8]}", cfg,
                val_examples=robustness_validation_set(val, strategies), tracker=run,
            )
            challenger_version = register_model(ws, result, run, status="challenger", alias=None)
            ws.registry.set_alias(CHALLENGER, challenger_version)
            # The store mirrors the alias only once the registry has it.
            ws.store.set_model_status(ws.registry.model_name, challenger_version, "challenger", alias=CHALLENGER)
    with stage("evaluate challenger on the same sets"):
        challenger = TransformerDefender(result.model_dir, batch_size=cfg.inference.batch_size).load()
        after = evaluate(challenger, adversarial)
        comparison = compare(before, after, cfg.quality_gate)
        with ws.registry.run("evaluate-challenger", tags={"stage": "compare", "model_version": challenger_version}) as run:
            run.log_metrics(report_metrics(after))
            run.set_tags({"promote": comparison.promote})
        record_metrics(ws, challenger_version, report_metrics(after))
    with stage("promote" if comparison.promote else "reject challenger"):
        if comparison.promote:
            promote(ws.registry, ws.store, challenger_version=challenger_version, champion_version=champion_version)
        else:
            reject(ws.registry, ws.store, challenger_version=challenger_version)
    summary.challenger = {"version": challenger_version, "mode": result.mode, **after.summary()}
    summary.comparison = comparison.to_dict()
    summary.promoted = comparison.promote
    summary.champion_version = challenger_version if comparison.promote else champion_version
    summary.seconds = time.perf_counter() - started
    return summary


def report_metrics(report: EvaluationReport) -> dict[str, float]:
    metrics = {
        "clean_f1": report.clean.f1,
        "clean_precision": report.clean.precision,
        "clean_recall": report.clean.recall,
        "clean_fpr": report.clean.fpr,
        "evasion_rate": report.evasion_rate,
        "attacked_clean_fpr": report.attacked_clean_fpr,
    }
    if report.clean.auroc is not None:
        metrics["clean_auroc"] = report.clean.auroc
    for name, result in report.attacks.items():
        metrics[f"evasion_rate.{name}"] = result.evasion_rate
        metrics[f"attacked_clean_fpr.{name}"] = result.attacked_clean_fpr
    return metrics


def _hash(text: str) -> str:
    from content_arena.sample_collector import text_hash

    return text_hash(text)
