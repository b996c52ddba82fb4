"""Calibrated toxic scores at inference: a fitted map from the model's raw probability to a calibrated one.

A classifier trained on a toxic-majority corpus and regularised for ranking gives scores that rank well but
are not probabilities: "0.7" does not mean that 70% of such texts are toxic. A :class:`Calibrator`, fitted on
validation texts when the model is trained (:mod:`content_arena.training.calibration`) and saved in its
manifest, maps each raw score to the share of toxic texts that score stands for. It is applied here with
numpy alone, so no runtime (library, API, KServe) needs scikit-learn.

* ``isotonic``: a piecewise-linear, strictly increasing curve through the centre of each block of the
  isotonic (monotone) fit, clipped to its first and last value beyond them. Joining block centres instead of
  keeping isotonic steps leaves the model's ranking (AUROC) untouched inside the fitted range and lets an
  operating point fall between any two scores, at the cost of a slightly smoother curve than the step fit.
* ``platt``: ``sigmoid(a * logit(score) + b)``, two numbers, for validation sets too small for isotonic.
* ``identity``: scores as they are (models saved without calibration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["CALIBRATION_KINDS", "Calibrator", "logit"]

CalibrationKind = Literal["isotonic", "platt", "identity"]
CALIBRATION_KINDS: tuple[str, ...] = ("isotonic", "platt", "identity")
# Raw probabilities are clipped to [EPS, 1 - EPS] before taking their logit (float32 softmax saturates).
EPS = 1e-7


def logit(scores: Any) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities clipped to ``[EPS, 1 - EPS]``, in float64."""
    p = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw toxic probabilities to calibrated ones (see the module docstring).

    Attributes:
        kind: ``isotonic``, ``platt`` or ``identity``.
        x: isotonic knots on the raw score axis, strictly increasing.
        y: the calibrated score at each knot, non-decreasing, in [0, 1].
        a: Platt slope on the raw logit (positive).
        b: Platt intercept.
        n: how many validation texts it was fitted on (0 for identity).
    """

    kind: CalibrationKind = "identity"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        if self.kind not in CALIBRATION_KINDS:
            raise ValueError(f"calibration kind must be one of {', '.join(CALIBRATION_KINDS)}, not {self.kind!r}")
        if self.kind == "isotonic":
            x, y = np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or x.size < 2:
                raise ValueError("an isotonic calibrator needs two or more knots, as many x as y")
            if not (np.isfinite(x).all() and np.isfinite(y).all()):
                raise ValueError("isotonic knots must be finite")
            if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic knots must increase along x and never decrease along y")
            if y[0] < 0.0 or y[-1] > 1.0:
                raise ValueError("calibrated scores must lie in [0, 1]")
        if self.kind == "platt" and not (np.isfinite(self.a) and np.isfinite(self.b) and self.a > 0.0):
            raise ValueError(f"a Platt calibrator needs a finite positive slope, got a={self.a}, b={self.b}")

    @property
    def is_identity(self) -> bool:
        return self.kind == "identity"

    def apply(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw ones, in the same order, as float64.

        Args:
            scores: raw toxic probabilities from the model.

        Returns:
            The calibrated probabilities (the raw ones for ``identity``).
        """
        raw = np.asarray(scores, dtype=np.float64)
        if self.kind == "identity":
            return raw
        if self.kind == "isotonic":
            return np.interp(raw, self.x, self.y)
        return 1.0 / (1.0 + np.exp(-(self.a * logit(raw) + self.b)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as stored in the model manifest."""
        if self.kind == "isotonic":
            return {"kind": "isotonic", "x": [float(v) for v in self.x], "y": [float(v) for v in self.y], "n": self.n}
        if self.kind == "platt":
            return {"kind": "platt", "a": float(self.a), "b": float(self.b), "n": self.n}
        return {"kind": "identity", "n": self.n}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibrator:
        """The calibrator back from :meth:`to_dict` (None gives identity); a clear ValueError otherwise."""
        if data is None:
            return cls()
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError(f"a calibration record is a mapping with a kind, got {data!r:.80}")
        kind = data["kind"]
        n = int(data.get("n", 0))
        if kind == "isotonic":
            return cls("isotonic", x=tuple(map(float, data.get("x", ()))), y=tuple(map(float, data.get("y", ()))), n=n)
        if kind == "platt":
            return cls("platt", a=float(data.get("a", 1.0)), b=float(data.get("b", 0.0)), n=n)
        return cls(kind, n=n)
