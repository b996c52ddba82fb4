"""The steps of the adversarial loop, one module each.

champion → attack → evaluate → gate → collect → augment → train → compare → promote → rollout.
Each step is a function from typed inputs (a :class:`Workspace`, loaded models, examples, earlier
results) to a typed result, and owns everything the step needs — binding the ``adaptive``
attacker to the champion included. Three callers run them: :func:`content_arena.orchestrator.run_pipeline`
(the whole loop in one process), :mod:`content_arena.stages` (one step per Kubeflow component, its
inputs and outputs as JSON files) and the CLI / API. No step imports any of its callers.
"""

from content_arena.steps import aliases
from content_arena.steps.attack import run_battle
from content_arena.steps.augment import TrainingSet, training_set
from content_arena.steps.champion import ChampionResult, arm, ensure_champion, needs_defender
from content_arena.steps.collect import collect_evasions
from content_arena.steps.compare import PromotionCheck, compare_models
from content_arena.steps.evaluate import Evaluation, adversarial_set, evaluate_model, report_from_dict
from content_arena.steps.gate import judge_champion
from content_arena.steps.models import (
    load_model,
    record_metrics,
    reference_f1,
    register_model,
    report_metrics,
)
from content_arena.steps.promote import apply_decision
from content_arena.steps.rollout import publish_model, roll_out, storage_uri_for
from content_arena.steps.train import Trained, fit_challenger, robustness_validation_set
from content_arena.steps.workspace import (
    EVAL_ATTACK_SEED,
    Splits,
    Workspace,
    configured_strategies,
    fit_val_split,
    load_dataset,
    load_splits,
)

__all__ = [
    "EVAL_ATTACK_SEED",
    "ChampionResult",
    "PromotionCheck",
    "Evaluation",
    "Splits",
    "Trained",
    "TrainingSet",
    "Workspace",
    "adversarial_set",
    "aliases",
    "arm",
    "run_battle",
    "collect_evasions",
    "compare_models",
    "configured_strategies",
    "ensure_champion",
    "evaluate_model",
    "fit_val_split",
    "judge_champion",
    "load_dataset",
    "load_model",
    "load_splits",
    "needs_defender",
    "apply_decision",
    "publish_model",
    "record_metrics",
    "reference_f1",
    "register_model",
    "report_from_dict",
    "report_metrics",
    "robustness_validation_set",
    "roll_out",
    "storage_uri_for",
    "fit_challenger",
    "training_set",
]
