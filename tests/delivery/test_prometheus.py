"""The Prometheus HTTP API client and the canary judge, against a small local server speaking /api/v1/query."""

from __future__ import annotations

import math

import pytest

from content_arena.rollout import CanaryJudge, PrometheusClient, PrometheusError

from .fakes import FakePrometheus, closed_port


def test_reads_an_instant_vector_and_sends_the_query_verbatim():
    query = 'sum(rate(content_arena_defender_requests_total{namespace="content-arena",revision="r-1"}[5m]))'
    with FakePrometheus(lambda q: [({"revision": "r-1"}, 0.25)]) as prom:
        samples = PrometheusClient(prom.url).query(query)
        assert prom.queries == [query]
    assert [(s.labels, s.value) for s in samples] == [({"revision": "r-1"}, 0.25)]


def test_value_is_none_without_samples_or_for_nan():
    with FakePrometheus(lambda q: None if q == "empty" else math.nan) as prom:
        client = PrometheusClient(prom.url)
        assert client.value("empty") is None
        assert client.value("0/0") is None


def test_more_than_one_sample_is_an_error():
    with FakePrometheus(lambda q: [({"a": "1"}, 1.0), ({"a": "2"}, 2.0)]) as prom:
        with pytest.raises(PrometheusError, match="expected one sample, got 2"):
            PrometheusClient(prom.url).value("up")


def test_query_errors_carry_prometheus_message():
    with FakePrometheus(lambda q: (400, "bad_data", 'parse error at char 5: unexpected "}"')) as prom:
        with pytest.raises(PrometheusError, match=r"refused the query \(HTTP 400, bad_data\): parse error at char 5"):
            PrometheusClient(prom.url).query("sum(}")


def test_an_answer_that_is_not_json_is_an_error():
    with FakePrometheus(lambda q: (503, None, "Service Unavailable")) as prom:
        with pytest.raises(PrometheusError, match="answered HTTP 503 without JSON"):
            PrometheusClient(prom.url).query("up")


def test_unreachable_prometheus_is_an_error_naming_the_server():
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(PrometheusError, match=f"Prometheus at {url} is unreachable: ConnectError"):
        PrometheusClient(url, timeout_s=2).query("up")


# -- the judge ------------------------------------------------------------------------------------


def judge_with(answers: dict[str, float | None]):
    """A judge whose Prometheus answers by measurement name (matched on each query's text)."""

    def answer(query: str):
        judge = CanaryJudge(None, namespace="ns", max_error_rate=0.01, max_toxic_rate_drift=0.1)
        for name, promql in judge.queries("canary", "champion").items():
            if promql == query:
                return answers.get(name)
        raise AssertionError(f"unexpected query {query}")

    return answer


@pytest.mark.parametrize(
    ("answers", "healthy", "reason"),
    [
        ({"canary_request_rate": 2.0, "canary_error_rate": 0.0, "canary_toxic_rate": 0.3, "champion_toxic_rate": 0.25},
         True, "within limits"),
        ({"canary_request_rate": 2.0, "canary_error_rate": 0.05, "canary_toxic_rate": 0.3, "champion_toxic_rate": 0.3},
         False, "canary error rate 0.0500 > max_canary_error_rate 0.0100"),
        ({"canary_request_rate": 2.0, "canary_error_rate": 0.0, "canary_toxic_rate": 0.9, "champion_toxic_rate": 0.3},
         False, "drift 0.600 > max_toxic_rate_drift 0.100"),
        ({"canary_request_rate": 0.0}, False, "no requests reached canary revision canary"),
        ({"canary_request_rate": None}, False, "no requests reached canary revision canary"),
        ({"canary_request_rate": 2.0, "canary_error_rate": 0.0, "canary_toxic_rate": 0.3, "champion_toxic_rate": None},
         False, "no classified texts from revision champion"),
    ],
)
def test_judge_verdicts(answers, healthy, reason):
    with FakePrometheus(judge_with(answers)) as prom:
        judge = CanaryJudge(PrometheusClient(prom.url), namespace="ns", max_error_rate=0.01, max_toxic_rate_drift=0.1)
        verdict = judge.judge("canary", "champion")
    assert verdict.healthy is healthy
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_judge_without_prometheus_fails_with_the_reason():
    verdict = CanaryJudge(None, namespace="ns", max_error_rate=0.01, max_toxic_rate_drift=0.1).judge("c", "p")
    assert not verdict.healthy
    assert verdict.reasons == ["no Prometheus configured (serving.prometheus_url): the canary cannot be judged"]


def test_queries_select_the_revision_and_namespace_and_treat_missing_series_as_zero():
    judge = CanaryJudge(None, namespace="content-arena", max_error_rate=0.01, max_toxic_rate_drift=0.1, window_s=30)
    queries = judge.queries("content-filter-predictor-00002", "content-filter-predictor-00001")
    assert queries["canary_error_rate"] == (
        '(sum(rate(content_arena_defender_requests_total{namespace="content-arena",'
        'revision="content-filter-predictor-00002",outcome="error"}[60s])) or vector(0)) / '
        'sum(rate(content_arena_defender_requests_total{namespace="content-arena",'
        'revision="content-filter-predictor-00002",outcome=~"ok|error"}[60s]))'
    )
    assert 'revision="content-filter-predictor-00001",verdict="toxic"' in queries["champion_toxic_rate"]
