"""Watching the served defender: live-traffic signals, the shared keys and events, review sampling.

**Signals.** Each classify batch (the API's micro-batches, a KServe request) is aggregated once, with
numpy, into per-model-version accumulators that a Prometheus collector reads at scrape time:

* ``arena_live_texts_total`` and ``arena_live_flagged_total``: texts scored and texts at or above the
  threshold (the flag rate is their ratio);
* ``arena_live_normalized_total{kind}``: texts the normaliser changed, by kind of change
  (:data:`~content_arena.defender.normalizer.NORMALIZATION_KINDS`, and ``any``);
* ``arena_live_words_total`` and ``arena_live_unknown_words_total``: words after normalisation, and
  those the champion's word recogniser does not know (its vocabulary is the champion's corpus), counted
  on a spread sample of at most :data:`WORD_SAMPLE` texts per batch (their ratio is the signal);
* ``arena_live_text_length_chars`` and ``arena_live_score``: histograms of text length and score;
* ``arena_live_score_psi``: the population stability index of the latest scores against the
  champion's validation scores (the reference saved in its manifest), over fixed score bins.

PSI = Σ (a − e) · ln(a / e) over the bins, with a the live share and e the reference share (both
floored at 1e-4). Below 0.1 the distributions agree; above 0.2 they have moved. The live side is an
exponentially decayed histogram over about ``monitoring.drift_window`` texts, so the value follows
the traffic without a time window; it is reported only after ``monitoring.drift_min_texts`` texts,
and never for a model whose manifest has no reference (the metric is then absent, not zero).

**Keys and events** (:class:`StateKeys`): ``metrics:detection_rate:current`` and
``metrics:detection_rate:history``, ``model:champion:path`` and ``model:champion:f1``, and the
``battle_completed`` event, on the queue backend (Redis, or in-process). They are kept current where
things happen: the one place that moves the champion alias (``steps.aliases``) and the end of every
battle (``steps.run_battle``, ``arena battle``, the API's battles), wherever those run; see
:func:`state_keys` for which backend code outside the API writes to.

**Review samples**: see :mod:`content_arena.live_samples`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from content_arena.defender.base import Defender as BaseDefender
from content_arena.defender.base import DefenderNotReady
from content_arena.defender.normalizer import NORMALIZATION_KINDS, normalize_many_with_kinds

if TYPE_CHECKING:
    from content_arena.config import ArenaConfig, MonitoringConfig
    from content_arena.defender import Defender
    from content_arena.queue import QueueBackend

log = logging.getLogger(__name__)

#: Fixed score bins of the drift reference and of PSI: ten equal bins over [0, 1].
SCORE_BINS: tuple[float, ...] = tuple(round(x, 1) for x in np.linspace(0.0, 1.0, 11))
#: Upper bounds of the text-length histogram, in characters.
LENGTH_BUCKETS: tuple[float, ...] = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 5000)
REFERENCE_KEY = "score_reference"
PSI_FLOOR = 1e-4
# At most this many model versions are tracked per process; the one seen longest ago is dropped.
MAX_VERSIONS = 8
KINDS: tuple[str, ...] = NORMALIZATION_KINDS


# ------------------------------------------------------------------------------- score reference


def score_bin_index(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    """The fixed :data:`SCORE_BINS` bin of each score: ``floor(10 * score)``, [0.9, 1] last (scores outside
    [0, 1] are clipped)."""
    values = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    return np.minimum((values * (len(SCORE_BINS) - 1)).astype(np.int64), len(SCORE_BINS) - 2)


def score_histogram(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    """Counts of ``scores`` in the fixed :data:`SCORE_BINS`."""
    return np.bincount(score_bin_index(scores), minlength=len(SCORE_BINS) - 1).astype(np.float64)


def score_reference(scores: np.ndarray | Sequence[float]) -> dict[str, Any]:
    """The drift reference of a model: the share of its validation scores in each fixed bin.

    Args:
        scores: the model's toxic scores on its validation texts.

    Returns:
        ``{"bins": [...11 edges], "shares": [...10 shares], "n": count}``, JSON-able, for the manifest's
        ``info["score_reference"]``.
    """
    counts = score_histogram(scores)
    total = float(counts.sum())
    if total <= 0:
        raise ValueError("a score reference needs at least one score")
    return {"bins": list(SCORE_BINS), "shares": [round(float(c) / total, 6) for c in counts], "n": int(total)}


def check_reference(reference: Any) -> np.ndarray | None:
    """The reference's shares as an array, or None when ``reference`` is missing or not one this
    version can compare against (other bins, wrong length)."""
    if not isinstance(reference, Mapping):
        return None
    bins, shares = reference.get("bins"), reference.get("shares")
    if not isinstance(bins, list) or not isinstance(shares, list) or len(shares) != len(SCORE_BINS) - 1:
        return None
    try:
        if len(bins) != len(SCORE_BINS) or any(abs(float(a) - b) > 1e-9 for a, b in zip(bins, SCORE_BINS, strict=True)):
            return None
    except (TypeError, ValueError):
        return None
    try:
        values = np.asarray(shares, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if not np.all(np.isfinite(values)) or values.sum() <= 0:
        return None
    return values / values.sum()


def psi(reference_shares: np.ndarray, live_counts: np.ndarray) -> float:
    """Population stability index of live bin counts against reference bin shares.

    Args:
        reference_shares: shares per bin (sum 1).
        live_counts: counts (or decayed counts) per bin.

    Returns:
        Σ (a − e) · ln(a / e), with both shares floored at :data:`PSI_FLOOR`.
    """
    total = float(np.sum(live_counts))
    if total <= 0:
        return 0.0
    actual = np.maximum(np.asarray(live_counts, dtype=np.float64) / total, PSI_FLOOR)
    expected = np.maximum(np.asarray(reference_shares, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def reference_of(defender: Any) -> dict[str, Any] | None:
    """The drift reference of a loaded defender: its ``score_reference`` attribute when it has one,
    else ``info["score_reference"]`` of the manifest in its ``model_dir``; None when neither exists."""
    explicit = getattr(defender, "score_reference", None)
    if explicit is not None:
        return explicit
    model_dir = getattr(defender, "model_dir", None)
    if model_dir is None:
        return None
    from content_arena.defender.artifacts import MANIFEST_FILE

    path = Path(model_dir) / MANIFEST_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8")).get("info") or {}
    except (OSError, ValueError):
        return None
    return info.get(REFERENCE_KEY)


def reference_for(defender: Defender, texts: Sequence[str]) -> dict[str, Any]:
    """The drift reference of a loaded defender: :func:`score_reference` of its scores on ``texts`` (its
    validation texts, raw: the defender normalises them)."""
    return score_reference(defender.scores(list(texts)))


def write_score_reference(model_dir: str | Path, texts: Sequence[str], *, batch_size: int = 64) -> dict[str, Any] | None:
    """Score ``texts`` (the model's validation texts, raw) with the model in ``model_dir`` and save the
    reference in its manifest (``info["score_reference"]``). The manifest is not among the files it
    checksums, so the weights' integrity record is unchanged.

    Args:
        model_dir: a saved defender directory.
        texts: validation texts as a user would send them (the defender normalises them).
        batch_size: scoring batch size.

    Returns:
        The reference written, or None (nothing written) when ``texts`` is empty.
    """
    from content_arena.defender import TransformerDefender
    from content_arena.defender.artifacts import MANIFEST_FILE

    if not texts:
        return None
    reference = reference_for(TransformerDefender(model_dir, batch_size=batch_size).load(), texts)
    path = Path(model_dir) / MANIFEST_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.setdefault("info", {})[REFERENCE_KEY] = reference
    path.write_text(json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    return reference


# ------------------------------------------------------------------------------------ one batch


@dataclass
class BatchSignals:
    """What one batch tells about the traffic, beside its scores: plain lists, made while preprocessing;
    :class:`LiveSignals` turns many batches into numbers at once."""

    lengths: list[int]  # characters per raw text
    kinds: list[int]  # normaliser kind mask per text (NORMALIZATION_KINDS bits)
    normalized_lengths: list[int]  # characters per normalised text
    words: int = 0
    unknown_words: int = 0


def prepare(defender: Defender, texts: Sequence[str]) -> tuple[list[str], BatchSignals]:
    """The texts the model reads (as :meth:`Defender.preprocess` makes them) and the batch's signals.

    Normalisation runs once, through :func:`normalize_many_with_kinds`; a defender that overrides
    ``preprocess`` keeps its own preprocessing and the kinds are computed beside it.
    """
    normalized, masks = normalize_many_with_kinds(texts)
    recognizer = getattr(defender, "recognizer", None)
    words = unknown = 0
    if recognizer is not None:
        # A spread sample of at most WORD_SAMPLE texts per batch: the unknown-word *rate* is the signal, and
        # counting every word of a full batch costs more than the rest of the signals together.
        step = -(-len(normalized) // WORD_SAMPLE)
        tokens = " ".join(normalized[::step]).split()
        words = len(tokens)
        unknown = words - sum(map(recognizer.counts.__contains__, tokens))
    if type(defender).preprocess is BaseDefender.preprocess:
        prepared = normalized if recognizer is None else recognizer.many(normalized)
    else:
        prepared = defender.preprocess(texts)
    return prepared, BatchSignals(list(map(len, texts)), masks, list(map(len, normalized)), words, unknown)


def score_with_signals(defender: Defender, texts: Sequence[str]) -> tuple[np.ndarray, BatchSignals]:
    """``defender.scores(texts)`` (calibrated, as the defender's own ``scores``) with the batch's signals,
    for the same preprocessing work.

    Raises:
        DefenderNotReady: the defender is not loaded.
    """
    if not defender.ready:
        raise DefenderNotReady(f"defender {defender.name!r} is not loaded")
    if len(texts) == 0:
        return np.zeros(0, dtype=np.float32), BatchSignals([], [], [])
    lock = getattr(defender, "_lock", None) or contextlib.nullcontext()
    with lock:
        prepared, signals = prepare(defender, texts)
        scores = defender.calibrate(defender.predict(prepared))
    return np.asarray(scores, dtype=np.float32), signals


# ------------------------------------------------------------------------------ accumulators

WORD_SAMPLE = 8
# Batches are queued as they come (their per-text signals extend flat lists) and added up, vectorised
# over all of them, at each scrape or once this many texts wait: the classify path pays for a few list
# extends, not for a dozen small numpy calls per batch.
DRAIN_TEXTS = 4096
# Row m: which kinds mask m holds (0/1 per kind).
_MASK_BITS = np.array([[m >> i & 1 for i in range(len(KINDS))] for m in range(1 << len(KINDS))], dtype=np.float64)


@dataclass
class _Version:
    reference: np.ndarray | None
    texts: float = 0.0
    flagged: float = 0.0
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(len(KINDS), dtype=np.float64))
    any_changed: float = 0.0
    words: float = 0.0
    unknown_words: float = 0.0
    length_buckets: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_BUCKETS) + 1, dtype=np.float64))
    length_sum: float = 0.0
    score_bins: np.ndarray = field(default_factory=lambda: np.zeros(len(SCORE_BINS) - 1, dtype=np.float64))
    score_sum: float = 0.0
    window: np.ndarray = field(default_factory=lambda: np.zeros(len(SCORE_BINS) - 1, dtype=np.float64))
    window_texts: float = 0.0


class _Pending:
    """The batches of one version queued since the last drain, as flat lists: the classify path extends
    them (C-level list work, no per-text Python) and the drain turns each into one array."""

    __slots__ = ("scores", "sizes", "thresholds", "kinds", "lengths", "normalized_lengths", "words",
                 "unknown_words", "texts")

    def __init__(self, keep_texts: bool) -> None:
        self.scores: list[np.ndarray] = []
        self.sizes: list[int] = []
        self.thresholds: list[float] = []
        self.kinds: list[int] = []
        self.lengths: list[int] = []
        self.normalized_lengths: list[int] = []
        self.words = 0
        self.unknown_words = 0
        # The raw texts, while every batch came with them (a review hook picks from them at the drain).
        self.texts: list[str] | None = [] if keep_texts else None


@dataclass
class DrainedBlock:
    """The batches of one model version added up together: what a review hook picks texts from."""

    version: str
    texts: list[str]
    scores: np.ndarray
    thresholds: np.ndarray
    kinds: np.ndarray
    lengths: np.ndarray
    normalized_lengths: np.ndarray


class LiveSignals:
    """Per-model-version accumulators of the live signals, and the Prometheus collector over them.

    :meth:`observe` is called once per batch and only queues it; the queued batches are added up together
    (numpy, no per-text Python) at each scrape (:meth:`collect`) or every :data:`DRAIN_TEXTS` texts.
    Register an instance in a ``CollectorRegistry``.
    """

    def __init__(self, *, drift_window: int = 5000, drift_min_texts: int = 200) -> None:
        self.decay = 1.0 - 1.0 / max(2, int(drift_window))
        self.drift_min_texts = int(drift_min_texts)
        self._versions: OrderedDict[str, _Version] = OrderedDict()
        self._pending: dict[str, _Pending] = {}
        self._pending_texts = 0
        self._lock = threading.Lock()
        # Called with each drained block whose batches came with their texts (LiveMonitor's review sampling).
        self.review: Callable[[DrainedBlock], None] | None = None

    def observe(self, version: str | None, scores: np.ndarray, threshold: float, signals: BatchSignals,
                reference: Any = None, texts: Sequence[str] | None = None) -> None:
        """Add one scored batch.

        Args:
            version: the model version that scored it (``"unknown"`` when None).
            scores: toxic scores, one per text.
            threshold: the decision threshold (flagged: score >= threshold).
            signals: the batch's signals from :func:`prepare`.
            reference: the model's score reference, read the first time a version is seen.
            texts: the raw texts, kept until the next drain for the review hook (not copied).
        """
        n = len(scores)
        if n == 0:
            return
        key = str(version) if version is not None else "unknown"
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                if key not in self._versions:
                    self._versions[key] = _Version(reference=check_reference(reference))
                    while len(self._versions) > MAX_VERSIONS:
                        dropped, _ = self._versions.popitem(last=False)
                        self._pending.pop(dropped, None)
                pending = self._pending[key] = _Pending(self.review is not None)
            pending.scores.append(scores)
            pending.sizes.append(n)
            pending.thresholds.append(threshold)
            pending.kinds.extend(signals.kinds)
            pending.lengths.extend(signals.lengths)
            pending.words += signals.words
            pending.unknown_words += signals.unknown_words
            if pending.texts is not None:
                if texts is None:
                    pending.texts = None
                else:
                    pending.normalized_lengths.extend(signals.normalized_lengths)
                    pending.texts.extend(texts)
            self._pending_texts += n
            if self._pending_texts >= DRAIN_TEXTS:
                self._drain()

    def _drain(self) -> None:
        """Add every queued batch to its version's accumulators (caller holds the lock)."""
        for key, pending in self._pending.items():
            state = self._versions.get(key)
            if state is None or not pending.sizes:
                continue
            self._versions.move_to_end(key)
            scores = np.concatenate(pending.scores).astype(np.float64, copy=False)
            n = len(scores)
            thresholds = np.repeat(np.asarray(pending.thresholds, dtype=np.float64), pending.sizes)
            kinds = np.array(pending.kinds, dtype=np.uint8)
            lengths = np.array(pending.lengths, dtype=np.int64)
            masks = np.bincount(kinds, minlength=len(_MASK_BITS))  # texts per kind mask, then per kind
            bins = score_bin_index(scores)
            state.texts += n
            state.flagged += float(np.count_nonzero(scores >= thresholds))
            state.kinds += masks @ _MASK_BITS
            state.any_changed += float(n - masks[0])
            state.words += pending.words
            state.unknown_words += pending.unknown_words
            state.length_buckets += np.bincount(np.searchsorted(np.asarray(LENGTH_BUCKETS), lengths, side="left"),
                                                minlength=len(LENGTH_BUCKETS) + 1)
            state.length_sum += float(lengths.sum())
            state.score_bins += np.bincount(bins, minlength=len(SCORE_BINS) - 1)
            state.score_sum += float(scores.sum())
            # Each text weighs decay ** (texts scored after it): the window as if fed one text at a time.
            weights = self.decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
            state.window = state.window * self.decay ** n + np.bincount(bins, weights=weights,
                                                                         minlength=len(SCORE_BINS) - 1)
            state.window_texts = state.window_texts * self.decay ** n + float(weights.sum())
            if self.review is not None and pending.texts is not None:
                normalized = np.array(pending.normalized_lengths, dtype=np.int64)
                try:
                    self.review(DrainedBlock(key, pending.texts, scores, thresholds, kinds, lengths, normalized))
                except Exception:
                    log.exception("picking review samples failed")
        self._pending.clear()
        self._pending_texts = 0

    def psi(self, version: str) -> float | None:
        """The current PSI of ``version`` against its reference; None without a reference or enough texts."""
        with self._lock:
            self._drain()
            state = self._versions.get(str(version))
            if state is None or state.reference is None or state.texts < self.drift_min_texts:
                return None
            return psi(state.reference, state.window)

    def snapshot(self, version: str) -> dict[str, Any] | None:
        """Totals of one version (for tests, logs and the bench)."""
        with self._lock:
            self._drain()
            state = self._versions.get(str(version))
            if state is None:
                return None
            return {"texts": state.texts, "flagged": state.flagged, "any_changed": state.any_changed,
                    "kinds": dict(zip(KINDS, state.kinds.tolist(), strict=True)), "words": state.words,
                    "unknown_words": state.unknown_words}

    def describe(self) -> Iterable[Any]:
        return list(self._families({}))

    def collect(self) -> Iterator[Any]:
        with self._lock:
            self._drain()
            states = {version: _copy(state) for version, state in self._versions.items()}
        yield from self._families(states)

    def _families(self, states: Mapping[str, _Version]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        label = ["model_version"]
        texts = CounterMetricFamily("arena_live_texts", "Texts classified on live traffic.", labels=label)
        flagged = CounterMetricFamily("arena_live_flagged", "Live texts at or above the model's threshold.",
                                      labels=label)
        normalized = CounterMetricFamily(
            "arena_live_normalized", "Live texts the normaliser changed, by kind of change (any: at least one).",
            labels=[*label, "kind"])
        words = CounterMetricFamily("arena_live_words", "Words in live texts after normalisation.", labels=label)
        unknown = CounterMetricFamily(
            "arena_live_unknown_words", "Live words the champion's word recogniser does not know.", labels=label)
        lengths = HistogramMetricFamily("arena_live_text_length_chars", "Length of live texts in characters.",
                                        labels=label)
        scores = HistogramMetricFamily("arena_live_score", "Toxic scores of live texts.", labels=label)
        drift = GaugeMetricFamily(
            "arena_live_score_psi",
            "PSI of the latest live scores against the model's validation scores (absent without a reference).",
            labels=label)
        window = GaugeMetricFamily("arena_live_score_window_texts",
                                   "Texts in the decayed window the PSI is computed over.", labels=label)
        for version, state in states.items():
            texts.add_metric([version], state.texts)
            flagged.add_metric([version], state.flagged)
            for kind, count in zip(KINDS, state.kinds.tolist(), strict=True):
                normalized.add_metric([version, kind], count)
            normalized.add_metric([version, "any"], state.any_changed)
            words.add_metric([version], state.words)
            unknown.add_metric([version], state.unknown_words)
            lengths.add_metric([version], _cumulative(LENGTH_BUCKETS, state.length_buckets), state.length_sum)
            scores.add_metric([version], _cumulative(SCORE_BINS[1:-1], state.score_bins), state.score_sum)
            window.add_metric([version], state.window_texts)
            if state.reference is not None and state.texts >= self.drift_min_texts:
                drift.add_metric([version], psi(state.reference, state.window))
        yield from (texts, flagged, normalized, words, unknown, lengths, scores, drift, window)


def _copy(state: _Version) -> _Version:
    return _Version(
        reference=state.reference, texts=state.texts, flagged=state.flagged, kinds=state.kinds.copy(),
        any_changed=state.any_changed, words=state.words, unknown_words=state.unknown_words,
        length_buckets=state.length_buckets.copy(), length_sum=state.length_sum, score_bins=state.score_bins.copy(),
        score_sum=state.score_sum, window=state.window.copy(), window_texts=state.window_texts,
    )


def _cumulative(bounds: Sequence[float], counts: np.ndarray) -> list[tuple[str, float]]:
    """Prometheus histogram buckets (cumulative, ``+Inf`` last) from per-bucket counts; ``counts`` has
    one more entry than ``bounds`` (the overflow)."""
    running = np.cumsum(counts)
    buckets = [(_bound(b), float(running[i])) for i, b in enumerate(bounds)]
    buckets.append(("+Inf", float(running[-1])))
    return buckets


def _bound(value: float) -> str:
    return str(float(value))


# ------------------------------------------------------------------------------- the monitor

_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << len(KINDS))], dtype=np.int64)


@dataclass
class ReviewCandidate:
    """A live text picked for review: why, with what score and which kinds of normalisation."""

    text: str
    score: float
    threshold: float
    model_version: str | None
    reason: str  # "near_threshold" | "heavily_normalized"
    kinds: list[str]


class LiveMonitor:
    """The classify path's monitoring: scores a batch with its signals and adds them to :class:`LiveSignals`;
    when the batches are added up, offers texts worth a person's review to ``on_candidates``
    (rate-limited here, stored elsewhere)."""

    def __init__(self, cfg: MonitoringConfig, signals: LiveSignals | None = None,
                 on_candidates: Callable[[list[ReviewCandidate]], None] | None = None) -> None:
        self.cfg = cfg
        self.signals = signals or LiveSignals(drift_window=cfg.drift_window, drift_min_texts=cfg.drift_min_texts)
        self.on_candidates = on_candidates
        self._references: dict[tuple[int, str | None], Any] = {}
        self._bucket = _TokenBucket(cfg.review_per_minute)
        if on_candidates is not None and cfg.review_sampling and cfg.review_per_minute > 0:
            self.signals.review = self._review

    def score(self, defender: Defender, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts`` (as ``defender.scores``), with the batch's signals recorded."""
        scores, signals = score_with_signals(defender, texts)
        self.record(defender, texts, scores, signals)
        return scores

    def record(self, defender: Defender, texts: Sequence[str], scores: np.ndarray, signals: BatchSignals) -> None:
        """Add a scored batch to the signals (its texts too, for review sampling at the next drain). Never
        raises: monitoring must not fail a classification."""
        try:
            self.signals.observe(defender.version, scores, defender.threshold, signals, self._reference(defender),
                                 texts=texts if self.signals.review is not None else None)
        except Exception:
            log.exception("live monitoring of a batch failed; the batch was classified")

    def _review(self, block: DrainedBlock) -> None:
        if self.on_candidates is None or not self._bucket.ready():
            return
        picked = self.candidates(block)
        if picked:
            self.on_candidates(picked)

    def candidates(self, block: DrainedBlock) -> list[ReviewCandidate]:
        """Texts within ``review_band`` of the threshold, or changed by the normaliser in at least
        ``review_min_kinds`` ways (or by a fifth of their length), as many as the rate limit allows,
        spread over the block."""
        near = np.abs(block.scores - block.thresholds) <= self.cfg.review_band
        changed = np.abs(block.lengths - block.normalized_lengths)
        heavy = (_POPCOUNT[block.kinds] >= self.cfg.review_min_kinds) | ((changed >= 3) & (changed * 5 >= block.lengths))
        chosen = np.flatnonzero(near | heavy)
        if chosen.size == 0:
            return []
        allowed = self._bucket.take(int(chosen.size))
        if allowed <= 0:
            return []
        if allowed < chosen.size:
            chosen = chosen[np.linspace(0, chosen.size - 1, allowed).round().astype(np.int64)]
        out = []
        for index in chosen.tolist():
            mask = int(block.kinds[index])
            out.append(ReviewCandidate(
                text=block.texts[index], score=float(block.scores[index]), threshold=float(block.thresholds[index]),
                model_version=block.version, reason="near_threshold" if near[index] else "heavily_normalized",
                kinds=[kind for i, kind in enumerate(KINDS) if mask >> i & 1],
            ))
        return out

    def _reference(self, defender: Defender) -> Any:
        key = (id(defender), defender.version)
        if key not in self._references:
            if len(self._references) > MAX_VERSIONS:
                self._references.clear()
            self._references[key] = reference_of(defender)
        return self._references[key]


class _TokenBucket:
    """At most ``per_minute`` takes a minute, refilled continuously (capacity: one minute's worth)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.last = time.monotonic()
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """Whether a take would get anything (no lock: a stale answer costs one wasted or skipped pick)."""
        return self.tokens + (time.monotonic() - self.last) * self.rate >= 1.0

    def take(self, wanted: int) -> int:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            granted = min(int(self.tokens), wanted)
            self.tokens -= granted
            return granted


# ---------------------------------------------------------------------- shared keys and events

DETECTION_RATE_CURRENT = "metrics:detection_rate:current"
DETECTION_RATE_HISTORY = "metrics:detection_rate:history"
CHAMPION_PATH = "model:champion:path"
CHAMPION_F1 = "model:champion:f1"
BATTLE_COMPLETED = "battle_completed"
HISTORY_LENGTH = 1000


class StateKeys:
    """The design's keys and events on a queue backend (Redis, or the in-process backend).

    * ``metrics:detection_rate:current``: JSON ``{model_version, detection_rate, battle_id, at}`` of the
      newest finished battle against the served champion (detection rate = 1 − evasion rate);
    * ``metrics:detection_rate:history``: a list of the same entries, one per finished battle, every model
      version (newest last, at most 1000);
    * ``model:champion:path`` / ``model:champion:f1``: the served champion's model URI and recorded F1;
    * ``battle_completed`` (pub/sub channel): ``{battle_id, model_version, status, rounds, evasion_rate,
      detection_rate, per_strategy: {strategy: evasion_rate}, at}`` when a battle ends.
    """

    def __init__(self, backend: QueueBackend) -> None:
        self.backend = backend

    def battle_finished(self, summary: Mapping[str, Any], model_version: str | None, *,
                        champion_version: str | None = None) -> dict[str, Any]:
        """Publish ``battle_completed`` and append to the detection-rate history; the current rate is
        replaced when the battle was against ``champion_version`` (or no champion is named).

        Args:
            summary: a battle summary (``BattleSummary.to_dict()``: battle_id, status, rounds, evasion_rate,
                per_strategy {strategy: {rounds, evaded, evasion_rate}}).
            model_version: the version the battle attacked.
            champion_version: the served champion's version.

        Returns:
            The event published.
        """
        evasion = float(summary.get("evasion_rate") or 0.0)
        per_strategy = {
            str(name): float(entry["evasion_rate"] if isinstance(entry, Mapping) else entry)
            for name, entry in (summary.get("per_strategy") or {}).items()
        }
        event = {
            "battle_id": summary.get("battle_id"), "model_version": model_version, "status": summary.get("status"),
            "rounds": int(summary.get("rounds") or 0), "evasion_rate": evasion, "detection_rate": 1.0 - evasion,
            "per_strategy": per_strategy, "at": time.time(),
        }
        entry = {k: event[k] for k in ("model_version", "detection_rate", "battle_id", "at")}
        if event["rounds"] > 0:
            self.backend.push_history(DETECTION_RATE_HISTORY, entry, HISTORY_LENGTH)
            if champion_version is None or str(champion_version) == str(model_version):
                self.backend.set_value(DETECTION_RATE_CURRENT, json.dumps(entry))
        self.backend.publish(BATTLE_COMPLETED, event)
        return event

    def champion_changed(self, path: str | None, f1: float | None) -> None:
        """Record the served champion's location and F1 (an absent F1 deletes the key)."""
        if path is not None:
            self.backend.set_value(CHAMPION_PATH, path)
        if f1 is None:
            self.backend.delete_value(CHAMPION_F1)
        else:
            self.backend.set_value(CHAMPION_F1, repr(float(f1)))

    def current_detection_rate(self) -> dict[str, Any] | None:
        raw = self.backend.get_value(DETECTION_RATE_CURRENT)
        return None if raw is None else json.loads(raw)

    def detection_rate_history(self, model_version: str | None = None) -> list[dict[str, Any]]:
        """Entries oldest first; only ``model_version``'s when given."""
        entries = self.backend.history(DETECTION_RATE_HISTORY)
        if model_version is None:
            return entries
        return [e for e in entries if str(e.get("model_version")) == str(model_version)]


# The backend an API process (or ``arena worker``) lends to the pipeline runs it executes, for this thread.
_SHARED_BACKEND: ContextVar[QueueBackend | None] = ContextVar("arena_shared_backend", default=None)


@contextlib.contextmanager
def sharing(backend: QueueBackend) -> Iterator[None]:
    """Within the block (in this thread), :func:`state_keys` writes to ``backend``: the API runs its pipeline
    runs inside it, so their battles and promotions reach the API's own queue, in-process or Redis, with
    its key prefix."""
    token = _SHARED_BACKEND.set(backend)
    try:
        yield
    finally:
        _SHARED_BACKEND.reset(token)


def _open_backend(url: str) -> QueueBackend:
    from content_arena.queue import open_queue

    return open_queue(url)


@contextlib.contextmanager
def state_keys(cfg: ArenaConfig) -> Iterator[StateKeys | None]:
    """The keys and events for code that runs outside the API (the loop and its steps, ``arena battle``,
    the KFP steps).

    The backend of an enclosing :func:`sharing` block when there is one; else the Redis queue of
    ``queue.url``, opened for the block and closed after it (keys change once per battle or promotion,
    so a connection is not worth keeping); else None: the in-process queue of a process that is not the
    API has no other reader, so there is nothing to keep current.
    """
    shared = _SHARED_BACKEND.get()
    if shared is not None:
        yield StateKeys(shared)
        return
    url = cfg.queue.url
    if not url or url.startswith("memory://"):
        yield None
        return
    backend = _open_backend(url)
    try:
        yield StateKeys(backend)
    finally:
        backend.close()


def champion_f1(metrics: Mapping[str, Any]) -> float | None:
    """The F1 ``model:champion:f1`` records: a model's clean test F1, else its validation F1."""
    return finite(metrics.get("clean_f1", metrics.get("val_f1")))


def safely(action: Callable[[], Any], what: str) -> Any:
    """Run ``action``; a failure is logged, never raised (keys and events are a convenience, the store is
    the record)."""
    try:
        return action()
    except Exception as exc:
        log.warning("could not %s: %s", what, f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        return None


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
