"""evaluate: clean and per-strategy metrics of a model on the held-out clean and adversarial sets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from content_arena.attacks import Strategy
from content_arena.attacks.adaptive import build_adversarial_set
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.evaluation import AdversarialSet, EvaluationReport, StrategyResult
from content_arena.evaluation import evaluate as run_evaluation
from content_arena.metrics import BinaryMetrics
from content_arena.steps.models import record_metrics, reference_f1, report_metrics
from content_arena.steps.workspace import EVAL_ATTACK_SEED, Workspace

ROLES = ("champion", "challenger")


@dataclass
class Evaluation:
    """One model's evaluation: the report, its flat metrics, and the gate's reference F1 (champion only)."""

    report: EvaluationReport
    metrics: dict[str, float]
    version: int | None = None
    role: str = "champion"
    reference_f1: float | None = None
    confusion_matrix: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "threshold": self.report.threshold,
            "reference_f1": self.reference_f1,
            "summary": self.report.summary(),
            "metrics": self.metrics,
            "report": self.report.to_dict(),
            "confusion_matrix": self.confusion_matrix,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Evaluation:
        """The evaluation back from :meth:`to_dict`'s JSON form."""
        version = payload.get("version")
        return cls(
            report=report_from_dict(payload),
            metrics=dict(payload.get("metrics") or {}),
            version=int(version) if version is not None else None,
            role=payload.get("role", "champion"),
            reference_f1=payload.get("reference_f1"),
            confusion_matrix=dict(payload.get("confusion_matrix") or {}),
        )


def report_from_dict(payload: Mapping[str, Any]) -> EvaluationReport:
    """An :class:`~content_arena.evaluation.EvaluationReport` back from an evaluation's JSON form.

    Args:
        payload: A mapping with ``report`` (the report's ``to_dict``) and ``threshold``.

    Returns:
        The report.
    """
    data = payload["report"]
    clean = BinaryMetrics(**{f.name: data[f.name] for f in dataclasses.fields(BinaryMetrics) if f.name in data})
    attacks = {name: StrategyResult(**values) for name, values in data["attacks"].items()}
    return EvaluationReport(clean=clean, attacks=attacks, threshold=float(payload.get("threshold", 0.5)),
                            operating_point=data.get("operating_point"), reliability=data.get("reliability") or [])


def adversarial_set(test: Sequence[Example], strategies: Sequence[Strategy], champion: Defender | None) -> AdversarialSet:
    """The held-out adversarial set: every test text attacked by every strategy, with the evaluation seed.

    The ``adaptive`` variants are searched against the champion, so the champion and its challenger
    are measured on the same texts.

    Args:
        test: The held-out examples.
        strategies: The strategies, ``adaptive`` bound to the champion.
        champion: The champion (None only when no strategy needs a defender).

    Returns:
        The adversarial set.
    """
    return build_adversarial_set(test, strategies, EVAL_ATTACK_SEED, champion)


def evaluate_model(ws: Workspace, model: Defender, adversarial: AdversarialSet, *, version: int | None,
                   role: str = "champion") -> Evaluation:
    """Evaluate ``model`` and record its metrics on its model_metadata row.

    For the champion, the clean F1 recorded earlier (the gate's reference) is read first and this
    run's metrics are recorded only when none were; a challenger's metrics are always recorded.

    Args:
        ws: The workspace.
        model: The loaded defender.
        adversarial: The held-out adversarial set (see :func:`adversarial_set`).
        version: The model's registry version (None: record nothing).
        role: ``champion`` or ``challenger``.

    Returns:
        The evaluation.
    """
    if role not in ROLES:
        raise ValueError(f"role must be champion or challenger, got {role!r}")
    report = run_evaluation(model, adversarial)
    metrics = report_metrics(report)
    reference = None
    if version is not None:
        if role == "champion":
            reference = reference_f1(ws, version)
            if reference is None:
                record_metrics(ws, version, metrics)
        else:
            record_metrics(ws, version, metrics)
    labels = adversarial.labels
    positives = int(labels.sum())
    negatives = int(len(labels) - positives)
    tp = round(report.clean.recall * positives)
    fp = round(report.clean.fpr * negatives)
    # rows: true label clean/toxic; columns: predicted clean/toxic (clean held-out set)
    confusion = {"labels": ["clean", "toxic"], "matrix": [[negatives - fp, fp], [positives - tp, tp]]}
    return Evaluation(report, metrics, version, role, reference, confusion)
