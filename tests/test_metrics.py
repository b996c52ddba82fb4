from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from content_arena.metrics import auroc, binary_metrics


def test_matches_scikit_learn_on_random_data():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(labels * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)  # rounding makes ties
    m = binary_metrics(labels, scores, threshold=0.5)
    predicted = scores >= 0.5
    assert m.f1 == pytest.approx(f1_score(labels, predicted))
    assert m.precision == pytest.approx(precision_score(labels, predicted))
    assert m.recall == pytest.approx(recall_score(labels, predicted))
    assert m.auroc == pytest.approx(roc_auc_score(labels, scores))
    assert m.fpr == pytest.approx(np.mean(predicted[labels == 0]))


def test_single_class_has_no_auroc_and_no_division_error():
    m = binary_metrics(np.zeros(4), np.array([0.1, 0.9, 0.2, 0.3]))
    assert m.auroc is None
    assert m.f1 == 0.0
    assert m.fpr == 0.25
    assert auroc(np.ones(3), np.ones(3)) is None


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        binary_metrics(np.zeros(3), np.zeros(4))


def test_pr_auc_matches_scikit_learns_average_precision():
    from sklearn.metrics import average_precision_score

    from content_arena.metrics import pr_auc

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 300)
    scores = np.clip(labels * 0.4 + rng.random(300) * 0.6, 0, 1)
    assert binary_metrics(labels, scores).pr_auc == pytest.approx(average_precision_score(labels, scores))
    assert pr_auc(np.zeros(5), np.linspace(0, 1, 5)) is None


def test_a_calibrated_model_has_a_small_calibration_error_and_an_overconfident_one_a_large_one():
    from content_arena.metrics import expected_calibration_error

    rng = np.random.default_rng(6)
    probs = rng.random(20000)
    labels = (rng.random(20000) < probs).astype(int)
    assert expected_calibration_error(labels, probs) < 0.02
    sharpened = np.where(probs >= 0.5, 1.0, 0.0)  # says 0 or 1 where the truth is anything in between
    assert expected_calibration_error(labels, sharpened) > 0.2
    assert binary_metrics(labels, probs).ece == pytest.approx(expected_calibration_error(labels, probs))


def test_reliability_bins_count_every_text_once_and_report_the_toxic_share():
    from content_arena.metrics import reliability_bins

    labels = np.array([0, 0, 1, 1, 1, 0])
    probs = np.array([0.05, 0.15, 0.15, 0.95, 1.0, 0.55])
    bins = reliability_bins(labels, probs, bins=10)
    assert len(bins) == 10 and sum(b.count for b in bins) == 6
    assert bins[1].count == 2 and bins[1].toxic_rate == pytest.approx(0.5) and bins[1].mean_score == pytest.approx(0.15)
    assert bins[9].count == 2 and bins[9].toxic_rate == 1.0  # 1.0 falls in the last bin
    assert bins[3].count == 0 and bins[3].mean_score is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins(labels, probs + 0.5)


def test_scores_that_are_not_probabilities_get_no_calibration_error():
    assert binary_metrics(np.array([0, 1]), np.array([-2.0, 3.0]), threshold=0.0).ece is None
