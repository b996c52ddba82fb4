"""Many cycles of the loop: the champion hardens while the attacker evolves.

One cycle is one run of the loop's steps (champion → attack → evaluate → gate → collect → augment →
train → compare → promote), attacking the champion the previous cycle left. Around the steps, a cycle
adds what one run cannot do:

* **an evolving attacker** (:mod:`content_arena.attacks.evolution`): after the gate, strategies that
  stopped evading escalate into composites, higher levels, the search's own compositions and a larger
  adaptive budget; the next cycle attacks with the new population;
* **hard examples**: training texts the champion gets wrong (toxic ones it misses, clean ones it
  flags, attacked or not) get ``augment.hard_example_copies`` extra copies in the challenger's set;
* **replay of earlier failures**: each cycle's augmented failures and attacked clean negatives are
  kept under ``ARENA_HOME/coevolution/replay.jsonl``; a sample of ``augment.replay_failures`` of them
  joins every later challenger's set;
* **no forgetting**: each cycle's held-out adversarial set is kept; a challenger the promoter would
  promote is rejected when its adversarial error on any earlier cycle's set is worse than the
  champion's by more than :data:`FORGET_TOLERANCE` (:class:`NoForgetting`), or when its clean recall
  falls more than :data:`RECALL_TOLERANCE` below the first cycle's champion's, both at their policy
  thresholds (:class:`RecallAnchor`, ``reference.json``: no drift by small steps). Both are promotion
  checks handed to :func:`content_arena.steps.compare_models`.

The steps themselves are :func:`content_arena.orchestrator.run_one_cycle`, the function a single
``arena pipeline run`` calls; this module only passes it hooks.

State between cycles is the registry (the ``champion`` alias) plus the files under
``ARENA_HOME/coevolution/``: ``lineage.json`` (the population, see
:class:`~content_arena.attacks.evolution.Population`), ``cycles.jsonl`` (one summary per cycle, for the
report), ``replay.jsonl`` and ``adversarial/cycle-N.json``. A later ``--cycles`` run continues the
numbering and the population.

Every figure is at each model's policy threshold (:func:`content_arena.evaluation.evaluate` reads
``defender.threshold``, set by ``defender.operating_point``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from content_arena import steps
from content_arena.attacks import AdaptiveAttacker, AdaptiveStrategy, Strategy, resolve_strategies
from content_arena.attacks.adaptive import DEFAULT_TRANSFORMATIONS
from content_arena.attacks.evolution import Population
from content_arena.config import ArenaConfig
from content_arena.data import Example
from content_arena.evaluation import AdversarialSet, EvaluationReport
from content_arena.evaluation import evaluate as run_evaluation
from content_arena.model_promoter import adversarial_error
from content_arena.orchestrator import CycleHooks, PipelineSummary, Stage, run_one_cycle, run_pipeline
from content_arena.steps import EVAL_ATTACK_SEED, Splits, Workspace

__all__ = [
    "FORGET_TOLERANCE",
    "MAX_CYCLES",
    "RECALL_TOLERANCE",
    "CycleSummary",
    "CyclesResult",
    "NoForgetting",
    "RecallAnchor",
    "cycle_summary",
    "forgetting_check",
    "hard_examples",
    "mined_examples",
    "read_cycle_log",
    "run_cycles",
    "state_dir",
]

log = logging.getLogger(__name__)

MAX_CYCLES = 100
# A challenger may be this much worse (adversarial error) on an earlier cycle's set than the champion:
# a point or so is a handful of texts on a small held-out set, below that it is noise, above it a
# forgotten fix.
FORGET_TOLERANCE = 0.01
# A challenger may catch this much less of the clean toxic test texts than the loop's first champion:
# each promotion is judged against its own champion, so without an anchor small per-cycle losses add up.
RECALL_TOLERANCE = 0.01
# Toxic training texts the search probes each cycle for compositions worth naming.
PROBE_TEXTS = 64
_PROBE_SEED = 30_011
_MINE_SEED = 40_009


def state_dir(cfg: ArenaConfig) -> Path:
    """``ARENA_HOME/coevolution``: the population, cycle log, replay and earlier adversarial sets."""
    path = cfg.home_path / "coevolution"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class CycleSummary:
    """One cycle, as ``arena pipeline run --json`` lists it under ``cycles``."""

    cycle: int
    gate: str
    reasons: list[str]
    evasion: dict[str, float]
    evasion_rate: float
    recall: float
    fpr: float
    attacked_clean_fpr: float
    promoted: bool
    champion_version: int
    challenger_version: int | None = None
    decision: list[str] = field(default_factory=list)
    born: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    forgetting: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cycle_summary(summary: PipelineSummary, cycle: int, *, born: Sequence[str] = (), retired: Sequence[str] = (),
                  forgetting: Sequence[dict[str, Any]] = ()) -> CycleSummary:
    """The cycle's summary from the run's :class:`~content_arena.orchestrator.PipelineSummary`.

    Args:
        summary: The run.
        cycle: Its cycle number.
        born: Strategies the attacker bred from it.
        retired: Strategies it retired.
        forgetting: The checks on earlier cycles' adversarial sets.

    Returns:
        The summary.
    """
    before = summary.champion_before
    return CycleSummary(
        cycle=cycle,
        gate=summary.gate.decision.value,
        reasons=list(summary.gate.reasons),
        evasion={k: round(float(v), 4) for k, v in before.get("per_strategy", {}).items()},
        evasion_rate=round(float(before.get("evasion_rate", 0.0)), 4),
        recall=round(float(before.get("recall", 0.0)), 4),
        fpr=round(float(before.get("fpr", 0.0)), 4),
        attacked_clean_fpr=round(float(before.get("attacked_clean_fpr", 0.0)), 4),
        promoted=summary.promoted,
        champion_version=summary.champion_version,
        challenger_version=(summary.challenger or {}).get("version"),
        decision=list((summary.comparison or {}).get("reasons", [])),
        born=list(born),
        retired=list(retired),
        forgetting=list(forgetting),
        seconds=round(summary.seconds, 2),
    )


@dataclass
class CyclesResult:
    """Every cycle's run; :meth:`to_dict` is the last run's summary plus ``cycles``."""

    runs: list[PipelineSummary]
    cycles: list[CycleSummary]
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = self.runs[-1].to_dict()
        out["cycles"] = [c.to_dict() for c in self.cycles]
        out["stopped_early"] = self.stopped_early
        return out


# ------------------------------------------------------------------------------------ training


def hard_examples(model: Any, examples: Sequence[Example], copies: int) -> list[Example]:
    """``copies`` extra copies of each example ``model`` gets wrong at its threshold.

    Args:
        model: A loaded defender (batched ``scores``, ``threshold``).
        examples: Training examples (never validation or test ones).
        copies: Extra copies of each hard one (0: none).

    Returns:
        The extra copies (source ``hard``).
    """
    if copies < 1 or not examples:
        return []
    scores = model.scores([e.text for e in examples])
    threshold = float(model.threshold)
    hard = [e for e, s in zip(examples, scores, strict=True) if (float(s) >= threshold) != bool(e.label)]
    return [Example(e.text, e.label, lang=e.lang, source="hard") for e in hard for _ in range(copies)]


def mined_examples(model: Any, pool: Sequence[Example], strategies: Sequence[Strategy], per_class: int,
                   seed: int) -> list[Example]:
    """The hardest attacked copies of ``pool`` for ``model``: ``per_class`` toxic and ``per_class`` clean.

    Each pool text gets one attacked copy, by a rule strategy of ``strategies`` or (every other text, when
    the adaptive search is bound) by the search's random moves (:meth:`AdaptiveAttacker.random_edits`,
    no query). The toxic copies ``model`` scores lowest and the clean copies it scores highest are kept,
    as many of each: the texts nearest the wrong side of its threshold, balanced so the set's share of
    toxic texts does not move.

    Args:
        model: The champion (batched ``scores``).
        pool: Training examples (never validation or test ones).
        strategies: The cycle's strategies, ``adaptive`` bound to the champion.
        per_class: How many of each label (0: none).
        seed: Attack seed.

    Returns:
        The mined copies (source ``mined``).
    """
    rules = [s for s in strategies if not isinstance(s, AdaptiveStrategy)]
    search = next((s.attacker for s in strategies if isinstance(s, AdaptiveStrategy) and s.attacker is not None), None)
    if per_class < 1 or not pool or not (rules or search):
        return []
    rng = random.Random(seed)
    copies: list[Example] = []
    for index, example in enumerate(pool):
        if search is not None and (index % 2 or not rules):
            text = search.random_edits(example.text, seed + index, edits=1 + rng.randrange(3))[0]
        else:
            text = rules[rng.randrange(len(rules))].attack(example.text, seed=seed + index)
        if text != example.text:
            copies.append(Example(text, example.label, lang=example.lang, source="mined"))
    if not copies:
        return []
    scores = model.scores([e.text for e in copies])
    ranked = sorted(zip(scores, range(len(copies)), strict=True))
    toxic = [copies[i] for _, i in ranked if copies[i].label][:per_class]
    clean = [copies[i] for _, i in reversed(ranked) if not copies[i].label][:per_class]
    n = min(len(toxic), len(clean))
    return toxic[:n] + clean[:n]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line after a crash: skip it
            continue
    return out


def _append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def replayed(state: Path, limit: int, seed: int) -> list[Example]:
    """A sample of ``limit`` earlier cycles' failures (deterministic per ``seed``)."""
    rows = _read_jsonl(state / "replay.jsonl")
    if limit < 1 or not rows:
        return []
    rng = random.Random(seed)
    sample = rows if len(rows) <= limit else rng.sample(rows, limit)
    return [Example(r["text"], int(r["label"]), source="replay") for r in sample]


# ------------------------------------------------------------------------------------ no forgetting


def _save_adversarial(state: Path, cycle: int, adversarial: AdversarialSet) -> Path:
    path = state / "adversarial" / f"cycle-{cycle}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"seed": adversarial.seed, "examples": [[e.text, e.label] for e in adversarial.examples],
               "variants": {k: list(v) for k, v in adversarial.variants.items()}}
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


def earlier_sets(state: Path, before_cycle: int) -> dict[int, AdversarialSet]:
    """The held-out adversarial sets saved by cycles before ``before_cycle``."""
    out: dict[int, AdversarialSet] = {}
    for path in sorted((state / "adversarial").glob("cycle-*.json")):
        cycle = int(path.stem.split("-")[1])
        if cycle >= before_cycle:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        examples = tuple(Example(t, int(label)) for t, label in data["examples"])
        variants = {k: tuple(v) for k, v in data["variants"].items() if len(v) == len(examples)}
        out[cycle] = AdversarialSet(examples, variants, int(data.get("seed", EVAL_ATTACK_SEED)))
    return out


def forgetting_check(champion: Any, challenger: Any, sets: dict[int, AdversarialSet],
                     tolerance: float = FORGET_TOLERANCE) -> list[dict[str, Any]]:
    """Champion vs challenger on earlier cycles' adversarial sets.

    Args:
        champion: The loaded champion.
        challenger: The loaded challenger.
        sets: Earlier cycles' sets, by cycle.
        tolerance: How much worse (adversarial error) the challenger may be on one set.

    Returns:
        One entry per set: cycle, both errors, and ``forgets`` (worse beyond the tolerance).
    """
    out = []
    for cycle, adversarial in sorted(sets.items()):
        if not adversarial.variants:
            continue
        a: EvaluationReport = run_evaluation(champion, adversarial)
        b: EvaluationReport = run_evaluation(challenger, adversarial)
        ea, eb = adversarial_error(a), adversarial_error(b)
        out.append({"cycle": cycle, "champion_error": round(ea, 4), "challenger_error": round(eb, 4),
                    "forgets": eb > ea + tolerance})
    return out


# ------------------------------------------------------------------------------------ one cycle


def _strategies(names: Sequence[str], cfg: ArenaConfig, champion: Any, population: Population) -> list[Strategy]:
    strategies = steps.arm(resolve_strategies(list(names), llm=cfg.llm_options(), skip_unavailable=True), champion)
    parts = _allowed_transformations(population.excluded)
    for strategy in strategies:
        if isinstance(strategy, AdaptiveStrategy):
            strategy.bind(champion, transformations=parts, **population.adaptive.options())
    return strategies


def _allowed_transformations(excluded: Iterable[str]) -> list[Any]:
    blocked = set(excluded)
    return [t for t in DEFAULT_TRANSFORMATIONS if t.name not in blocked]


def _probe(champion: Any, splits: Splits, population: Population, cycle: int) -> list[tuple[str, ...]]:
    """The edit sequences of a small adaptive search against the champion (successes only)."""
    texts = [e.text for e in splits.seeds][:PROBE_TEXTS]
    if not texts:
        return []
    attacker = AdaptiveAttacker(champion, _allowed_transformations(population.excluded),
                                **population.adaptive.options())
    return [r.edits for r in attacker.attack_batch(texts, seed=_PROBE_SEED + cycle) if r.success]


def _reference(state: Path, report: EvaluationReport, version: int | None) -> dict[str, Any]:
    """The first cycle's champion figures every later challenger is anchored to (written once)."""
    path = state / "reference.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    reference = {"recall": report.clean.recall, "fpr": report.clean.fpr, "version": version}
    path.write_text(json.dumps(reference), encoding="utf-8")
    return reference


class NoForgetting:
    """A promotion check: the challenger may not undo an earlier cycle's fix (see :func:`forgetting_check`).

    Args:
        champion: The loaded champion.
        challenger: The loaded challenger.
        sets: Earlier cycles' held-out adversarial sets, by cycle.
        tolerance: How much worse (adversarial error) the challenger may be on one set.
    """

    def __init__(self, champion: Any, challenger: Any, sets: dict[int, AdversarialSet],
                 tolerance: float = FORGET_TOLERANCE) -> None:
        self.champion, self.challenger, self.sets, self.tolerance = champion, challenger, sets, tolerance
        self.results: list[dict[str, Any]] = []

    def __call__(self, champion: steps.Evaluation, challenger: steps.Evaluation) -> list[str]:
        self.results = forgetting_check(self.champion, self.challenger, self.sets, self.tolerance)
        forgot = [f["cycle"] for f in self.results if f["forgets"]]
        if not forgot:
            return []
        return [f"forgets earlier fixes: adversarial error on cycle(s) {forgot} rises more than "
                f"{self.tolerance:.2f} over the champion's"]


class RecallAnchor:
    """A promotion check: no drift in clean recall by small steps.

    The first cycle's champion (``reference.json``: its recall and clean FPR at its policy threshold on
    the loop's test split) is the anchor. A challenger is rejected when its clean recall at its own
    policy threshold falls more than ``tolerance`` below the anchor's: the deployed model is used at that
    threshold, so that is where it must not catch less.

    Args:
        state: The coevolution folder (``reference.json``).
        tolerance: How much recall the challenger may lose.
    """

    def __init__(self, state: Path, tolerance: float = RECALL_TOLERANCE) -> None:
        self.state, self.tolerance = state, tolerance

    def __call__(self, champion: steps.Evaluation, challenger: steps.Evaluation) -> list[str]:
        anchor = float(_reference(self.state, champion.report, champion.version)["recall"])
        recall = challenger.report.clean.recall
        if recall >= anchor - self.tolerance:
            return []
        return [f"clean recall {recall:.3f} drifts below the first champion's {anchor:.3f} "
                f"by more than {self.tolerance:.2f}"]


def _more_examples(state: Path, cfg: ArenaConfig, cycle: int, champion: Any, made: steps.TrainingSet,
                   splits: Splits, strategies: Sequence[Strategy]) -> list[Example]:
    """Replayed earlier failures, mined and hard examples; this cycle's failures join the replay file."""
    failures = [e for e in made.examples if e.source in ("battle", "augment")]
    extra = replayed(state, cfg.augment.replay_failures, seed=cfg.attack.seed + cycle)
    extra += hard_examples(champion, [*made.examples, *extra], cfg.augment.hard_example_copies)
    extra += mined_examples(champion, splits.fit, strategies, cfg.augment.hard_mined,
                            seed=_MINE_SEED + cfg.attack.seed + cycle)
    _append_jsonl(state / "replay.jsonl", ({"text": e.text, "label": e.label, "cycle": cycle} for e in failures))
    return extra


def run_cycle(ws: Workspace, splits: Splits, population: Population, cycle: int, *,
              console: Any | None = None) -> tuple[PipelineSummary, CycleSummary]:
    """One cycle: the loop's steps against the current champion, then the attacker evolves.

    The steps are :func:`~content_arena.orchestrator.run_one_cycle`'s, with the population's strategies,
    replay and hard examples in the training set, and :class:`NoForgetting` and :class:`RecallAnchor` as
    promotion checks.

    Args:
        ws: The workspace.
        splits: The loop's data.
        population: The attacker (updated in place: evasion recorded, strategies born and retired).
        cycle: This cycle's number.
        console: A rich console for progress (None: log only).

    Returns:
        The run's summary and the cycle's.
    """
    cfg = ws.config
    state = state_dir(cfg)
    started = time.perf_counter()
    stage = Stage(console)
    forgetting: list[NoForgetting] = []

    def checks(champion: Any, challenger: Any) -> list[steps.PromotionCheck]:
        forgetting.append(NoForgetting(champion, challenger, earlier_sets(state, cycle)))
        return [forgetting[-1], RecallAnchor(state)]

    armed: list[Strategy] = []

    def strategies(champion: Any) -> list[Strategy]:
        armed[:] = _strategies(population.active(), cfg, champion, population)
        return list(armed)

    hooks = CycleHooks(
        label=f"cycle {cycle}",
        strategies=strategies,
        more_examples=lambda champion, made: _more_examples(state, cfg, cycle, champion, made, splits, armed),
        checks=checks,
    )
    run = run_one_cycle(ws, splits, hooks, console=console, started=started)
    summary = run.summary
    _reference(state, run.evaluation.report, summary.champion_before.get("version"))
    _save_adversarial(state, cycle, run.adversarial)
    evasion = dict(summary.champion_before["per_strategy"])
    population.record(cycle, evasion)
    born, retired = [], []
    if cfg.attack.evolve_below is not None:
        with stage(f"cycle {cycle}: evolve the attacker"):
            searched = _probe(run.champion_now, splits, population, cycle)
            new, retired = population.evolve(cycle, evasion, cfg.attack.evolve_below, searched)
            born = [b.name for b in new]
    population.save(state / "lineage.json")
    summary.seconds = time.perf_counter() - started
    checked = forgetting[-1].results if forgetting else []
    result = cycle_summary(summary, cycle, born=born, retired=retired, forgetting=checked)
    _append_jsonl(state / "cycles.jsonl", [result.to_dict()])
    return summary, result


def read_cycle_log(cfg: ArenaConfig) -> list[dict[str, Any]]:
    """Every recorded cycle summary under ``ARENA_HOME/coevolution/cycles.jsonl`` (oldest first)."""
    return _read_jsonl(cfg.home_path / "coevolution" / "cycles.jsonl")


def run_cycles(cfg: ArenaConfig, cycles: int = 1, until_pass: bool = False, *, console: Any | None = None,
               excluded: Iterable[str] = (), on_cycle: Callable[[CycleSummary], None] | None = None) -> CyclesResult:
    """Run the loop ``cycles`` times, each cycle attacking the champion the previous one left.

    ``cycles=1`` without ``until_pass`` is exactly one :func:`~content_arena.orchestrator.run_pipeline`
    (the attacker does not evolve); otherwise every cycle is :func:`run_cycle`.

    Args:
        cfg: The configuration.
        cycles: How many cycles at most (1..:data:`MAX_CYCLES`).
        until_pass: Stop once the gate has passed in two cycles in a row.
        console: A rich console for progress (None: log only).
        excluded: Strategy families kept out of the loop entirely (never attacked with, bred or searched).
        on_cycle: Called after each cycle with its summary.

    Returns:
        Every cycle's run and summary.
    """
    if isinstance(cycles, bool) or not isinstance(cycles, int) or not 1 <= cycles <= MAX_CYCLES:
        raise ValueError(f"cycles must be an integer between 1 and {MAX_CYCLES}, got {cycles!r}")
    excluded = list(excluded)
    if cycles == 1 and not until_pass and not excluded:
        summary = run_pipeline(cfg, console=console)
        one = cycle_summary(summary, 1)
        if on_cycle is not None:
            on_cycle(one)
        return CyclesResult([summary], [one])
    ws = Workspace.open(cfg)
    try:
        splits = steps.load_splits(cfg)
        state = state_dir(cfg)
        configured = [n for n in cfg.attack.strategies if not set(n.split("+")) & set(excluded)]
        if not configured:
            raise ValueError("every configured strategy is excluded from the loop")
        population = Population.load(state / "lineage.json", configured, excluded=excluded)
        runs: list[PipelineSummary] = []
        summaries: list[CycleSummary] = []
        passes_in_a_row = 0
        for _ in range(cycles):
            number = population.cycles_done + 1
            run, summary = run_cycle(ws, splits, population, number, console=console)
            runs.append(run)
            summaries.append(summary)
            if on_cycle is not None:
                on_cycle(summary)
            passes_in_a_row = passes_in_a_row + 1 if run.gate.passed else 0
            if until_pass and passes_in_a_row >= 2:
                log.info("the gate passed twice in a row: stopping after cycle %d", number)
                return CyclesResult(runs, summaries, stopped_early=len(runs) < cycles)
        return CyclesResult(runs, summaries)
    finally:
        ws.close()
