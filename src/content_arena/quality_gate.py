"""The quality gate: does the champion still hold, or must a challenger be trained?

Every check is computed at the champion's policy threshold (the one its operating point chose on
validation texts, reported in the evaluation), so the gate judges the model as it is deployed.

FAIL when any of: overall evasion rate above ``max_evasion_rate``; one strategy's evasion rate above
``max_strategy_evasion_rate`` (a strong attacker is not averaged away by weak ones); clean F1 below ``min_f1_score``;
clean F1 dropped by ``min_f1_drop`` or more from the F1 recorded for the champion; clean recall below
``min_recall`` (an FPR policy fixes the clean texts flagged, recall says what it buys); attacked clean
texts flagged more than ``max_attacked_clean_fpr_increase`` above the clean false-positive rate.
Every failing check is a reason; the result also keeps each check's value and the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from content_arena.config import QualityGateConfig
from content_arena.evaluation import EvaluationReport

# Rates are ratios of counts; compare them to limits with a tolerance so 0.95 - 0.90 counts as 0.05.
EPSILON = 1e-9


class Decision(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"


@dataclass
class GateResult:
    decision: Decision
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.decision is Decision.PASS

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision.value, "reasons": list(self.reasons), "checks": dict(self.checks)}


def _strategies_above(report: EvaluationReport, limit: float) -> str:
    """``"name rate, ..."`` of the strategies evading more than ``limit``, worst first."""
    above = sorted(((name, r.evasion_rate) for name, r in report.attacks.items() if r.evasion_rate > limit),
                   key=lambda item: -item[1])
    return ", ".join(f"{name} {rate:.3f}" for name, rate in above)


def _at(report: EvaluationReport) -> str:
    point = report.operating_point
    policy = f"{point['metric']} {'<=' if point['metric'] == 'fpr' else '>='} {point['value']:.2f}" if point else "no policy"
    return f"at threshold {report.threshold:.3f} ({policy})"


def check_quality(
    report: EvaluationReport, cfg: QualityGateConfig, reference_f1: float | None = None
) -> GateResult:
    """PASS or FAIL for the champion's evaluation, with every failing check as a reason.

    Args:
        report: the champion's evaluation at its policy threshold.
        cfg: the gate's limits.
        reference_f1: the F1 recorded for the champion when it was first evaluated (None: no drop check).

    Returns:
        The decision, the reasons and each check's value.
    """
    reasons: list[str] = []
    evasion = report.evasion_rate
    f1 = report.clean.f1
    recall = report.clean.recall
    checks: dict[str, Any] = {"threshold": report.threshold, "operating_point": report.operating_point,
                              "evasion_rate": evasion, "f1": f1, "recall": recall, "reference_f1": reference_f1}
    if evasion > cfg.max_evasion_rate:
        detail = _strategies_above(report, cfg.max_evasion_rate)
        reasons.append(
            f"evasion rate {evasion:.3f} > max_evasion_rate {cfg.max_evasion_rate:.3f}"
            + (f" (above the limit: {detail})" if detail else "")
        )
    strongest = max(report.attacks.items(), key=lambda item: item[1].evasion_rate, default=None)
    if strongest is not None:
        checks["max_strategy_evasion_rate"] = {"strategy": strongest[0], "evasion_rate": strongest[1].evasion_rate}
        detail = _strategies_above(report, cfg.max_strategy_evasion_rate + EPSILON)
        if detail:
            reasons.append(f"strategies evading more than max_strategy_evasion_rate "
                           f"{cfg.max_strategy_evasion_rate:.3f}: {detail}")
    if f1 < cfg.min_f1_score:
        reasons.append(f"F1 {f1:.3f} < min_f1_score {cfg.min_f1_score:.3f} {_at(report)}")
    if recall < cfg.min_recall - EPSILON:
        reasons.append(f"recall {recall:.3f} < min_recall {cfg.min_recall:.3f} {_at(report)}")
    if reference_f1 is not None:
        drop = reference_f1 - f1
        checks["f1_drop"] = drop
        if drop >= cfg.min_f1_drop - EPSILON:
            reasons.append(f"F1 dropped {drop:.3f} from the champion's {reference_f1:.3f} (min_f1_drop {cfg.min_f1_drop:.3f})")
    fpr_increase = report.worst_attacked_clean_fpr - report.clean.fpr
    checks["attacked_clean_fpr_increase"] = fpr_increase
    if fpr_increase > cfg.max_attacked_clean_fpr_increase:
        reasons.append(
            f"attacked clean texts flagged {fpr_increase:.3f} above the clean FPR {report.clean.fpr:.3f} "
            f"(max_attacked_clean_fpr_increase {cfg.max_attacked_clean_fpr_increase:.3f})"
        )
    return GateResult(Decision.FAIL if reasons else Decision.PASS, reasons, checks)
