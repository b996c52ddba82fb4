"""Evaluate a defender on a clean set and on attacked copies of it.

Everything is judged at the defender's own threshold, the one its operating point chose on validation
texts (``Defender.threshold``), on its calibrated scores. Evasion rate of a strategy = among toxic texts
the defender flags in their clean form, the share whose attacked variant it no longer flags.
Attacked-clean FPR = share of attacked *clean* texts it flags: a defender that flags every garbled text
would otherwise look robust. Each strategy also counts, on the same clean texts, those flagged only once
attacked and those flagged only in their clean form: the paired counts the gate tests the rise on. The
clean metrics add the threshold-free ranking (AUROC, PR-AUC) and the calibration of the scores (expected
calibration error and the reliability curve).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from content_arena.attacks import Strategy
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.metrics import BinaryMetrics, binary_metrics, reliability_bins


@dataclass(frozen=True)
class AdversarialSet:
    """Attacked copies of every example, one list per strategy, built once and reused."""

    examples: tuple[Example, ...]
    variants: dict[str, tuple[str, ...]]
    seed: int

    @classmethod
    def build(cls, examples: Sequence[Example], strategies: Sequence[Strategy], seed: int = 1) -> AdversarialSet:
        texts = [e.text for e in examples]
        return cls(
            examples=tuple(examples),
            variants={s.name: tuple(s.attack_many(texts, seed=seed)) for s in strategies},
            seed=seed,
        )

    @property
    def labels(self) -> np.ndarray:
        return np.fromiter((e.label for e in self.examples), dtype=np.int64, count=len(self.examples))


@dataclass(frozen=True)
class StrategyResult:
    evasion_rate: float
    attacked_clean_fpr: float
    n_detected: int
    n_evaded: int
    n_clean: int
    # Clean texts flagged once attacked but not in their clean form, and the reverse (None: not counted,
    # as in a report written before these were). attacked_clean_fpr - clean FPR = (newly - no longer) / n_clean.
    n_clean_newly_flagged: int | None = None
    n_clean_no_longer_flagged: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationReport:
    """Clean and per-strategy results of one defender at its threshold.

    Attributes:
        clean: metrics on the clean texts at ``threshold``.
        attacks: per-strategy evasion and attacked-clean FPR at ``threshold``.
        threshold: the decision threshold used (the defender's policy threshold).
        operating_point: the policy that chose it (``{"metric", "value"}``); None for a model without one.
        reliability: the clean texts' reliability curve (see :func:`~content_arena.metrics.reliability_bins`).
    """

    clean: BinaryMetrics
    attacks: dict[str, StrategyResult] = field(default_factory=dict)
    threshold: float = 0.5
    operating_point: dict[str, Any] | None = None
    reliability: list[dict[str, Any]] = field(default_factory=list)

    @property
    def evasion_rate(self) -> float:
        detected = sum(r.n_detected for r in self.attacks.values())
        return sum(r.n_evaded for r in self.attacks.values()) / detected if detected else 0.0

    @property
    def attacked_clean_fpr(self) -> float:
        total = sum(r.n_clean for r in self.attacks.values())
        if not total:
            return 0.0
        return sum(r.attacked_clean_fpr * r.n_clean for r in self.attacks.values()) / total

    @property
    def worst_attacked_clean_fpr(self) -> float:
        return max((r.attacked_clean_fpr for r in self.attacks.values()), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.clean.to_dict()
        out["threshold"] = self.threshold
        out["operating_point"] = self.operating_point
        out["reliability"] = [dict(b) for b in self.reliability]
        out["evasion_rate"] = self.evasion_rate
        out["attacked_clean_fpr"] = self.attacked_clean_fpr
        out["attacks"] = {name: r.to_dict() for name, r in self.attacks.items()}
        return out

    def summary(self) -> dict[str, Any]:
        """The compact form used in pipeline summaries."""
        return {
            "threshold": self.threshold,
            "operating_point": self.operating_point,
            "f1": self.clean.f1,
            "precision": self.clean.precision,
            "recall": self.clean.recall,
            "auroc": self.clean.auroc,
            "pr_auc": self.clean.pr_auc,
            "ece": self.clean.ece,
            "fpr": self.clean.fpr,
            "evasion_rate": self.evasion_rate,
            "attacked_clean_fpr": self.attacked_clean_fpr,
            "per_strategy": {name: r.evasion_rate for name, r in self.attacks.items()},
            "per_strategy_attacked_clean_fpr": {name: r.attacked_clean_fpr for name, r in self.attacks.items()},
        }


def evaluate(defender: Defender, adversarial: AdversarialSet) -> EvaluationReport:
    """Score the clean texts and every variant in one batched pass, judged at the defender's threshold.

    Args:
        defender: a loaded defender; its ``threshold`` and ``operating_point`` are reported with the results.
        adversarial: the clean texts and their attacked copies.

    Returns:
        The report.
    """
    labels = adversarial.labels
    clean_texts = [e.text for e in adversarial.examples]
    names = list(adversarial.variants)
    all_variants = [v for name in names for v in adversarial.variants[name]]
    scores = defender.scores(clean_texts + all_variants)
    threshold = float(defender.threshold)
    clean_scores, variant_scores = scores[: len(clean_texts)], scores[len(clean_texts) :]
    clean = binary_metrics(labels, clean_scores, threshold)
    report = EvaluationReport(
        clean=clean, threshold=threshold, operating_point=getattr(defender, "operating_point", None),
        reliability=[b.to_dict() for b in reliability_bins(labels, clean_scores)] if clean.ece is not None else [],
    )
    detected = (clean_scores >= threshold) & (labels == 1)
    is_clean = labels == 0
    clean_flagged = (clean_scores >= threshold) & is_clean
    n = len(clean_texts)
    for i, name in enumerate(names):
        flagged = variant_scores[i * n : (i + 1) * n] >= threshold
        n_detected = int(detected.sum())
        n_evaded = int((detected & ~flagged).sum())
        n_clean = int(is_clean.sum())
        report.attacks[name] = StrategyResult(
            evasion_rate=n_evaded / n_detected if n_detected else 0.0,
            attacked_clean_fpr=float((flagged & is_clean).sum() / n_clean) if n_clean else 0.0,
            n_detected=n_detected,
            n_evaded=n_evaded,
            n_clean=n_clean,
            n_clean_newly_flagged=int((flagged & is_clean & ~clean_flagged).sum()),
            n_clean_no_longer_flagged=int((clean_flagged & ~flagged).sum()),
        )
    return report
