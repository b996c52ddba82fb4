"""Prometheus counters of the model server, by Knative revision (``K_REVISION``).

KServe's model server exposes the default registry at ``/metrics``; the canary judge
(:mod:`content_arena.rollout.prometheus`) compares the canary revision with the champion revision
on these series. The live-traffic signals (``arena_live_*``, by model version) are the same
collector the API exports, registered here once per process (:func:`live_signals`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter

from content_arena.monitoring import LiveSignals

REQUESTS = Counter(
    "content_arena_defender_requests",
    "Inference requests answered by the defender, by outcome (ok, error, invalid).",
    ["model_name", "revision", "outcome"],
)
TEXTS = Counter(
    "content_arena_defender_texts",
    "Texts classified by the defender, by verdict (toxic, clean).",
    ["model_name", "revision", "verdict"],
)


OUTCOMES = ("ok", "error", "invalid")
VERDICTS = ("toxic", "clean")


@dataclass(frozen=True)
class ServerSeries:
    """The counters of one model name and revision, each label set resolved once (``.labels()`` takes a
    lock and a dict lookup: the request path increments the children directly)."""

    requests: dict[str, Any]  # outcome -> Counter child
    texts: dict[str, Any]  # verdict -> Counter child


def initialise(model_name: str, revision: str) -> ServerSeries:
    """Create every series at 0, so a rate over an outcome that has not happened yet is 0, not absent;
    returns them for the request path."""
    return ServerSeries(
        requests={outcome: REQUESTS.labels(model_name, revision, outcome) for outcome in OUTCOMES},
        texts={verdict: TEXTS.labels(model_name, revision, verdict) for verdict in VERDICTS},
    )


_live: LiveSignals | None = None
_live_lock = threading.Lock()


def live_signals(drift_window: int = 5000, drift_min_texts: int = 200) -> LiveSignals:
    """The process's live-traffic signals (``arena_live_*``, see :mod:`content_arena.monitoring`),
    registered in the default registry on first use; later calls return the same collector."""
    global _live
    with _live_lock:
        if _live is None:
            _live = LiveSignals(drift_window=drift_window, drift_min_texts=drift_min_texts)
            REGISTRY.register(_live)
        return _live
