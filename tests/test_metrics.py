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
