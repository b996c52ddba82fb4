"""Prometheus counters of the model server, by Knative revision (``K_REVISION``).

KServe's model server exposes the default registry at ``/metrics``; the canary judge
(:mod:`content_arena.rollout.prometheus`) compares the canary revision with the champion revision
on these series.
"""

from __future__ import annotations

from prometheus_client import Counter

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


def initialise(model_name: str, revision: str) -> None:
    """Create every series at 0, so a rate over an outcome that has not happened yet is 0, not absent."""
    for outcome in ("ok", "error", "invalid"):
        REQUESTS.labels(model_name, revision, outcome)
    for verdict in ("toxic", "clean"):
        TEXTS.labels(model_name, revision, verdict)
