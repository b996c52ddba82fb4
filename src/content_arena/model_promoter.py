"""Champion vs challenger on the same clean and adversarial sets, then promote or reject.

Each model is judged at its own policy threshold: the one the same operating point chose for it on the
same validation texts (see :mod:`content_arena.operating_point`). A challenger that came out with sharper
or shifted scores is thus compared at the same promise to the users (say, 10% of clean texts flagged),
not at a number that means something different on its scale.

The challenger is promoted only when it is more robust, its clean F1 has not dropped by
``min_f1_drop`` or more, and it does not flag attacked clean texts more often than the champion by
more than ``max_attacked_clean_fpr_increase``.

"More robust" means a lower :func:`adversarial_error`: the mean of the evasion rate (attacked toxic
texts it lets through) and the attacked-clean FPR (attacked clean texts it flags). The quality gate
fails a model for either, so the promoter weighs both: a challenger that stops flagging garbled
clean comments is more robust even if it lets a few more evasions through, and a model that flags
every garbled text does not look robust for its evasion rate alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from content_arena.config import QualityGateConfig
from content_arena.evaluation import EvaluationReport
from content_arena.model_registry import CHALLENGER, CHAMPION, ModelRegistry, RegistryError
from content_arena.quality_gate import EPSILON
from content_arena.store import Store

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    deltas: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": list(self.reasons), "deltas": dict(self.deltas)}


def adversarial_error(report: EvaluationReport) -> float:
    """Mean of the evasion rate and the attacked-clean FPR: the balanced error on the attacked sets."""
    return (report.evasion_rate + report.attacked_clean_fpr) / 2.0


def _robustness(report: EvaluationReport) -> str:
    return (f"{adversarial_error(report):.3f} (evasion {report.evasion_rate:.3f}, "
            f"attacked-clean FPR {report.attacked_clean_fpr:.3f})")


def compare(champion: EvaluationReport, challenger: EvaluationReport, cfg: QualityGateConfig) -> Comparison:
    """Promote the challenger or not, each model's report computed at its own policy threshold.

    Args:
        champion: the champion's evaluation.
        challenger: the challenger's evaluation on the same texts.
        cfg: the limits (``min_f1_drop``, ``max_attacked_clean_fpr_increase``).

    Returns:
        The decision, its reasons and the challenger-minus-champion deltas (thresholds included).
    """
    deltas = {
        "adversarial_error": adversarial_error(challenger) - adversarial_error(champion),
        "evasion_rate": challenger.evasion_rate - champion.evasion_rate,
        "f1": challenger.clean.f1 - champion.clean.f1,
        "recall": challenger.clean.recall - champion.clean.recall,
        "fpr": challenger.clean.fpr - champion.clean.fpr,
        "attacked_clean_fpr": challenger.attacked_clean_fpr - champion.attacked_clean_fpr,
        "threshold": challenger.threshold - champion.threshold,
    }
    if champion.operating_point and challenger.operating_point and champion.operating_point != challenger.operating_point:
        log.warning("champion and challenger were thresholded by different operating points (%s vs %s)",
                    champion.operating_point, challenger.operating_point)
    reasons: list[str] = []
    if deltas["adversarial_error"] >= -EPSILON:
        reasons.append(
            f"not more robust: adversarial error {_robustness(challenger)} vs champion {_robustness(champion)}"
        )
    if -deltas["f1"] >= cfg.min_f1_drop - EPSILON:
        reasons.append(f"clean F1 drops {-deltas['f1']:.3f} (min_f1_drop {cfg.min_f1_drop:.3f})")
    if deltas["attacked_clean_fpr"] > cfg.max_attacked_clean_fpr_increase:
        reasons.append(
            f"flags attacked clean texts {deltas['attacked_clean_fpr']:.3f} more often than the champion"
        )
    if not reasons:
        reasons.append(
            f"more robust (adversarial error {_robustness(champion)} → {_robustness(challenger)}), "
            f"clean F1 {champion.clean.f1:.3f} → {challenger.clean.f1:.3f}, recall {champion.clean.recall:.3f} → "
            f"{challenger.clean.recall:.3f} at thresholds {champion.threshold:.3f} → {challenger.threshold:.3f}"
        )
        return Comparison(True, reasons, deltas)
    return Comparison(False, reasons, deltas)


def promote(registry: ModelRegistry, store: Store, *, challenger_version: int, champion_version: int | None) -> None:
    """Move the ``champion`` alias to the challenger and record the change in model_metadata.

    Moving the registry's alias is the promotion: if MLflow fails there, nothing has changed anywhere.
    Once it moved, model_metadata follows even if removing the ``challenger`` alias then fails (a
    leftover alias on the new champion, logged; the next challenger takes it over).
    """
    registry.set_alias(CHAMPION, challenger_version)
    try:
        registry.delete_alias(CHALLENGER)
    except RegistryError as exc:
        log.warning("promoted v%s but the challenger alias is left on it: %s", challenger_version, exc)
    store.set_model_status(registry.model_name, challenger_version, "champion", alias=CHAMPION)
    if champion_version is not None and champion_version != challenger_version:
        store.set_model_status(registry.model_name, champion_version, "archived", clear_alias=True)
    log.info("promoted %s v%s to champion (was v%s)", registry.model_name, challenger_version, champion_version)


def reject(registry: ModelRegistry, store: Store, *, challenger_version: int) -> None:
    """Keep the challenger registered (for inspection) but mark it rejected."""
    store.set_model_status(registry.model_name, challenger_version, "rejected", alias=CHALLENGER)
