"""One run of the adversarial loop, in one process.

champion → attack → evaluate → gate → collect → augment → train → compare → promote: a short
sequence of the step functions in :mod:`content_arena.steps`, the same ones the Kubeflow
components run one per pod (:mod:`content_arena.stages`). This module only orders them, shows
progress and returns a :class:`PipelineSummary`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from content_arena import steps
from content_arena.config import ArenaConfig
from content_arena.quality_gate import GateResult

# Names callers imported from here before the steps had their own package.
from content_arena.steps import (  # noqa: F401
    EVAL_ATTACK_SEED,
    Splits,
    Workspace,
    load_dataset,
    load_splits,
    record_metrics,
    register_model,
    report_metrics,
    robustness_validation_set,
)

log = logging.getLogger(__name__)


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


def run_pipeline(cfg: ArenaConfig, *, console: Any | None = None) -> PipelineSummary:
    """Run the loop once: attack the champion, gate it, and when it fails retrain, compare and promote.

    Args:
        cfg: The configuration.
        console: A rich console for progress (None: log only).

    Returns:
        The run's summary (the JSON contract of ``arena pipeline run --json``).
    """
    started = time.perf_counter()
    stage = Stage(console)
    ws = Workspace.open(cfg)

    with stage("load data"):
        splits = steps.load_splits(cfg)
    with stage("champion"):
        champ = steps.ensure_champion(ws, splits)
        champion = steps.load_model(ws, champ.version)
        strategies = steps.arm(steps.configured_strategies(cfg), champion)
    with stage.progress(f"attack: {cfg.attack.rounds} rounds × {len(strategies)} strategies") as on_progress:
        battle = steps.run_battle(ws, champion, strategies, splits.seeds, champ.version, on_progress=on_progress)
    with stage("evaluate champion on clean and adversarial held-out sets"):
        adversarial = steps.adversarial_set(splits.test, strategies, champion)
        before = steps.evaluate_model(ws, champion, adversarial, version=champ.version, role="champion")
    gate = steps.judge_champion(ws, before)
    summary = PipelineSummary(
        gate=gate,
        champion_before={"version": champ.version, **before.report.summary()},
        challenger=None,
        promoted=False,
        champion_version=champ.version,
        battle=battle.to_dict(),
        bootstrapped=champ.bootstrapped,
    )
    if gate.passed:
        summary.seconds = time.perf_counter() - started
        return summary

    with stage("collect failures"):
        collected = steps.collect_evasions(ws, battle.battle_id)
    with stage("augment"):
        made = steps.training_set(ws, collected.failures, splits, strategies, battle.battle_id)
    with stage(f"train challenger on {len(made.examples)} examples"):
        trained = steps.fit_challenger(ws, champion.model_dir, made.examples, splits, strategies,
                                       ws.work_dir / f"challenger-b{battle.battle_id[:8]}", battle_id=battle.battle_id)
    with stage("evaluate challenger on the same sets"):
        challenger = steps.load_model(ws, trained.result.model_dir)
        after = steps.evaluate_model(ws, challenger, adversarial, version=trained.version, role="challenger")
        comparison = steps.compare_models(ws, before, after)
    with stage("promote" if comparison.promote else "reject challenger"):
        steps.apply_decision(ws, comparison.promote, challenger_version=trained.version,
                             champion_version=champ.version)
    summary.challenger = {"version": trained.version, "mode": trained.result.mode, **after.report.summary()}
    summary.comparison = comparison.to_dict()
    summary.promoted = comparison.promote
    summary.champion_version = trained.version if comparison.promote else champ.version
    summary.seconds = time.perf_counter() - started
    return summary
