from __future__ import annotations

import pytest

from content_arena.config import QualityGateConfig
from content_arena.evaluation import EvaluationReport, StrategyResult
from content_arena.metrics import BinaryMetrics
from content_arena.model_promoter import compare
from content_arena.quality_gate import Decision, check_quality


def report(f1: float, evaded: dict[str, int], *, fpr: float = 0.05, attacked_fpr: float = 0.05,
           recall: float | None = None, threshold: float = 0.5) -> EvaluationReport:
    recall = f1 if recall is None else recall
    clean = BinaryMetrics(n=200, f1=f1, precision=f1, recall=recall, auroc=0.95, fpr=fpr, accuracy=f1)
    attacks = {
        name: StrategyResult(evasion_rate=n / 100, attacked_clean_fpr=attacked_fpr, n_detected=100, n_evaded=n, n_clean=100)
        for name, n in evaded.items()
    }
    return EvaluationReport(clean=clean, attacks=attacks, threshold=threshold,
                            operating_point={"metric": "fpr", "value": 0.1})


CFG = QualityGateConfig()


def test_pass_when_every_check_holds():
    result = check_quality(report(0.9, {"nfd": 5, "spacing": 10}), CFG, reference_f1=0.91)
    assert result.decision is Decision.PASS
    assert result.reasons == []
    assert result.checks["evasion_rate"] == 0.075


def test_evasion_above_limit_fails_and_names_the_strategies():
    pooled_only = QualityGateConfig(max_strategy_evasion_rate=1.0)
    result = check_quality(report(0.9, {"nfd": 10, "spacing": 28}), pooled_only)
    assert result.decision is Decision.FAIL
    assert len(result.reasons) == 1
    assert "0.190 > max_evasion_rate 0.150" in result.reasons[0]
    assert "spacing 0.280" in result.reasons[0] and "nfd" not in result.reasons[0]


def test_by_default_each_strategy_is_held_to_the_pooled_limit():
    # With equal limits, the pooled rate can only exceed 0.15 when some strategy does; both reasons are given.
    result = check_quality(report(0.9, {"nfd": 10, "spacing": 28}), CFG)
    assert CFG.max_strategy_evasion_rate == CFG.max_evasion_rate == 0.15
    assert len(result.reasons) == 2
    assert "max_strategy_evasion_rate 0.150: spacing 0.280" in result.reasons[1]
    assert "nfd" not in result.reasons[1]
    assert check_quality(report(0.9, {"nfd": 15, "spacing": 15}), CFG).passed


def test_one_strong_strategy_fails_the_gate_even_when_weak_ones_dilute_the_overall_rate():
    evaded = {"adaptive": 70, **{f"rule{k}": 0 for k in range(9)}}
    result = check_quality(report(0.9, evaded), CFG)
    assert result.checks["evasion_rate"] == pytest.approx(0.07)  # under max_evasion_rate
    assert result.decision is Decision.FAIL and len(result.reasons) == 1
    assert "max_strategy_evasion_rate 0.150: adaptive 0.700" in result.reasons[0]
    assert "rule" not in result.reasons[0]
    assert result.checks["max_strategy_evasion_rate"] == {"strategy": "adaptive", "evasion_rate": 0.7}


def test_a_strategy_exactly_at_its_limit_passes_and_the_limit_is_configurable():
    evaded = {"adaptive": 15, **{f"rule{k}": 0 for k in range(9)}}
    assert check_quality(report(0.9, evaded), CFG).passed
    strict = QualityGateConfig(max_strategy_evasion_rate=0.10)
    assert not check_quality(report(0.9, evaded), strict).passed


def test_evasion_exactly_at_limit_passes():
    assert check_quality(report(0.9, {"a": 15}), CFG).passed


def test_low_f1_and_drop_from_champion_are_separate_reasons():
    result = check_quality(report(0.80, {"a": 0}), CFG, reference_f1=0.86)
    assert result.decision is Decision.FAIL
    assert any("F1 0.800 < min_f1_score 0.850" in r for r in result.reasons)
    assert any("dropped 0.060" in r for r in result.reasons)


def test_f1_drop_of_exactly_the_limit_fails():
    result = check_quality(report(0.90, {"a": 0}), CFG, reference_f1=0.95)
    assert not result.passed and "dropped 0.050" in result.reasons[0]


def test_trigger_happy_model_fails_on_attacked_clean_fpr():
    result = check_quality(report(0.9, {"a": 0}, fpr=0.05, attacked_fpr=0.60), CFG)
    assert not result.passed
    assert "attacked clean texts flagged" in result.reasons[0]


def test_all_reasons_are_reported_together():
    result = check_quality(report(0.5, {"a": 90}, attacked_fpr=0.9), CFG, reference_f1=0.9)
    # overall evasion, strategy a's evasion, F1, recall, F1 drop, attacked-clean FPR
    assert len(result.reasons) == 6


def test_promote_only_when_more_robust_and_f1_holds():
    champion = report(0.90, {"a": 40})
    assert compare(champion, report(0.89, {"a": 10}), CFG).promote
    not_robust = compare(champion, report(0.95, {"a": 40}), CFG)
    assert not not_robust.promote and "not more robust" in not_robust.reasons[0]
    f1_drop = compare(champion, report(0.85, {"a": 5}), CFG)
    assert not f1_drop.promote and "clean F1 drops 0.050" in f1_drop.reasons[0]
    trigger_happy = compare(champion, report(0.90, {"a": 5}, attacked_fpr=0.5), CFG)
    assert not trigger_happy.promote


def test_robustness_weighs_evasion_and_attacked_clean_fpr_together():
    from content_arena.model_promoter import adversarial_error

    # The champion lets little through but flags garbled clean texts; the challenger fixes that.
    champion = report(0.90, {"a": 3}, fpr=0.13, attacked_fpr=0.18)
    challenger = report(0.92, {"a": 5}, fpr=0.03, attacked_fpr=0.06)
    assert adversarial_error(champion) == pytest.approx((0.03 + 0.18) / 2)
    decided = compare(champion, challenger, CFG)
    assert decided.promote and "adversarial error" in decided.reasons[0]
    assert decided.deltas["adversarial_error"] == pytest.approx(((0.05 + 0.06) - (0.03 + 0.18)) / 2)
    # ... and a challenger that trades fewer evasions for more flagged garbage is not more robust.
    flags_more = compare(report(0.90, {"a": 10}, attacked_fpr=0.10), report(0.90, {"a": 4}, attacked_fpr=0.17), CFG)
    assert not flags_more.promote and "not more robust" in flags_more.reasons[0]


def test_the_gate_fails_when_recall_at_the_policy_point_is_below_min_recall():
    result = check_quality(report(0.9, {"nfd": 5}, recall=0.55, threshold=0.71), CFG)
    assert CFG.min_recall == 0.60
    assert result.decision is Decision.FAIL and len(result.reasons) == 1
    assert result.reasons[0] == "recall 0.550 < min_recall 0.600 at threshold 0.710 (fpr <= 0.10)"
    assert result.checks["recall"] == 0.55 and result.checks["threshold"] == 0.71
    assert result.checks["operating_point"] == {"metric": "fpr", "value": 0.1}
    assert check_quality(report(0.9, {"nfd": 5}, recall=0.60), CFG).passed  # at the limit passes
    assert check_quality(report(0.9, {"nfd": 5}, recall=0.55), QualityGateConfig(min_recall=0.5)).passed


def test_the_promoter_reports_each_model_at_its_own_threshold():
    champion = report(0.90, {"a": 40}, threshold=0.62)
    challenger = report(0.89, {"a": 10}, threshold=0.81, recall=0.8)
    decided = compare(champion, challenger, CFG)
    assert decided.promote and "at thresholds 0.620 → 0.810" in decided.reasons[0]
    assert decided.deltas["threshold"] == pytest.approx(0.19) and decided.deltas["recall"] == pytest.approx(-0.1)
