"""Binary classification metrics on numpy arrays (toxic = 1): counts at a threshold, ranking (AUROC,
PR-AUC) and calibration (expected calibration error, reliability bins)."""

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
    pr_auc: float | None = None
    ece: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> BinaryMetrics:
    """Counts at ``threshold`` (a text is flagged when its score >= threshold), AUROC, PR-AUC and the
    expected calibration error of ``scores`` read as probabilities.

    Args:
        labels: 1 toxic, 0 clean.
        scores: toxic scores in [0, 1].
        threshold: the decision threshold.

    Returns:
        The metrics; AUROC and PR-AUC are None with a single class, ECE None unless every score is in [0, 1].
    """
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
        pr_auc=pr_auc(labels, scores),
        ece=expected_calibration_error(labels, scores) if _are_probabilities(scores) else None,
    )


def _are_probabilities(scores: np.ndarray) -> bool:
    return bool(scores.size) and bool(np.isfinite(scores).all()) and scores.min() >= 0.0 and scores.max() <= 1.0


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


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the precision-recall curve as average precision (scikit-learn's); None with a single class.

    Unlike AUROC it weighs the top of the ranking, where a moderation threshold sits, and it moves with
    the share of toxic texts: compare it only between models scored on the same texts.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0 or labels.min() == labels.max():
        return None
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, np.asarray(scores, dtype=np.float64)))


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability curve: scores in ``[lower, upper)`` (the last bin includes 1.0)."""

    lower: float
    upper: float
    count: int
    mean_score: float | None
    toxic_rate: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def reliability_bins(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> list[ReliabilityBin]:
    """The reliability curve: ``bins`` equal-width score bins, each with its mean score and toxic share.

    A calibrated model's points lie on the diagonal: of the texts scored about 0.7, about 70% are toxic.

    Args:
        labels: 1 toxic, 0 clean.
        probs: toxic probabilities in [0, 1].
        bins: how many equal-width bins cover [0, 1].

    Returns:
        One entry per bin, empty bins included (their mean and rate None).
    """
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape:
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape} differ in shape")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if probs.size and (np.nanmin(probs) < 0.0 or np.nanmax(probs) > 1.0 or np.isnan(probs).any()):
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=probs, minlength=bins)
    toxic_sums = np.bincount(index, weights=labels, minlength=bins)
    return [
        ReliabilityBin(
            lower=float(edges[b]), upper=float(edges[b + 1]), count=int(counts[b]),
            mean_score=float(score_sums[b] / counts[b]) if counts[b] else None,
            toxic_rate=float(toxic_sums[b] / counts[b]) if counts[b] else None,
        )
        for b in range(bins)
    ]


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean gap between mean score and toxic share over
    ``bins`` equal-width bins (0 for a perfectly calibrated model; 0.0 with no texts)."""
    curve = reliability_bins(labels, probs, bins)
    total = sum(b.count for b in curve)
    if not total:
        return 0.0
    return float(sum(b.count * abs(b.mean_score - b.toxic_rate) for b in curve if b.count) / total)
