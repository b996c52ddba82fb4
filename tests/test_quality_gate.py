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


def paired(newly: int, no_longer: int, *, n_clean: int = 150, flagged: int = 15) -> EvaluationReport:
    """A report whose ``ko_keyboard`` attack flags ``newly`` more and ``no_longer`` fewer of ``n_clean`` clean
    texts (``flagged`` of them flagged clean), beside nine strategies that move one text each way."""
    clean = BinaryMetrics(n=2 * n_clean, f1=0.9, precision=0.9, recall=0.9, auroc=0.95, fpr=flagged / n_clean,
                          accuracy=0.9)

    def strategy(b: int, c: int) -> StrategyResult:
        return StrategyResult(evasion_rate=0.0, attacked_clean_fpr=(flagged + b - c) / n_clean, n_detected=100,
                              n_evaded=0, n_clean=n_clean, n_clean_newly_flagged=b, n_clean_no_longer_flagged=c)

    attacks = {"ko_keyboard": strategy(newly, no_longer), **{f"rule{k}": strategy(1, 1) for k in range(9)}}
    return EvaluationReport(clean=clean, attacks=attacks, threshold=0.3, operating_point={"metric": "fpr", "value": 0.1})


def test_the_sign_test_is_the_binomial_tail_of_the_newly_flagged_texts():
    from content_arena.quality_gate import holm_adjusted, sign_test_p

    assert sign_test_p(5, 1) == pytest.approx(7 / 64)
    assert sign_test_p(12, 0) == pytest.approx(0.5**12)
    assert sign_test_p(0, 0) == 1.0 and sign_test_p(0, 3) == 1.0
    assert holm_adjusted({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})


def test_a_small_chance_rise_over_the_limit_passes():
    result = check_quality(paired(5, 1), CFG)
    worst = result.checks["worst_attacked_clean_fpr"]
    assert worst["strategy"] == "ko_keyboard" and worst["increase"] > CFG.max_attacked_clean_fpr_increase
    assert (worst["newly_flagged"], worst["no_longer_flagged"]) == (5, 1)
    assert worst["p_value"] == pytest.approx(7 / 64)
    assert result.passed


def test_a_one_sided_rise_over_the_limit_fails_and_names_the_strategy_with_its_counts():
    result = check_quality(paired(12, 0), CFG)
    assert result.decision is Decision.FAIL and len(result.reasons) == 1
    assert "ko_keyboard +0.080 (12 newly flagged, 0 no longer; p 0.0002" in result.reasons[0]
    assert "rule" not in result.reasons[0]
    worst = result.checks["worst_attacked_clean_fpr"]
    assert worst["increase"] == pytest.approx(0.08) and result.checks["attacked_clean_fpr_increase"] == pytest.approx(0.08)
    assert worst["holm_p_value"] == pytest.approx(10 * 0.5**12)  # ten strategies changed a clean text


def test_a_significant_rise_below_the_limit_passes():
    below = paired(15, 0, n_clean=1000, flagged=100)
    assert check_quality(below, CFG).passed
    assert not check_quality(below, QualityGateConfig(max_attacked_clean_fpr_increase=0.01)).passed


def test_the_significance_level_is_configurable():
    # 8 newly / 0: p 0.0039, Holm 0.039 over ten strategies.
    assert not check_quality(paired(8, 0), CFG).passed
    assert check_quality(paired(8, 0), QualityGateConfig(attacked_clean_fpr_alpha=0.01)).passed


def test_the_json_report_carries_the_paired_counts_of_each_strategy():
    from content_arena.data import Example
    from content_arena.defender import Defender
    from content_arena.evaluation import AdversarialSet, evaluate
    from content_arena.steps.evaluate import report_from_dict

    class Bang(Defender):
        """Flags every text with a '!'."""

        def __init__(self) -> None:
            super().__init__(name="bang", threshold=0.5)
            self.ready = True

        def load(self) -> Bang:
            return self

        def predict(self, texts):
            import numpy as np

            return np.array([0.9 if "!" in t else 0.1 for t in texts], dtype=np.float32)

    examples = (Example("hi", 0), Example("ok!", 0), Example("yo", 0), Example("bad!", 1))
    # The attack adds a '!' to "hi" and "yo" (newly flagged) and drops it from "ok!" (no longer flagged).
    adversarial = AdversarialSet(examples=examples, variants={"bang": ("hi!", "ok", "yo!", "bad!")}, seed=1)
    report = evaluate(Bang(), adversarial)
    counts = report.to_dict()["attacks"]["bang"]
    assert (counts["n_clean_newly_flagged"], counts["n_clean_no_longer_flagged"]) == (2, 1)
    assert counts["attacked_clean_fpr"] - report.clean.fpr == pytest.approx((2 - 1) / 3)
    back = report_from_dict({"report": report.to_dict(), "threshold": report.threshold})
    assert back.attacks["bang"] == report.attacks["bang"]


def test_a_report_without_paired_counts_is_judged_on_the_limit_alone():
    result = check_quality(report(0.9, {"a": 0}, fpr=0.05, attacked_fpr=0.08), CFG)
    assert not result.passed and "a +0.030 (no paired counts)" in result.reasons[0]
    assert result.checks["worst_attacked_clean_fpr"]["p_value"] is None
