"""Fitting a model's calibration and its policy threshold on validation texts.

:func:`fit_policy` is what training calls once a model's weights are final: it fits a
:class:`~content_arena.defender.calibration.Calibrator` on the model's raw validation scores, then picks
the threshold that keeps the configured :class:`~content_arena.operating_point.OperatingPoint` on the
calibrated scores of the same texts. Both are saved with the model. Champion and challenger go through it
alike, each on its own scores of the same validation texts.

Isotonic calibration needs enough texts of each class to estimate a curve; below ``MIN_ISOTONIC_TEXTS``
texts or ``MIN_ISOTONIC_PER_CLASS`` of the smaller class it falls back to Platt scaling (two parameters);
below the operating point's own minimum (``operating_point.MIN_TEXTS`` / ``MIN_PER_CLASS``) there is
neither calibration nor a policy threshold: the configured ``model.threshold`` is kept and the manifest
says why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from content_arena.defender.calibration import Calibrator, logit
from content_arena.metrics import expected_calibration_error
from content_arena.operating_point import (
    MIN_PER_CLASS,
    MIN_TEXTS,
    OperatingPoint,
    ThresholdChoice,
    choose_threshold,
)

__all__ = ["MIN_ISOTONIC_PER_CLASS", "MIN_ISOTONIC_TEXTS", "PolicyFit", "fit_calibrator", "fit_policy"]

log = logging.getLogger(__name__)

# Isotonic regression on fewer texts than this (or fewer of the smaller class) fits noise as steps;
# Platt scaling's two parameters are then the safer estimate.
MIN_ISOTONIC_TEXTS = 200
MIN_ISOTONIC_PER_CLASS = 30
# Platt's logistic regression is barely regularised: its one feature is the raw logit, which it only rescales.
PLATT_C = 1e4


def _checked(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if not np.isfinite(s).all() or (s.size and (s.min() < 0.0 or s.max() > 1.0)):
        raise ValueError("raw scores must be probabilities in [0, 1]")
    return y, s


def _isotonic(labels: np.ndarray, scores: np.ndarray) -> Calibrator | None:
    """Centred isotonic knots (see defender/calibration.py), or None when the fit is a single step."""
    from sklearn.isotonic import IsotonicRegression

    fitted_model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(scores, labels)
    distinct, inverse = np.unique(scores, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    fitted = fitted_model.predict(distinct)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) > 0])
    if starts.size < 2:
        return None
    counts = np.add.reduceat(weights, starts)
    centres = np.add.reduceat(distinct * weights, starts) / counts
    return Calibrator("isotonic", x=tuple(centres.tolist()), y=tuple(fitted[starts].tolist()), n=int(labels.size))


def _platt(labels: np.ndarray, scores: np.ndarray) -> Calibrator | None:
    """``sigmoid(a * logit(s) + b)`` by logistic regression, or None when the slope is not positive."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=PLATT_C, max_iter=1000).fit(logit(scores).reshape(-1, 1), labels)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if not (np.isfinite(a) and a > 0.0 and np.isfinite(b)):
        return None
    return Calibrator("platt", a=a, b=b, n=int(labels.size))


def fit_calibrator(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, kind: Literal["isotonic", "platt", "none"]
) -> tuple[Calibrator, str]:
    """A calibrator for raw ``scores`` of validation texts with ``labels``, and a line saying what was fitted.

    Args:
        labels: 1 toxic, 0 clean.
        scores: the model's raw toxic probabilities of the same texts.
        kind: ``isotonic`` (Platt below ``MIN_ISOTONIC_TEXTS`` / ``MIN_ISOTONIC_PER_CLASS``), ``platt``, or
            ``none`` (identity).

    Returns:
        The calibrator (identity when the texts are too few or the scores carry no usable order) and why.
    """
    y, s = _checked(labels, scores)
    if kind == "none":
        return Calibrator(), "none: calibration off (defender.calibration none)"
    n_toxic = int(y.sum())
    smaller = min(n_toxic, int(y.size) - n_toxic)
    if y.size < MIN_TEXTS or smaller < MIN_PER_CLASS:
        return Calibrator(), (f"none: {y.size} validation texts, {smaller} of the smaller class "
                              f"(calibration needs {MIN_TEXTS} and {MIN_PER_CLASS})")
    if kind == "isotonic" and y.size >= MIN_ISOTONIC_TEXTS and smaller >= MIN_ISOTONIC_PER_CLASS:
        fitted = _isotonic(y, s)
        if fitted is not None:
            return fitted, f"isotonic on {y.size} validation texts ({len(fitted.x)} knots)"
        reason = "platt: the isotonic fit was a single step"
    elif kind == "isotonic":
        reason = (f"platt: {y.size} validation texts, {smaller} of the smaller class (isotonic needs "
                  f"{MIN_ISOTONIC_TEXTS} and {MIN_ISOTONIC_PER_CLASS})")
    else:
        reason = "platt"
    fitted = _platt(y, s)
    if fitted is None:
        return Calibrator(), "none: the scores do not increase with toxicity on the validation texts"
    return fitted, f"{reason} (a={fitted.a:.3f}, b={fitted.b:+.3f}, {y.size} texts)"


@dataclass(frozen=True)
class PolicyFit:
    """A model's calibration and decision threshold, and how they were reached.

    Attributes:
        threshold: the decision threshold on calibrated scores.
        calibrator: the map from raw to calibrated scores.
        operating_point: the configured policy.
        choice: what the threshold achieves on the validation texts; None when the policy could not be
            applied and ``threshold`` is the configured fallback.
        reason: one line each for the calibration and the threshold.
        ece_raw: expected calibration error of the raw validation scores (None without texts).
        ece_calibrated: the same after calibration (on the texts it was fitted on: optimistic).
    """

    threshold: float
    calibrator: Calibrator
    operating_point: OperatingPoint
    choice: ThresholdChoice | None
    reason: str
    ece_raw: float | None = None
    ece_calibrated: float | None = None

    @property
    def applied(self) -> bool:
        """Whether the threshold comes from the policy (not the configured fallback)."""
        return self.choice is not None

    def validation_record(self) -> dict[str, Any]:
        """The manifest's ``validation`` entry: the figures at the point, or why the policy was not applied."""
        record: dict[str, Any] = {"threshold_source": "policy" if self.applied else "configured",
                                  "requested": self.operating_point.to_dict(), "reason": self.reason,
                                  "ece_raw": self.ece_raw, "ece_calibrated": self.ece_calibrated}
        if self.choice is not None:
            record.update(self.choice.to_dict())
        return record


def fit_policy(
    labels: Sequence[int] | np.ndarray | None,
    raw_scores: Sequence[float] | np.ndarray | None,
    point: OperatingPoint,
    *,
    calibration: Literal["isotonic", "platt", "none"] = "isotonic",
    fallback_threshold: float = 0.5,
) -> PolicyFit:
    """Calibrate on validation scores, then choose the threshold that keeps ``point`` on them.

    Args:
        labels: validation labels (None or empty: no validation texts).
        raw_scores: the model's raw toxic probabilities of the same texts, from weights that never saw them.
        point: the operating point.
        calibration: the calibration asked for (see :func:`fit_calibrator`).
        fallback_threshold: the threshold kept when the policy cannot be applied.

    Returns:
        The fit; when the texts are too few (or the point unreachable) the threshold is
        ``fallback_threshold`` and ``choice`` is None.
    """
    if labels is None or raw_scores is None or len(labels) == 0:
        reason = f"no validation texts: threshold {fallback_threshold:.3f} (model.threshold) kept, scores uncalibrated"
        log.warning("%s", reason)
        return PolicyFit(fallback_threshold, Calibrator(), point, None, reason)
    y, raw = _checked(labels, raw_scores)
    calibrator, calibration_reason = fit_calibrator(y, raw, calibration)
    calibrated = calibrator.apply(raw)
    ece_raw, ece_calibrated = expected_calibration_error(y, raw), expected_calibration_error(y, calibrated)
    try:
        choice = choose_threshold(y, calibrated, point)
    except ValueError as exc:
        reason = (f"calibration {calibration_reason}; threshold {fallback_threshold:.3f} (model.threshold) kept: "
                  f"{point.describe()} not applied ({exc})")
        log.warning("%s", reason)
        return PolicyFit(fallback_threshold, calibrator, point, None, reason, ece_raw, ece_calibrated)
    reason = (f"calibration {calibration_reason}; threshold {choice.threshold:.4f} for {point.describe()} on "
              f"{choice.n} validation texts (fpr {choice.fpr:.3f}, precision {choice.precision:.3f}, "
              f"recall {choice.recall:.3f})")
    log.info("%s", reason)
    return PolicyFit(choice.threshold, calibrator, point, choice, reason, ece_raw, ece_calibrated)
