"""Live-traffic signals on /api/v1/classify, the alert webhook, review samples and the shared keys."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import numpy as np
import pytest

from content_arena.monitoring import score_reference
from content_arena.service import jobs
from support.api import ADMIN, READ, FakeDefender, wait_for

from .test_pipeline_trigger import GatedPipeline


class ReferencedDefender(FakeDefender):
    """FakeDefender (flags texts containing "놈") with a validation reference of 10 % toxic texts."""

    score_reference = score_reference(np.array([0.9] * 10 + [0.1] * 90, dtype=np.float32))


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, value = line.rsplit(" ", 1)
            got = ",".join(sorted(series[len(name) + 1:-1].split(",")))
            if got == wanted:
                return float(value)
    return None


def test_classify_exports_the_signals_of_each_batch_by_model_version(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(monitoring={"drift_min_texts": 5}), defender=ReferencedDefender())
    texts = ["씨\u200b발 놈", "ㅆㅣㅂㅏㄹ", "hello there", "ｆｕｃｋ you", "고마워요"]
    assert client.post("/api/v1/classify", json={"texts": texts}, headers=READ).status_code == 200
    body = client.get("/api/v1/metrics").text
    assert metric(body, "arena_live_texts_total", model_version="7") == 5.0
    assert metric(body, "arena_live_flagged_total", model_version="7") == 1.0
    assert metric(body, "arena_live_normalized_total", model_version="7", kind="invisible") == 1.0
    assert metric(body, "arena_live_normalized_total", model_version="7", kind="jamo") == 1.0
    assert metric(body, "arena_live_normalized_total", model_version="7", kind="homoglyph") == 1.0
    assert metric(body, "arena_live_normalized_total", model_version="7", kind="any") == 3.0
    assert metric(body, "arena_live_text_length_chars_count", model_version="7") == 5.0
    assert metric(body, "arena_live_score_psi", model_version="7") is not None


def test_without_a_reference_there_is_no_drift_metric_but_the_other_signals_stay(service_config: Any,
                                                                                    make_client: Any) -> None:
    client = make_client(service_config(monitoring={"drift_min_texts": 1}), defender=FakeDefender())
    assert client.post("/api/v1/classify", json={"texts": ["a", "b"]}, headers=READ).status_code == 200
    body = client.get("/api/v1/metrics").text
    assert metric(body, "arena_live_texts_total", model_version="7") == 2.0
    assert "arena_live_score_psi{" not in body


def test_monitoring_disabled_exports_no_live_signals(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(monitoring={"enabled": False}), defender=ReferencedDefender())
    response = client.post("/api/v1/classify", json={"texts": ["x 놈", "y"]}, headers=READ)
    assert [r["is_toxic"] for r in response.json()["results"]] == [True, False]
    assert "arena_live_texts_total" not in client.get("/api/v1/metrics").text


def test_drift_rises_when_the_traffic_shifts(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(monitoring={"drift_min_texts": 50, "drift_window": 100}),
                         defender=ReferencedDefender())
    like_validation = [f"좋은 하루 {i}" if i % 10 else f"이 놈 {i}" for i in range(100)]
    client.post("/api/v1/classify", json={"texts": like_validation}, headers=READ)
    calm = client.app.state.arena.ctx.metrics.live.psi("7")
    shifted = [f"이 놈 {i}" for i in range(200)]
    client.post("/api/v1/classify", json={"texts": shifted}, headers=READ)
    moved = client.app.state.arena.ctx.metrics.live.psi("7")
    assert calm is not None and calm < 0.05
    assert moved is not None and moved > 1.0


# -- the alert webhook ----------------------------------------------------------------------------


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4", "groupKey": "{}:{alertname=\"ArenaScoreDrift\"}", "status": status, "receiver": "arena",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager",
        "alerts": [{"status": status, "labels": labels, "annotations": {"summary": "drift"},
                    "startsAt": "2026-12-07T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus/graph", "fingerprint": f"f{i}"}
                   for i, labels in enumerate(alerts)],
    }


DRIFT = {"alertname": "ArenaScoreDrift", "model_version": "7", "action": "retrain", "severity": "warning"}


def test_the_webhook_needs_the_admin_token(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(), defender=FakeDefender())
    assert client.post("/api/v1/alerts", json=notification(DRIFT)).status_code == 401
    assert client.post("/api/v1/alerts", json=notification(DRIFT), headers=READ).status_code == 403


def test_an_alert_is_recorded_and_triggers_nothing_by_default(service_config: Any, make_client: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake = GatedPipeline()
    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    client = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    response = client.post("/api/v1/alerts", json=notification(DRIFT), headers=ADMIN)
    assert response.status_code == 200
    assert [a["action"] for a in response.json()["actions"]] == ["pipeline_disabled"]
    recorded = client.get("/api/v1/alerts", headers=ADMIN).json()["alerts"]
    assert [(a["alertname"], a["status"], a["labels"]["model_version"]) for a in recorded] == [
        ("ArenaScoreDrift", "firing", "7")]
    assert client.get("/pipeline/runs", headers=READ).json()["runs"] == []
    assert 'arena_alerts_received_total{alertname="ArenaScoreDrift",status="firing"} 1.0' in client.get(
        "/api/v1/metrics").text


def test_alerts_in_trigger_exactly_one_run_when_enabled(service_config: Any, make_client: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedded defaults (in-process queue, SQLite). Uses a FAKE pipeline run function: this test is about
    alert → trigger → one run, not about what a run does."""
    fake = GatedPipeline()
    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    client = make_client(service_config(monitoring={"alert_triggers_pipeline": True}), defender=FakeDefender(),
                         battle_threads=1)
    n = 8
    barrier = threading.Barrier(n)
    responses: list[Any] = [None] * n

    def send(i: int) -> None:
        barrier.wait()
        responses[i] = client.post("/api/v1/alerts", json=notification(DRIFT, {**DRIFT, "alertname": "ArenaObfuscationRise"}),
                                   headers=ADMIN)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    actions = Counter(a["action"] for r in responses for a in r.json()["actions"])
    assert actions == {"pipeline_queued": 1, "pipeline_busy": 2 * n - 1}, actions
    run_id = next(a["run_id"] for r in responses for a in r.json()["actions"] if a["action"] == "pipeline_queued")
    busy = {a["run_id"] for r in responses for a in r.json()["actions"] if a["action"] == "pipeline_busy"}
    assert busy == {run_id}
    wait_for(lambda: client.get(f"/pipeline/runs/{run_id}", headers=READ).json()["status"] == "running")
    fake.release.set()
    done = wait_for(lambda: (b := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"] == "completed" and b)
    assert done["requested_by"] == "alert:ArenaScoreDrift" or done["requested_by"] == "alert:ArenaObfuscationRise"
    assert [r["id"] for r in client.get("/pipeline/runs", headers=READ).json()["runs"]] == [run_id]
    assert fake.started == 1
    resolved = client.post("/api/v1/alerts", json=notification(DRIFT, status="resolved"), headers=ADMIN).json()
    assert [a["action"] for a in resolved["actions"]] == ["recorded"]


def test_a_malformed_notification_is_a_422_naming_the_field(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(), defender=FakeDefender())
    bad = notification(DRIFT)
    bad["alerts"][0]["status"] = "exploded"
    response = client.post("/api/v1/alerts", json=bad, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "alerts", 0, "status"]


# -- review samples and keys ----------------------------------------------------------------------


def test_texts_near_the_threshold_and_heavily_normalised_ones_are_kept_for_review(service_config: Any,
                                                                                   make_client: Any) -> None:
    from content_arena.live_samples import LiveSampleStore

    class Borderline(FakeDefender):
        def predict(self, texts: Any) -> Any:
            import numpy as np

            return np.array([0.52 if "경계" in t else 0.1 for t in texts], dtype=np.float32)

    client = make_client(service_config(monitoring={"review_per_minute": 2}), defender=Borderline())
    texts = ["경계 1", "경계 2", "경계 3", "평범한 문장"]
    client.post("/api/v1/classify", json={"texts": texts}, headers=READ)
    state = client.app.state.arena
    assert client.get("/api/v1/metrics").status_code == 200  # a scrape adds the queued batches up
    state.sampler.flush()
    kept = LiveSampleStore(state.ctx.store).list()
    # Three near the threshold, two allowed a minute: the first and the last (spread over the batch).
    assert [(s.text, s.reason) for s in kept] == [("경계 1", "near_threshold"), ("경계 3", "near_threshold")]


def test_a_finished_battle_publishes_its_evasion_per_strategy_and_the_detection_rate(service_config: Any,
                                                                                     make_client: Any) -> None:
    from content_arena.monitoring import BATTLE_COMPLETED, StateKeys

    client = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    backend = client.app.state.arena.ctx.backend
    events = backend.subscribe(BATTLE_COMPLETED)
    created = client.post("/api/v1/battles", json={"rounds": 20, "strategies": ["spacing", "homoglyph"]}, headers=ADMIN)
    assert created.status_code == 202, created.text
    event = events.get(timeout=30)
    events.close()
    assert event is not None and event["battle_id"] == created.json()["id"]
    assert set(event["per_strategy"]) == {"spacing", "homoglyph"}
    assert event["model_version"] == "7" and event["rounds"] == 20
    assert event["detection_rate"] == pytest.approx(1 - event["evasion_rate"])
    keys = StateKeys(backend)
    assert keys.current_detection_rate()["battle_id"] == event["battle_id"]
    assert [e["battle_id"] for e in keys.detection_rate_history("7")] == [event["battle_id"]]


@pytest.mark.redis
def test_keys_and_events_on_redis(redis_backend: Any) -> None:
    from content_arena.monitoring import StateKeys

    keys = StateKeys(redis_backend)
    subscription = redis_backend.subscribe("battle_completed")
    subscription.get(timeout=0.2)
    keys.battle_finished({"battle_id": "r1", "status": "completed", "rounds": 4, "evasion_rate": 0.25,
                          "per_strategy": {"spacing": {"rounds": 4, "evaded": 1, "evasion_rate": 0.25}}}, "1")
    event = subscription.get(timeout=2)
    subscription.close()
    assert event["battle_id"] == "r1" and event["per_strategy"] == {"spacing": 0.25}
    assert keys.current_detection_rate()["detection_rate"] == pytest.approx(0.75)
    assert redis_backend.client.llen(f"{redis_backend.prefix}metrics:detection_rate:history") == 1
    keys.champion_changed("models:/content-filter/1", 0.9)
    assert redis_backend.client.get(f"{redis_backend.prefix}model:champion:path") == "models:/content-filter/1"
