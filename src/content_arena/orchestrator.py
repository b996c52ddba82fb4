"""One run of the adversarial loop, in one process.

champion → attack → evaluate → gate → collect → augment → train → compare → promote: a short
sequence of the step functions in :mod:`content_arena.steps`, the same ones the Kubeflow
components run one per pod (:mod:`content_arena.stages`). This module only orders them, shows
progress and returns a :class:`PipelineSummary`.

:func:`run_one_cycle` is that sequence once, with :class:`CycleHooks` for what a caller changes (the
strategies, extra training examples, checks that may veto a promotion); :func:`run_pipeline` is it
with no hooks, and :mod:`content_arena.coevolution` runs it many times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from content_arena import steps
from content_arena.attacks import Strategy
from content_arena.config import ArenaConfig
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.evaluation import AdversarialSet
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


@dataclass
class CycleHooks:
    """What a caller may change in one run of the loop; every default is ``arena pipeline run``'s.

    Attributes:
        label: Prefix of the stage titles and of the challenger's work folder (``"cycle 3"``).
        strategies: The strategies armed against the loaded champion (default: ``attack.strategies``).
        more_examples: Extra training examples, given the loaded champion and the step's training set
            (for example hard examples and replayed failures); appended to the set.
        checks: The checks that may veto a promotion (see :func:`content_arena.steps.compare_models`),
            given the loaded champion and challenger.
    """

    label: str = ""
    strategies: Callable[[Defender], list[Strategy]] | None = None
    more_examples: Callable[[Defender, steps.TrainingSet], list[Example]] | None = None
    checks: Callable[[Defender, Defender], Sequence[steps.PromotionCheck]] | None = None

    def title(self, text: str) -> str:
        return f"{self.label}: {text}" if self.label else text


@dataclass
class CycleRun:
    """One run of the loop: its summary, plus what a caller of :func:`run_one_cycle` may go on with."""

    summary: PipelineSummary
    champion: Defender
    adversarial: AdversarialSet
    evaluation: steps.Evaluation
    challenger: Defender | None = None
    training: steps.TrainingSet | None = None

    @property
    def champion_now(self) -> Defender:
        """The champion the run left: the challenger when it was promoted."""
        return self.challenger if self.summary.promoted and self.challenger is not None else self.champion


def run_one_cycle(ws: Workspace, splits: Splits, hooks: CycleHooks | None = None, *, console: Any | None = None,
                  started: float | None = None) -> CycleRun:
    """champion → attack → evaluate → gate, and when the gate fails collect → augment → train → compare → promote.

    Args:
        ws: The workspace.
        splits: The loop's data.
        hooks: What the caller changes (None: nothing, as ``arena pipeline run``).
        console: A rich console for progress (None: log only).
        started: ``time.perf_counter()`` at the start of the run (default: now), for ``summary.seconds``.

    Returns:
        The run.
    """
    started = time.perf_counter() if started is None else started
    hooks = hooks or CycleHooks()
    cfg = ws.config
    stage = Stage(console)
    with stage(hooks.title("champion")):
        champ = steps.ensure_champion(ws, splits)
        champion = steps.load_model(ws, champ.version)
        if hooks.strategies is not None:
            strategies = hooks.strategies(champion)
        else:
            strategies = steps.arm(steps.configured_strategies(cfg), champion)
    title = hooks.title(f"attack: {cfg.attack.rounds} rounds × {len(strategies)} strategies")
    with stage.progress(title) as on_progress:
        battle = steps.run_battle(ws, champion, strategies, splits.seeds, champ.version, on_progress=on_progress)
    with stage(hooks.title("evaluate champion on clean and adversarial held-out sets")):
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
    run = CycleRun(summary, champion, adversarial, before)
    if gate.passed:
        summary.seconds = time.perf_counter() - started
        return run

    with stage(hooks.title("collect failures")):
        collected = steps.collect_evasions(ws, battle.battle_id)
    with stage(hooks.title("augment")):
        made = steps.training_set(ws, collected.failures, splits, strategies, battle.battle_id)
        examples = list(made.examples)
        if hooks.more_examples is not None:
            examples += hooks.more_examples(champion, made)
    run.training = made
    folder = "challenger-" + (hooks.label.replace(" ", "") + "-" if hooks.label else "") + f"b{battle.battle_id[:8]}"
    with stage(hooks.title(f"train challenger on {len(examples)} examples")):
        trained = steps.fit_challenger(ws, champion.model_dir, examples, splits, strategies, ws.work_dir / folder,
                                       battle_id=battle.battle_id)
    with stage(hooks.title("evaluate challenger on the same sets")):
        challenger = steps.load_model(ws, trained.result.model_dir)
        after = steps.evaluate_model(ws, challenger, adversarial, version=trained.version, role="challenger")
        checks = hooks.checks(champion, challenger) if hooks.checks is not None else ()
        comparison = steps.compare_models(ws, before, after, checks)
    run.challenger = challenger
    with stage(hooks.title("promote" if comparison.promote else "reject challenger")):
        steps.apply_decision(ws, comparison.promote, challenger_version=trained.version,
                             champion_version=champ.version)
    summary.challenger = {"version": trained.version, "mode": trained.result.mode, **after.report.summary()}
    summary.comparison = comparison.to_dict()
    summary.promoted = comparison.promote
    summary.champion_version = trained.version if comparison.promote else champ.version
    summary.seconds = time.perf_counter() - started
    return run


def run_pipeline(cfg: ArenaConfig, *, console: Any | None = None) -> PipelineSummary:
    """Run the loop once: attack the champion, gate it, and when it fails retrain, compare and promote.

    Args:
        cfg: The configuration.
        console: A rich console for progress (None: log only).

    Returns:
        The run's summary (the JSON contract of ``arena pipeline run --json``).
    """
    started = time.perf_counter()
    ws = Workspace.open(cfg)
    with Stage(console)("load data"):
        splits = steps.load_splits(cfg)
    return run_one_cycle(ws, splits, console=console, started=started).summary
