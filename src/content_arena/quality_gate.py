"""The quality gate: does the champion still hold, or must a challenger be trained?

Every check is computed at the champion's policy threshold (the one its operating point chose on
validation texts, reported in the evaluation), so the gate judges the model as it is deployed.

FAIL when any of: overall evasion rate above ``max_evasion_rate``; one strategy's evasion rate above
``max_strategy_evasion_rate`` (a strong attacker is not averaged away by weak ones); clean F1 below ``min_f1_score``;
clean F1 dropped by ``min_f1_drop`` or more from the F1 recorded for the champion; clean recall below
``min_recall`` (an FPR policy fixes the clean texts flagged, recall says what it buys); one strategy's
attacked clean texts flagged more than ``max_attacked_clean_fpr_increase`` above the clean false-positive
rate *and* significantly so.
Every failing check is a reason; the result also keeps each check's value and the threshold.

The attacked-clean FPR rise is tested on paired counts: of the same clean texts, ``b`` are flagged only
once attacked and ``c`` only in their clean form, so the rise is ``(b - c) / n_clean``. Without a real
rise each changed text is as likely to go either way, so ``p = P(Binomial(b + c, 1/2) >= b)`` (an exact
one-sided sign test, McNemar's on the discordant texts). The p-values of the strategies that changed any
clean text's decision are Holm-adjusted, so the chance that the check fails a model without a real rise
in any strategy is at most ``attacked_clean_fpr_alpha``. On a small test split a rise of a few texts is
within that spread; a strategy fails only when its rise is both over the limit and significant. A
report without the counts (written before they were) is judged on the limit alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from content_arena.config import QualityGateConfig
from content_arena.evaluation import EvaluationReport, StrategyResult

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


def sign_test_p(newly: int, no_longer: int) -> float:
    """``P(Binomial(newly + no_longer, 1/2) >= newly)``: the exact one-sided sign (McNemar) test's p-value.

    Args:
        newly: clean texts flagged once attacked but not in their clean form (``b``).
        no_longer: clean texts flagged in their clean form but not once attacked (``c``).

    Returns:
        The chance of at least ``newly`` of the changed texts going the flagged way when either way is
        equally likely (1.0 when nothing changed).
    """
    n = newly + no_longer
    return sum(math.comb(n, k) for k in range(newly, n + 1)) / 2**n


def holm_adjusted(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values: each is significant at ``alpha`` family-wise when <= ``alpha``.

    Args:
        p_values: one p-value per hypothesis.

    Returns:
        The adjusted p-value of each, ``max over the smaller ones of min(1, (m - rank) * p)``.
    """
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m, running, adjusted = len(ordered), 0.0, {}
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return adjusted


def _attacked_clean_rises(report: EvaluationReport) -> list[dict[str, Any]]:
    """Each strategy's attacked-clean FPR rise with its paired counts and p-values, the largest rise first."""

    def counted(r: StrategyResult) -> bool:
        return r.n_clean_newly_flagged is not None and r.n_clean_no_longer_flagged is not None

    p_values = {name: sign_test_p(r.n_clean_newly_flagged, r.n_clean_no_longer_flagged)
                for name, r in report.attacks.items()
                if counted(r) and r.n_clean_newly_flagged + r.n_clean_no_longer_flagged > 0}
    adjusted = holm_adjusted(p_values)
    rises = []
    for name, r in report.attacks.items():
        rises.append({
            "strategy": name, "increase": r.attacked_clean_fpr - report.clean.fpr,
            "newly_flagged": r.n_clean_newly_flagged, "no_longer_flagged": r.n_clean_no_longer_flagged,
            "p_value": p_values.get(name, 1.0) if counted(r) else None,
            "holm_p_value": adjusted.get(name, 1.0) if counted(r) else None,
        })
    return sorted(rises, key=lambda rise: (-rise["increase"], rise["p_value"] or 0.0))


def _rise_text(rise: dict[str, Any]) -> str:
    if rise["p_value"] is None:
        return f"{rise['strategy']} +{rise['increase']:.3f} (no paired counts)"
    return (f"{rise['strategy']} +{rise['increase']:.3f} ({rise['newly_flagged']} newly flagged, "
            f"{rise['no_longer_flagged']} no longer; p {rise['p_value']:.4f}, Holm {rise['holm_p_value']:.4f})")


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
    checks["attacked_clean_fpr_increase"] = report.worst_attacked_clean_fpr - report.clean.fpr
    rises = _attacked_clean_rises(report)
    if rises:
        checks["worst_attacked_clean_fpr"] = rises[0]
        failing = [rise for rise in rises if rise["increase"] > cfg.max_attacked_clean_fpr_increase + EPSILON
                   and (rise["holm_p_value"] is None or rise["holm_p_value"] <= cfg.attacked_clean_fpr_alpha)]
        if failing:
            reasons.append(
                f"attacked clean texts flagged significantly more than the clean FPR {report.clean.fpr:.3f} "
                f"(max_attacked_clean_fpr_increase {cfg.max_attacked_clean_fpr_increase:.3f}, "
                f"attacked_clean_fpr_alpha {cfg.attacked_clean_fpr_alpha:.3f}): "
                + ", ".join(_rise_text(rise) for rise in failing)
            )
    return GateResult(Decision.FAIL if reasons else Decision.PASS, reasons, checks)
