"""A challenger's decision threshold, carried over from its champion through their logits.

A LoRA challenger trained on a few thousand easy, augmented examples comes out *sharper* than its
champion: on held-out texts its logit is close to an affine function of the champion's, with a slope of
2.3-3 and an intercept of up to +0.8 (README loop on split seeds 0, 1, 3, 5 and the adaptive bench,
2026-11-22). Kept at the champion's threshold, the intercept alone lowers the cut: at +0.84 the
challenger flagged what the champion would flag above 0.42, not 0.5, and so flagged more clean and
garbled clean texts (clean FPR 0.058 -> 0.078, attacked-clean FPR 0.058 -> 0.113 in the adaptive
bench), which the promoter rightly refused.

:func:`map_threshold` fits ``challenger_logit ~ slope * champion_logit + intercept`` by least squares on
held-out texts scored by both (the challenger's validation set: clean, toxic and attacked) and moves
the threshold along that line: ``t' = sigmoid(slope * logit(t) + intercept)``. The map is monotone,
so the challenger's ranking (AUROC) is untouched; what changes is only that a global rescaling no longer
moves the operating point. Texts the challenger ranks differently from the champion - the evasions it
learnt - still cross the threshold. In the adaptive bench the mapped threshold was 0.696 (fit on 4,428
validation texts: slope 2.41, intercept 0.83; the same fit on the test texts gave 2.53 and 0.84) and
the challenger was promoted: clean FPR 0.053, attacked-clean FPR 0.071 against the champion's 0.058.
(Those figures predate ``model.ngram_min_df``; with it the same bench mapped 0.5 to 0.725.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LogitMap", "ThresholdMapping", "fit_logit_map", "map_threshold"]

# Probabilities are clipped to [EPS, 1 - EPS] before taking logits (scores saturate in float32).
EPS = 1e-6
# Fewer texts than this, or a weaker linear relation between the two models' logits, keep the
# champion's threshold: the line would be a guess.
MIN_TEXTS = 200
MIN_CORRELATION = 0.5
# A mapped threshold is kept inside these bounds (a cut at 0.999 would be a model that flags nothing).
BOUNDS = (0.05, 0.95)


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class LogitMap:
    """``challenger_logit ≈ slope * champion_logit + intercept`` over ``n`` texts (Pearson ``correlation``)."""

    slope: float
    intercept: float
    correlation: float
    n: int

    def threshold(self, champion_threshold: float) -> float:
        """Where the champion's threshold lands on the challenger's scale."""
        z = self.slope * float(_logit(champion_threshold)) + self.intercept
        return 1.0 / (1.0 + math.exp(-z))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdMapping:
    """The challenger's threshold, the fitted map (None when it was not used) and why."""

    threshold: float
    champion_threshold: float
    logit_map: LogitMap | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"threshold": self.threshold, "champion_threshold": self.champion_threshold, "reason": self.reason,
                **({"logit_map": self.logit_map.to_dict()} if self.logit_map else {})}


def fit_logit_map(champion_scores: Sequence[float], challenger_scores: Sequence[float]) -> LogitMap:
    """Least-squares line from the champion's logits to the challenger's on the same texts."""
    x, y = _logit(champion_scores), _logit(challenger_scores)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two score vectors of the same length, got {x.shape} and {y.shape}")
    n = len(x)
    if n < 2 or float(x.std()) == 0.0 or float(y.std()) == 0.0:
        return LogitMap(slope=math.nan, intercept=math.nan, correlation=math.nan, n=n)
    slope, intercept = np.polyfit(x, y, 1)
    correlation = float(np.corrcoef(x, y)[0, 1])
    return LogitMap(slope=float(slope), intercept=float(intercept), correlation=correlation, n=n)


def map_threshold(
    champion_threshold: float,
    champion_scores: Sequence[float],
    challenger_scores: Sequence[float],
    *,
    min_texts: int = MIN_TEXTS,
    min_correlation: float = MIN_CORRELATION,
    bounds: tuple[float, float] = BOUNDS,
) -> ThresholdMapping:
    """The champion's threshold moved onto the challenger's scale, or kept (with the reason) when the
    texts are too few, the relation too weak or not increasing."""
    n = len(champion_scores)
    if n < min_texts:
        return ThresholdMapping(champion_threshold, champion_threshold, None,
                                f"kept: {n} validation texts (mapping needs {min_texts})")
    fitted = fit_logit_map(champion_scores, challenger_scores)
    if not (fitted.slope > 0.0) or not (fitted.correlation >= min_correlation):
        return ThresholdMapping(champion_threshold, champion_threshold, None,
                                f"kept: the logits do not follow an increasing line (slope {fitted.slope:.2f}, "
                                f"correlation {fitted.correlation:.2f}; needs {min_correlation})")
    mapped = fitted.threshold(champion_threshold)
    low, high = bounds
    clamped = min(max(mapped, low), high)
    reason = (f"mapped: challenger logit = {fitted.slope:.2f} x champion logit {fitted.intercept:+.2f} "
              f"(r {fitted.correlation:.2f}, {n} texts)")
    if clamped != mapped:
        reason += f"; {mapped:.3f} clamped to {clamped:.2f}"
    return ThresholdMapping(clamped, champion_threshold, fitted, reason)
