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


def test_f1_optimal_threshold_finds_the_cut_and_prefers_the_usual_one_on_ties():
    from content_arena.metrics import f1_optimal_threshold

    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.9])
    threshold, f1 = f1_optimal_threshold(labels, scores)
    # every cut in (0.30, 0.35] separates the classes perfectly; 0.35 is the one nearest 0.5
    assert threshold == pytest.approx(0.35) and f1 == pytest.approx(1.0)
    assert binary_metrics(labels, scores, threshold).f1 == pytest.approx(f1)
    # perfectly separable anywhere in the range: 0.5 stays
    separable = np.array([0.05, 0.1, 0.15, 0.85, 0.9, 0.95, 0.99])
    assert f1_optimal_threshold(labels, separable)[0] == pytest.approx(0.5)
    assert f1_optimal_threshold(labels, separable, prefer=0.3)[0] == pytest.approx(0.3)


def test_f1_optimal_threshold_stays_in_its_range_and_checks_input():
    from content_arena.metrics import f1_optimal_threshold

    labels = np.array([0, 1, 1, 1])
    scores = np.array([0.01, 0.02, 0.03, 0.04])  # the F1-best cut would be 0.02, below the range
    threshold, _ = f1_optimal_threshold(labels, scores, low=0.2, high=0.8)
    assert 0.2 <= threshold <= 0.8
    with pytest.raises(ValueError, match="shape"):
        f1_optimal_threshold(labels, scores[:3])
    with pytest.raises(ValueError, match="range"):
        f1_optimal_threshold(labels, scores, low=0.9, high=0.1)


def test_f1_tolerance_keeps_the_threshold_near_the_preferred_one():
    from content_arena.metrics import f1_optimal_threshold

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.15 + rng.random(400) * 0.85, 0.0, 1.0)
    exact, best = f1_optimal_threshold(labels, scores)
    loose, f1 = f1_optimal_threshold(labels, scores, tolerance=0.02)
    assert f1 >= best - 0.02 - 1e-12 and f1 == pytest.approx(binary_metrics(labels, scores, loose).f1)
    assert abs(loose - 0.5) <= abs(exact - 0.5)
    with pytest.raises(ValueError, match="tolerance"):
        f1_optimal_threshold(labels, scores, tolerance=-0.1)
