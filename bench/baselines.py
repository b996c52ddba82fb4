"""Baseline defenders for the quality benchmark, wrapped as content_arena ``Defender`` subclasses so that
``evaluation.evaluate`` measures them with exactly the same evasion and attacked-clean FPR definitions.

- :class:`TfidfLRDefender`: character 1–4-gram TF-IDF + logistic regression (scikit-learn).
- :class:`KorcenDefender`: the ``korcen`` keyword filter (PyPI ``korcen``), a 0/1 score.
- ``TfidfLRDefender(morphemes=True)``: the same char n-grams plus Korean morpheme unigrams and bigrams from
  ``kiwipiepy`` (an experiment: what morphemes add, and what the tokenizer costs per text).

Both skip the project's normaliser by default (``normalize=False``): that is how they are used on their
own, and how the published baseline figures were measured. ``normalize=True`` puts the same normaliser
as the transformer defender in front of them, which separates what the normaliser buys from what the
model buys.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from content_arena.data import Example
from content_arena.defender import Defender


class _Baseline(Defender):
    def __init__(self, name: str, *, normalize: bool = False, threshold: float = 0.5):
        super().__init__(name=name, threshold=threshold)
        self.normalize = normalize

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        return super().preprocess(texts) if self.normalize else list(texts)


class TfidfLRDefender(_Baseline):
    """Char 1–4-gram TF-IDF + logistic regression, fitted on ``train`` when loaded."""

    def __init__(self, train: Sequence[Example], *, normalize: bool = False, max_features: int | None = 200_000,
                 c: float = 4.0, seed: int = 0, morphemes: bool = False):
        name = "tfidf-lr+norm" if normalize else "tfidf-lr"
        super().__init__(name + "+kiwi" if morphemes else name, normalize=normalize)
        self.train = list(train)
        self.max_features = max_features
        self.c = c
        self.seed = seed
        self.morphemes = morphemes
        self.pipeline = None

    def load(self) -> TfidfLRDefender:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        texts = self.preprocess([e.text for e in self.train])
        labels = [e.label for e in self.train]
        features = TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True, min_df=2,
                                   max_features=self.max_features)
        if self.morphemes:
            morphemes = make_pipeline(MorphemeText(), TfidfVectorizer(
                tokenizer=str.split, token_pattern=None, lowercase=False, ngram_range=(1, 2), sublinear_tf=True,
                min_df=2, max_features=self.max_features))
            features = make_union(features, morphemes)
        pipeline = make_pipeline(features, LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed))
        pipeline.fit(texts, labels)
        self.pipeline = pipeline
        self.ready = True
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        assert self.pipeline is not None
        return self.pipeline.predict_proba(list(texts))[:, 1].astype(np.float32)


class MorphemeText(BaseEstimator, TransformerMixin):
    """Each text as its ``form/tag`` morphemes from kiwipiepy, space-separated (analysed on every core)."""

    def fit(self, texts: Sequence[str], labels: Sequence[int] | None = None) -> MorphemeText:
        return self

    def transform(self, texts: Sequence[str]) -> list[str]:
        try:
            from kiwipiepy import Kiwi
        except ImportError:
            raise SystemExit("the morpheme experiment needs kiwipiepy: pip install kiwipiepy") from None

        if not hasattr(self, "kiwi_"):
            self.kiwi_ = Kiwi(num_workers=-1)
        return [" ".join(f"{t.form}/{t.tag}" for t in tokens) for tokens in self.kiwi_.tokenize(list(texts))]


class KorcenUnavailable(RuntimeError):
    """The korcen package is not installed."""


class KorcenDefender(_Baseline):
    """The korcen keyword filter: score 1.0 when it finds a profanity pattern, else 0.0."""

    def __init__(self, *, normalize: bool = False):
        super().__init__("korcen+norm" if normalize else "korcen", normalize=normalize)
        self._check = None

    def load(self) -> KorcenDefender:
        try:
            from korcen import korcen
        except ImportError as exc:
            raise KorcenUnavailable(f"korcen is not installed ({exc}); pip install korcen") from exc
        self._check = korcen.check
        self.ready = True
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        assert self._check is not None
        return np.fromiter((1.0 if self._check(t) else 0.0 for t in texts), dtype=np.float32, count=len(texts))
