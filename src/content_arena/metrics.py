"""Binary classification metrics on numpy arrays (toxic = 1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BinaryMetrics:
    n: int
    f1: float
    precision: float
    recall: float
    auroc: float | None
    fpr: float
    accuracy: float

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> BinaryMetrics:
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    predicted = scores >= threshold
    positive = labels == 1
    tp = int(np.sum(predicted & positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    tn = int(np.sum(~predicted & ~positive))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return BinaryMetrics(
        n=int(labels.size),
        f1=f1,
        precision=precision,
        recall=recall,
        auroc=auroc(labels, scores),
        fpr=_ratio(fp, fp + tn),
        accuracy=_ratio(tp + tn, labels.size),
    )


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank statistic, ties averaged; None with a single class."""
    labels = np.asarray(labels, dtype=np.int64)
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(labels.size, dtype=np.float64)
    # Average ranks over tied scores.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def f1_optimal_threshold(
    labels: np.ndarray, scores: np.ndarray, *, low: float = 0.2, high: float = 0.8, step: float = 0.01,
    prefer: float = 0.5, tolerance: float = 0.0,
) -> tuple[float, float]:
    """The threshold in ``[low, high]`` (a grid of ``step``) with the best F1, and the F1 there.

    Every threshold within ``tolerance`` of the best F1 counts as equally good, and of those the one
    closest to ``prefer`` wins: a flat F1 curve leaves the usual 0.5 alone instead of sliding to
    wherever noise put the peak (and flagging far more clean text for a few thousandths of F1). The
    range is bounded: a threshold near 0 or 1 fitted on a few hundred validation texts would be
    noise, not calibration.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    if not 0.0 < low <= high < 1.0:
        raise ValueError(f"threshold range must satisfy 0 < low <= high < 1, got {low}..{high}")
    if tolerance < 0.0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    grid = np.round(np.arange(low, high + step / 2, step), 6)
    f1s = np.array([binary_metrics(labels, scores, float(t)).f1 for t in grid])
    candidates = np.flatnonzero(f1s >= f1s.max() - tolerance - 1e-12)
    chosen = candidates[np.argmin(np.abs(grid[candidates] - prefer))]
    return float(grid[chosen]), float(f1s[chosen])
