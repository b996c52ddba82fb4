"""Judging a canary on live metrics through the Prometheus HTTP API (``GET /api/v1/query``).

The defender's model server (:mod:`content_arena.serving`) counts requests by outcome and texts by
verdict, labelled with the Knative revision that served them (``K_REVISION``):

* ``content_arena_defender_requests_total{model_name, revision, outcome="ok"|"error"|"invalid"}``
* ``content_arena_defender_texts_total{model_name, revision, verdict="toxic"|"clean"}``

The canary is healthy when, over the observation window, its error rate (``error`` among all
requests it answered) is at most ``max_error_rate`` and its toxic rate differs from the champion
revision's by at most ``max_toxic_rate_drift``. Anything that prevents judging — Prometheus
unreachable or answering an error, no traffic on the canary or the champion — is a failed verdict
with the reason spelled out: a rollout is never promoted on missing evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

REQUESTS_METRIC = "content_arena_defender_requests_total"
TEXTS_METRIC = "content_arena_defender_texts_total"
MIN_WINDOW_S = 60  # rate() needs at least two scrapes in its window


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or did not answer the query."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusClient:
    """Instant queries against one Prometheus server."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = client

    def query(self, promql: str) -> list[Sample]:
        """The samples of an instant query (a vector, or one scalar as a single sample)."""
        url = f"{self.base_url}/api/v1/query"
        try:
            if self._client is not None:
                response = self._client.get(url, params={"query": promql}, timeout=self.timeout_s)
            else:
                response = httpx.get(url, params={"query": promql}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus at {self.base_url} is unreachable: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self.base_url} answered HTTP {response.status_code} without JSON"
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            detail = body.get("error") or response.reason_phrase
            raise PrometheusError(
                f"Prometheus at {self.base_url} refused the query (HTTP {response.status_code}, "
                f"{body.get('errorType', 'error')}): {detail}"
            )
        data = body.get("data") or {}
        kind = data.get("resultType")
        if kind == "vector":
            return [Sample(dict(item.get("metric") or {}), _number(item["value"][1])) for item in data.get("result") or []]
        if kind == "scalar":
            return [Sample({}, _number(data["result"][1]))]
        raise PrometheusError(f"Prometheus answered a {kind!r} result; an instant vector or scalar was expected")

    def value(self, promql: str) -> float | None:
        """The single value of a query; None when there is no sample or it is NaN (no traffic: 0/0)."""
        samples = self.query(promql)
        if not samples:
            return None
        if len(samples) > 1:
            raise PrometheusError(f"expected one sample, got {len(samples)}: {promql}")
        value = samples[0].value
        return None if math.isnan(value) else value


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise PrometheusError(f"not a number in the Prometheus answer: {text!r}") from None


@dataclass
class Verdict:
    healthy: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "reasons": list(self.reasons), "metrics": dict(self.metrics),
                "queries": dict(self.queries)}


class CanaryJudge:
    """Error rate and toxic-rate drift of the canary revision against the champion revision."""

    def __init__(
        self,
        prometheus: PrometheusClient | None,
        *,
        namespace: str,
        max_error_rate: float,
        max_toxic_rate_drift: float,
        window_s: int = 300,
    ):
        self.prometheus = prometheus
        self.namespace = namespace
        self.max_error_rate = max_error_rate
        self.max_toxic_rate_drift = max_toxic_rate_drift
        self.window = f"{max(int(window_s), MIN_WINDOW_S)}s"

    def _rate(self, metric: str, revision: str, *matchers: str) -> str:
        labels = [f'namespace="{_escape(self.namespace)}"', f'revision="{_escape(revision)}"', *matchers]
        return f"sum(rate({metric}{{{','.join(labels)}}}[{self.window}]))"

    def _ratio(self, metric: str, revision: str, part: str, whole: str | None = None) -> str:
        # "or vector(0)": a label value never seen yet has no series, which means a zero rate.
        numerator = f"({self._rate(metric, revision, part)} or vector(0))"
        denominator = self._rate(metric, revision, *((whole,) if whole else ()))
        return f"{numerator} / {denominator}"

    def queries(self, canary: str, champion: str) -> dict[str, str]:
        """The PromQL of each measurement (an empty or NaN answer means: no traffic to judge)."""
        return {
            "canary_request_rate": self._rate(REQUESTS_METRIC, canary),
            "canary_error_rate": self._ratio(REQUESTS_METRIC, canary, 'outcome="error"', 'outcome=~"ok|error"'),
            "canary_toxic_rate": self._ratio(TEXTS_METRIC, canary, 'verdict="toxic"'),
            "champion_toxic_rate": self._ratio(TEXTS_METRIC, champion, 'verdict="toxic"'),
        }

    def judge(self, canary: str, champion: str) -> Verdict:
        queries = self.queries(canary, champion)
        verdict = Verdict(healthy=False, queries=queries)
        if self.prometheus is None:
            verdict.reasons.append("no Prometheus configured (serving.prometheus_url): the canary cannot be judged")
            return verdict
        try:
            values = {name: self.prometheus.value(promql) for name, promql in queries.items()}
        except PrometheusError as exc:
            verdict.reasons.append(f"cannot judge the canary: {exc}")
            return verdict
        verdict.metrics.update(values)
        if not values["canary_request_rate"]:
            verdict.reasons.append(f"no requests reached canary revision {canary} in the last {self.window}")
            return verdict
        error_rate = values["canary_error_rate"] or 0.0
        canary_toxic, champion_toxic = values["canary_toxic_rate"], values["champion_toxic_rate"]
        if error_rate > self.max_error_rate:
            verdict.reasons.append(
                f"canary error rate {error_rate:.4f} > max_canary_error_rate {self.max_error_rate:.4f}"
            )
        if canary_toxic is None or champion_toxic is None:
            which = canary if canary_toxic is None else champion
            verdict.reasons.append(f"no classified texts from revision {which} in the last {self.window}: drift unknown")
        else:
            drift = abs(canary_toxic - champion_toxic)
            verdict.metrics["toxic_rate_drift"] = drift
            if drift > self.max_toxic_rate_drift:
                verdict.reasons.append(
                    f"toxic rate {canary_toxic:.3f} on the canary vs {champion_toxic:.3f} on the champion: "
                    f"drift {drift:.3f} > max_toxic_rate_drift {self.max_toxic_rate_drift:.3f}"
                )
        if not verdict.reasons:
            verdict.healthy = True
            verdict.reasons.append(
                f"error rate {error_rate:.4f}, toxic-rate drift {verdict.metrics['toxic_rate_drift']:.3f} within limits"
            )
        return verdict


def prometheus_alert_check(prometheus: PrometheusClient, selector: str = 'rollback="true"') -> Callable[[float], list[str]]:
    """For :class:`~content_arena.rollout.CanaryRollout`: the names of the alerts matching ``selector``
    that are firing and became active at or after a given unix time (``ALERTS_FOR_STATE`` holds the time
    an alert became active; an alert already firing before the rollout does not count)."""

    def check(started_at: float) -> list[str]:
        query = (f"ALERTS_FOR_STATE{{{selector}}} >= {started_at:.3f} "
                 f'and ignoring(alertstate) ALERTS{{alertstate="firing",{selector}}}')
        return sorted({sample.labels.get("alertname", "unnamed") for sample in prometheus.query(query)})

    return check


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
