"""The defender lifecycle: load → preprocess → predict → postprocess.

One base class, one subclass per runtime (the same shape as KServe's ``Model``). Callers use
:meth:`Defender.classify` for labelled results or :meth:`Defender.scores` for calibrated toxic
probabilities (the model's raw probability through its saved calibrator, see
:mod:`~content_arena.defender.calibration`); both take a batch. ``threshold`` applies to the calibrated
score: it is the one the model's operating point chose on the same scale. A defender is loaded once and reused; :meth:`reload` swaps in
new weights without changing the object callers hold.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from content_arena.defender.calibration import Calibrator
from content_arena.defender.normalizer import normalize_many

if TYPE_CHECKING:
    from content_arena.defender.recognizer import WordRecognizer


class Classification(TypedDict):
    toxic_score: float
    is_toxic: bool
    confidence: float


class DefenderNotReady(RuntimeError):
    """classify() was called before load() succeeded."""


class Defender(abc.ABC):
    """Base class: subclasses implement :meth:`load` and :meth:`predict`."""

    #: Set by :meth:`load` when the model came with one (see :mod:`~content_arena.defender.recognizer`).
    recognizer: WordRecognizer | None = None
    #: Raw model probability -> calibrated probability; identity for models saved without calibration.
    calibrator: Calibrator = Calibrator()
    #: The policy that chose ``threshold`` (``{"metric", "value"}``), None when the model has none.
    operating_point: dict[str, Any] | None = None

    def __init__(self, name: str = "content-filter", threshold: float = 0.5, batch_size: int = 64):
        self.name = name
        self.threshold = threshold
        self.batch_size = batch_size
        self.ready = False
        self.version: str | None = None
        self._lock = threading.RLock()

    @abc.abstractmethod
    def load(self) -> Defender:
        """Read weights and set ``ready``; returns self."""

    def reload(self) -> Defender:
        with self._lock:
            self.ready = False
            return self.load()

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        """Undo the unicode tricks an attacker can play before the model sees the text, then read garbled
        words back when the model came with a word recogniser."""
        normalized = normalize_many(texts)
        return normalized if self.recognizer is None else self.recognizer.many(normalized)

    @abc.abstractmethod
    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The model's raw toxic probability for each preprocessed text, as a float array."""

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw ones from :meth:`predict` (unchanged without a calibrator)."""
        return raw if self.calibrator.is_identity else self.calibrator.apply(raw)

    def postprocess(self, scores: np.ndarray) -> list[Classification]:
        flags = scores >= self.threshold
        confidence = np.where(flags, scores, 1.0 - scores)
        return [
            {"toxic_score": float(s), "is_toxic": bool(f), "confidence": float(c)}
            for s, f, c in zip(scores.tolist(), flags.tolist(), confidence.tolist(), strict=True)
        ]

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated toxic probability of each text, in order.

        Args:
            texts: raw texts.

        Returns:
            One float per text.
        """
        if not self.ready:
            raise DefenderNotReady(f"defender {self.name!r} is not loaded")
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            return self.calibrate(self.predict(self.preprocess(texts)))

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        return self.postprocess(self.scores(texts))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "threshold": self.threshold, "ready": self.ready,
                "operating_point": self.operating_point, "calibration": self.calibrator.kind}
