"""Prometheus metrics of one app, in their own registry (tests stay isolated, two apps never clash).

The gauges ``arena_evasion_rate`` and ``arena_defender_f1`` are set from the store's quality report
each time ``/api/v1/metrics`` is scraped, so they are right whichever process did the work; the
counters and histograms count what happened in this process. The live-traffic signals
(``arena_live_*``, :mod:`content_arena.monitoring`) are a collector registered beside them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from content_arena.monitoring import LiveSignals

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TRAINING_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class ArenaMetrics:
    def __init__(self, live: LiveSignals | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = live
        if live is not None:
            self.registry.register(live)
        self.alerts = Counter(
            "arena_alerts_received_total", "Alertmanager notifications received, by alert name and status.",
            ["alertname", "status"], registry=self.registry,
        )
        self.alert_actions = Counter(
            "arena_alert_actions_total",
            "What received alerts led to (pipeline_queued, pipeline_busy, pipeline_disabled, recorded).",
            ["action"], registry=self.registry,
        )
        self.rounds = Counter(
            "arena_rounds_total", "Attack rounds played, by strategy and outcome (evaded|detected).",
            ["strategy", "outcome"], registry=self.registry,
        )
        self.evasion_rate = Gauge(
            "arena_evasion_rate", "Share of attacked toxic texts the defender let through.",
            ["strategy", "model_version"], registry=self.registry,
        )
        self.defender_f1 = Gauge(
            "arena_defender_f1", "Clean F1 of a defender version on the evaluation set.",
            ["model_version"], registry=self.registry,
        )
        self.pipeline_runs = Counter(
            "arena_pipeline_runs_total", "Pipeline runs by outcome (pass|promote|reject|failed).",
            ["decision"], registry=self.registry,
        )
        self.training_seconds = Histogram(
            "arena_training_seconds", "Duration of pipeline runs that trained a challenger.",
            buckets=TRAINING_BUCKETS, registry=self.registry,
        )
        self.http_duration = Histogram(
            "arena_http_request_duration_seconds", "HTTP request duration by method, route template and status.",
            ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=self.registry,
        )
        self.classify_batch_size = Histogram(
            "arena_classify_batch_size", "Texts per defender call made by the classify micro-batcher.",
            buckets=BATCH_BUCKETS, registry=self.registry,
        )

    def count_rounds(self, rounds: list[dict[str, Any]]) -> None:
        for row in rounds:
            outcome = "evaded" if row.get("evaded") else "detected"
            self.rounds.labels(strategy=str(row.get("strategy")), outcome=outcome).inc()

    def record_pipeline(self, summary: dict[str, Any] | None, seconds: float) -> None:
        decision = pipeline_decision(summary)
        self.pipeline_runs.labels(decision=decision).inc()
        if summary is not None and summary.get("challenger") is not None:
            self.training_seconds.observe(seconds)

    def set_quality(self, report: dict[str, Any]) -> None:
        """Set the gauges from a quality report (see :mod:`content_arena.service.quality`)."""
        for model in report.get("models", []):
            version = str(model["version"])
            if model.get("f1") is not None:
                self.defender_f1.labels(model_version=version).set(model["f1"])
            for strategy, rate in (model.get("per_strategy") or {}).items():
                self.evasion_rate.labels(strategy=strategy, model_version=version).set(rate)
        for version, per_strategy in latest_battle_rates(report).items():
            for strategy, rate in per_strategy.items():
                self.evasion_rate.labels(strategy=strategy, model_version=version).set(rate)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def pipeline_decision(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "failed"
    if summary.get("challenger") is None:
        return "pass"
    return "promote" if summary.get("promoted") else "reject"


def latest_battle_rates(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per model version, the per-strategy evasion of its newest battle, for versions that have no
    held-out evaluation recorded in model_metadata."""
    evaluated = {str(m["version"]) for m in report.get("models", []) if m.get("per_strategy")}
    latest: dict[str, dict[str, float]] = {}
    for battle in report.get("battles", []):  # oldest first: later battles overwrite
        version = battle.get("model_version")
        if version is None or version in evaluated:
            continue
        latest[version] = {name: entry["evasion_rate"] for name, entry in battle["per_strategy"].items()}
    return latest
