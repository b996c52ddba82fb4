"""Live texts kept for a person to review, and the labelled ones as training data.

The classify path offers texts whose score is near the threshold, or that the normaliser changed
heavily (:class:`~content_arena.monitoring.LiveMonitor`), at most ``monitoring.review_per_minute`` a
minute per process. :class:`ReviewSampler` writes them from a background thread (never in the request)
into the ``live_samples`` table: text, score, threshold, model version, why it was picked and which
kinds of normalisation it needed. Logs at INFO never show the text, only a hash prefix and its length.
Unlabelled samples older than ``monitoring.review_retention_days`` are deleted.

``arena review`` lists them and labels them (0 clean, 1 toxic). A labelled sample is also added to
``training_data`` with ``source="live"``; :func:`with_reviewed` puts those into the next challenger's
training set.

The table is a side table of the store (:mod:`content_arena.store.side_tables`), as the service's
``pipeline_runs`` is.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from content_arena.data import Example
from content_arena.monitoring import ReviewCandidate
from content_arena.store import Store
from content_arena.store.models import utc_now
from content_arena.store.records import Record
from content_arena.store.side_tables import SideTable, live_samples

log = logging.getLogger(__name__)

LIVE_SOURCE = "live"
REVIEW_STATUSES = ("pending", "labelled", "all")
MAX_WAITING = 1000  # candidates waiting for the writer thread; more are dropped (and counted)

@dataclass(frozen=True)
class LiveSample(Record):
    id: int
    text: str
    text_hash: str
    score: float
    threshold: float
    model_version: str | None
    reason: str
    kinds: list[str]
    label: int | None
    labelled_by: str | None
    created_at: datetime
    labelled_at: datetime | None


def sample_hash(text: str) -> str:
    """The identity of a sample, as training data identifies its texts (sha256 of the normalised text)."""
    from content_arena.sample_collector import text_hash

    return text_hash(text)


def masked(text: str) -> str:
    """What a log line at INFO may show of a user's text: a hash prefix and the length."""
    return f"sha256:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:12]} ({len(text)} chars)"


class LiveSampleStore(SideTable):
    """The ``live_samples`` table on a store's database; every call is one transaction."""

    table = live_samples

    def add(self, candidates: Sequence[ReviewCandidate]) -> int:
        """Store candidates, skipping texts already kept (same normalised text); returns how many were new."""
        rows: dict[str, dict[str, Any]] = {}
        now = utc_now()
        for c in candidates:
            digest = sample_hash(c.text)
            rows.setdefault(digest, {
                "text": c.text, "text_hash": digest, "score": float(c.score), "threshold": float(c.threshold),
                "model_version": c.model_version, "reason": c.reason, "kinds": list(c.kinds), "created_at": now,
            })
        if not rows:
            return 0
        statement = self._insert().on_conflict_do_nothing(index_elements=["text_hash"]).returning(live_samples.c.id)
        with self._transaction() as connection:
            return len(connection.execute(statement, list(rows.values())).all())

    def list(self, *, status: str = "pending", limit: int = 50, offset: int = 0) -> list[LiveSample]:
        """Samples, oldest first: ``pending`` (unlabelled), ``labelled`` or ``all``."""
        if status not in REVIEW_STATUSES:
            raise ValueError(f"status must be one of {', '.join(REVIEW_STATUSES)}, not {status!r}")
        query = select(live_samples).order_by(live_samples.c.id)
        if status == "pending":
            query = query.where(live_samples.c.label.is_(None))
        elif status == "labelled":
            query = query.where(live_samples.c.label.is_not(None))
        with self._transaction() as connection:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
        return [LiveSample.from_row(row) for row in rows]

    def get(self, sample_id: int) -> LiveSample | None:
        with self._transaction() as connection:
            row = connection.execute(select(live_samples).where(live_samples.c.id == sample_id)).first()
        return None if row is None else LiveSample.from_row(row)

    def label(self, sample_id: int, label: int, *, by: str) -> LiveSample:
        """Label a sample (0 clean, 1 toxic) and add it to ``training_data`` as ``source="live"``.

        Raises:
            ValueError: an unknown id, or a label other than 0 or 1.
        """
        if label not in (0, 1):
            raise ValueError(f"a label is 0 (clean) or 1 (toxic), not {label!r}")
        sample = self.get(sample_id)
        if sample is None:
            raise ValueError(f"no live sample {sample_id}")
        with self._transaction() as connection:
            connection.execute(update(live_samples).where(live_samples.c.id == sample_id).values(
                label=label, labelled_by=by[:64], labelled_at=utc_now()))
        self.store.add_training_samples(
            [{"text": sample.text, "label": label, "source": LIVE_SOURCE, "text_hash": sample.text_hash}])
        log.info("live sample %d labelled %d by %s", sample_id, label, by)
        labelled = self.get(sample_id)
        assert labelled is not None
        return labelled

    def purge(self, retention_days: int) -> int:
        """Delete unlabelled samples older than ``retention_days``; returns how many."""
        cutoff = utc_now() - timedelta(days=retention_days)
        statement = delete(live_samples).where(live_samples.c.label.is_(None), live_samples.c.created_at < cutoff)
        with self._transaction() as connection:
            return int(connection.execute(statement).rowcount or 0)

    def count(self, status: str = "pending") -> int:
        return len(self.list(status=status, limit=1_000_000))


class ReviewSampler:
    """Takes review candidates from the classify path without blocking it, and stores them from a thread."""

    def __init__(self, samples: LiveSampleStore, *, retention_days: int, flush_interval_s: float = 1.0,
                 purge_interval_s: float = 3600.0) -> None:
        self.samples = samples
        self.retention_days = retention_days
        self.flush_interval_s = flush_interval_s
        self.purge_interval_s = purge_interval_s
        self.dropped = 0
        self._waiting: collections.deque[ReviewCandidate] = collections.deque()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def offer(self, candidates: Sequence[ReviewCandidate]) -> None:
        """Queue candidates for the writer (non-blocking); beyond :data:`MAX_WAITING` they are dropped."""
        with self._guard:
            room = MAX_WAITING - len(self._waiting)
            self._waiting.extend(candidates[: max(room, 0)])
            self.dropped += max(len(candidates) - max(room, 0), 0)

    def start(self) -> ReviewSampler:
        self._thread = threading.Thread(target=self._run, name="review-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def flush(self) -> int:
        """Write what is waiting; returns how many new samples were stored."""
        with self._guard:
            batch = list(self._waiting)
            self._waiting.clear()
        if not batch:
            return 0
        try:
            stored = self.samples.add(batch)
        except Exception as exc:
            log.warning("could not store %d review samples: %s", len(batch), f"{type(exc).__name__}: {exc}"[:300])
            return 0
        for candidate in batch[:5]:
            log.info("review sample kept: %s, score %.3f, %s", masked(candidate.text), candidate.score,
                     candidate.reason)
            log.debug("review sample text: %r", candidate.text)
        return stored

    def _run(self) -> None:
        last_purge = 0.0
        import time

        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self.flush()
            if time.monotonic() - last_purge >= self.purge_interval_s:
                last_purge = time.monotonic()
                try:
                    removed = self.samples.purge(self.retention_days)
                    if removed:
                        log.info("deleted %d unlabelled review samples older than %d days", removed,
                                 self.retention_days)
                except Exception as exc:
                    log.warning("could not purge review samples: %s", f"{type(exc).__name__}: {exc}"[:300])


def reviewed_examples(store: Store) -> list[Example]:
    """The labelled live samples (``training_data`` with ``source="live"``) as training examples."""
    return [Example(text=s.text, label=s.label, source=LIVE_SOURCE) for s in store.list_training_samples(source=LIVE_SOURCE)]


def with_reviewed(examples: Sequence[Example], store: Store) -> list[Example]:
    """``examples`` plus every labelled live sample not already among them (by text): what a person
    labelled from live traffic joins the next challenger's training set.

    Args:
        examples: the challenger's training set.
        store: the store holding ``training_data``.

    Returns:
        A new list, the reviewed examples last.
    """
    have = {e.text for e in examples}
    extra = [e for e in reviewed_examples(store) if e.text not in have]
    if extra:
        log.info("%d reviewed live samples join the challenger's training set", len(extra))
    return [*examples, *extra]
