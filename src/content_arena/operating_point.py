"""The operating point: the policy that turns toxic scores into flags, and the threshold it gives.

A moderation team states what it can live with - "flag at most 10% of clean comments" (``fpr``), "at least
90% of what we flag must be toxic" (``precision``) or "catch 70% of toxic comments" (``recall``) - and the
threshold follows from that policy on validation texts, never on the test set. A challenger gets its own
threshold by the same policy on the same validation texts, so champion and challenger are compared at the
same promise to the users rather than at one number that means different things for the two models.

Candidate thresholds are the midpoints between consecutive distinct validation scores (plus the lowest
score, which flags everything, and just above the highest, which flags nothing): every way of splitting the
validation texts is reachable, and a cut halfway between two scores is the one least moved by noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["MIN_PER_CLASS", "MIN_TEXTS", "OperatingPoint", "ThresholdChoice", "choose_threshold"]

Metric = Literal["fpr", "precision", "recall"]

# Fewer validation texts than this, or fewer of either class than MIN_PER_CLASS, and a threshold is not
# chosen: with five clean texts "FPR <= 0.10" can only mean "flag none of them".
MIN_TEXTS = 20
MIN_PER_CLASS = 5


class OperatingPoint(BaseModel):
    """``metric`` held at ``value`` on validation texts: ``fpr`` at most, ``precision`` / ``recall`` at least."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = "fpr"
    value: float = Field(0.10, gt=0.0, lt=1.0)

    def to_dict(self) -> dict[str, Any]:
        """``{"metric": ..., "value": ...}``, as stored in a model's manifest."""
        return {"metric": self.metric, "value": float(self.value)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        """The point back from :meth:`to_dict`; a clear ValueError for anything else.

        Args:
            data: a mapping with ``metric`` and ``value``.

        Returns:
            The operating point.
        """
        if not isinstance(data, dict):
            raise ValueError(f"an operating point is a mapping with metric and value, got {type(data).__name__}")
        try:
            return cls(**data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'point'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"invalid operating point {data!r}: {problems}") from None

    def describe(self) -> str:
        """``"fpr <= 0.10"`` / ``"recall >= 0.70"``: the promise in one line."""
        return f"{self.metric} {'<=' if self.metric == 'fpr' else '>='} {self.value:.2f}"


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold a policy gave, and what it achieves on the texts it was chosen on."""

    threshold: float
    fpr: float
    precision: float
    recall: float
    n: int
    n_toxic: int
    n_clean: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validated(labels: Any, scores: Any, min_texts: int, min_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels ({labels.size}) and scores ({scores.size}) differ in length")
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or infinite values")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (clean) or 1 (toxic)")
    n_toxic = int(labels.sum())
    n_clean = int(labels.size - n_toxic)
    if labels.size < min_texts:
        raise ValueError(f"{labels.size} validation texts: choosing a threshold needs at least {min_texts}")
    if min(n_toxic, n_clean) < min_per_class:
        raise ValueError(f"{n_toxic} toxic and {n_clean} clean validation texts: choosing a threshold needs "
                         f"at least {min_per_class} of each")
    return labels, scores


def choose_threshold(
    labels: Any, scores: Any, point: OperatingPoint, *, min_texts: int = MIN_TEXTS, min_per_class: int = MIN_PER_CLASS
) -> ThresholdChoice:
    """The threshold that keeps ``point`` on these texts (a text is flagged when its score >= threshold).

    * ``fpr``: the most recall whose FPR is at most the value (the lowest such threshold);
    * ``recall``: the highest threshold whose recall is at least the value (the fewest flags for that recall);
    * ``precision``: the most recall whose precision is at least the value (the lowest such threshold).

    Of the cuts that give the chosen recall, the highest is taken: a cut lower than the lowest toxic text it
    flags would only flag more clean texts. On validation texts whose classes barely overlap the FPR budget is
    then not spent for nothing.

    Args:
        labels: 1 toxic, 0 clean, one per text.
        scores: the model's (calibrated) score of each text.
        point: the policy.
        min_texts: fewer texts than this raise ValueError.
        min_per_class: fewer toxic or clean texts than this raise ValueError.

    Returns:
        The threshold and the FPR, precision and recall it gives on these texts.

    Raises:
        ValueError: too few texts, one class missing or too small, malformed input, or no threshold reaches
            the precision asked for.
    """
    labels, scores = _validated(labels, scores, min_texts, min_per_class)
    distinct, inverse = np.unique(scores, return_inverse=True)
    toxic_at = np.bincount(inverse, weights=labels, minlength=distinct.size)
    clean_at = np.bincount(inverse, weights=1 - labels, minlength=distinct.size)
    # Candidate i flags distinct[i:]; the last candidate flags nothing.
    tp = np.concatenate([np.cumsum(toxic_at[::-1])[::-1], [0.0]])
    fp = np.concatenate([np.cumsum(clean_at[::-1])[::-1], [0.0]])
    middle = (distinct[:-1] + distinct[1:]) / 2.0
    middle = np.where(middle > distinct[:-1], middle, distinct[1:])  # two adjacent floats have no midpoint
    cuts = np.concatenate([[distinct[0]], middle, [np.nextafter(distinct[-1], np.inf)]])
    n_toxic, n_clean = int(labels.sum()), int(labels.size - labels.sum())
    fpr, recall = fp / n_clean, tp / n_toxic
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    tolerance = 1e-12  # rates are ratios of counts: 0.3 must count as <= 0.3
    if point.metric == "fpr":
        index = int(np.flatnonzero(fpr <= point.value + tolerance)[0])  # the flag-nothing cut always qualifies
    elif point.metric == "recall":
        index = int(np.flatnonzero(recall >= point.value - tolerance)[-1])  # the flag-everything cut always does
    else:
        reached = np.flatnonzero((precision >= point.value - tolerance) & (flagged > 0))
        if reached.size == 0:
            raise ValueError(f"no threshold reaches precision {point.value:.2f} on these texts "
                             f"(best {float(precision.max()):.3f})")
        index = int(reached[0])
    # Lowering the cut below the lowest toxic score it flags adds clean texts and no toxic ones: raise it to
    # the highest cut with the same recall (fewer false positives, the same catch, every constraint still kept).
    index = int(np.flatnonzero(tp == tp[index])[-1])
    return ThresholdChoice(
        threshold=float(cuts[index]), fpr=float(fpr[index]), precision=float(precision[index]),
        recall=float(recall[index]), n=int(labels.size), n_toxic=n_toxic, n_clean=n_clean,
    )
