"""Stand-in for content_arena.operating_point until the policy branch lands (removed on merge)."""

from __future__ import annotations

import numpy as np


def choose_threshold(labels, scores, metric="fpr", value=0.10):
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    clean = np.sort(scores[labels == 0])
    k = int(np.floor(value * len(clean)))
    # the lowest threshold that flags at most `value` of the clean texts
    if k >= len(clean):
        return float(clean[0])
    return float(np.nextafter(clean[len(clean) - 1 - k], np.inf)) if k < len(clean) else 1.0


def pr_auc(labels, scores):
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


def expected_calibration_error(labels, scores, bins=10):
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(labels[m].mean() - scores[m].mean())
    return float(ece)
