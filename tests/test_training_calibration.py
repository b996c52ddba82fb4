"""Calibration and the policy threshold fitted on validation scores; the runtime calibrator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from content_arena.defender.calibration import Calibrator
from content_arena.metrics import auroc, expected_calibration_error
from content_arena.operating_point import OperatingPoint
from content_arena.training.calibration import MIN_ISOTONIC_TEXTS, fit_calibrator, fit_policy


def overconfident(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a true probability, and scores that push it toward 0 and 1 (a sharp, biased model)."""
    rng = np.random.default_rng(seed)
    true = rng.random(n)
    labels = (rng.random(n) < true).astype(int)
    z = np.log(true / (1 - true))
    return labels, 1.0 / (1.0 + np.exp(-(3.0 * z + 1.0)))


def test_isotonic_calibration_cuts_the_calibration_error_of_an_overconfident_model():
    labels, raw = overconfident(4000)
    calibrator, reason = fit_calibrator(labels[:2000], raw[:2000], "isotonic")
    assert calibrator.kind == "isotonic" and reason.startswith("isotonic")
    held_labels, held_raw = labels[2000:], raw[2000:]
    before = expected_calibration_error(held_labels, held_raw)
    after = expected_calibration_error(held_labels, calibrator.apply(held_raw))
    assert before > 0.08 and after < 0.04


def test_isotonic_calibration_keeps_the_ranking_of_texts_inside_its_range():
    labels, raw = overconfident(3000, seed=1)
    calibrator, _ = fit_calibrator(labels, raw, "isotonic")
    inside = (raw > calibrator.x[0]) & (raw < calibrator.x[-1])
    calibrated = calibrator.apply(raw)
    order = np.argsort(raw[inside])
    assert np.all(np.diff(calibrated[inside][order]) >= 0)
    assert auroc(labels, calibrated) == pytest.approx(auroc(labels, raw), abs=0.002)


def test_a_small_validation_set_gets_platt_scaling_instead_of_isotonic():
    labels, raw = overconfident(MIN_ISOTONIC_TEXTS - 50, seed=2)
    calibrator, reason = fit_calibrator(labels, raw, "isotonic")
    assert calibrator.kind == "platt" and "isotonic needs" in reason
    assert calibrator.a == pytest.approx(1 / 3, rel=0.35)  # the scores were the true logit times 3


def test_too_few_texts_or_calibration_off_leave_scores_as_they_are():
    labels, raw = overconfident(12, seed=3)
    calibrator, reason = fit_calibrator(labels, raw, "isotonic")
    assert calibrator.is_identity and "calibration needs" in reason
    assert fit_calibrator(*overconfident(500), "none")[0].is_identity


@pytest.mark.parametrize("kind", ["isotonic", "platt"])
def test_a_calibrator_survives_json_and_gives_the_same_scores_after_reload(kind):
    labels, raw = overconfident(1000, seed=4)
    calibrator, _ = fit_calibrator(labels, raw, kind)
    back = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert back == calibrator
    np.testing.assert_array_equal(back.apply(raw), calibrator.apply(raw))


def test_a_corrupt_calibration_record_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="increase"):
        Calibrator.from_dict({"kind": "isotonic", "x": [0.5, 0.2], "y": [0.1, 0.3]})
    with pytest.raises(ValueError, match="positive slope"):
        Calibrator.from_dict({"kind": "platt", "a": -1.0, "b": 0.0})
    with pytest.raises(ValueError, match="kind"):
        Calibrator.from_dict({"kind": "spline"})
    assert Calibrator.from_dict(None).is_identity


def test_the_policy_threshold_holds_the_fpr_target_on_calibrated_validation_scores():
    labels, raw = overconfident(1500, seed=5)
    fit = fit_policy(labels, raw, OperatingPoint(metric="fpr", value=0.10))
    assert fit.applied and fit.calibrator.kind == "isotonic"
    calibrated = fit.calibrator.apply(raw)
    assert np.mean(calibrated[labels == 0] >= fit.threshold) <= 0.10
    assert fit.choice is not None and fit.choice.fpr > 0.08  # close to the budget, not far below it
    assert fit.ece_calibrated is not None and fit.ece_calibrated < fit.ece_raw
    record = fit.validation_record()
    assert record["threshold_source"] == "policy" and record["fpr"] == fit.choice.fpr


def test_without_enough_validation_texts_the_configured_threshold_is_kept_and_the_reason_recorded():
    none = fit_policy(None, None, OperatingPoint(), fallback_threshold=0.42)
    assert none.threshold == 0.42 and not none.applied and none.calibrator.is_identity
    assert "no validation texts" in none.validation_record()["reason"]
    few = fit_policy([0, 1, 1], [0.2, 0.7, 0.9], OperatingPoint(), fallback_threshold=0.5)
    assert few.threshold == 0.5 and few.validation_record()["threshold_source"] == "configured"
    assert "not applied" in few.reason
