"""Each endpoint's status codes and response bodies, with a fake defender (no model needed).

Battles are played for real by the app's worker threads (real AttackRunner, real SQLite store)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from typing import Any

import numpy as np
import pytest

from content_arena.queue import MemoryBackend, battle_progress_key
from content_arena.service.batching import MicroBatcher
from content_arena.service.quality import invalidate_quality_report
from support.api import ADMIN, READ, FakeDefender, wait_battle, wait_for

METRIC_NAMES = (
    "arena_rounds_total", "arena_evasion_rate", "arena_defender_f1", "arena_pipeline_runs_total",
    "arena_training_seconds", "arena_http_request_duration_seconds", "arena_classify_batch_size",
)


@pytest.fixture
def client(service_config: Any, make_client: Any) -> Any:
    return make_client(service_config(attack={"batch_size": 16}), defender=FakeDefender(), battle_threads=1)


def create_battle(client: Any, **body: Any) -> str:
    response = client.post("/api/v1/battles", json={"rounds": 40, "strategies": ["spacing", "nfd"], **body},
                           headers=ADMIN)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return response.json()["id"]


# ------------------------------------------------------------------------------------------ battles


def test_battle_is_played_in_the_background_and_reported(client: Any) -> None:
    battle_id = create_battle(client)
    body = wait_battle(client, battle_id)
    assert body["status"] == "completed"
    assert body["progress"] == {"rounds_completed": 40, "rounds_planned": 40, "fraction": 1.0}
    assert body["strategies"] == ["spacing", "nfd"] and body["model_version"] == "7"
    assert body["source"] == "api" and body["seed_source"] == "seed" and body["error"] is None
    assert 0.0 <= body["evasion_rate"] <= 1.0 and body["evaded_count"] == round(body["evasion_rate"] * 40)
    assert body["started_at"] and body["finished_at"]
    backend = client.app.state.arena.ctx.backend
    assert backend.cache_get(battle_progress_key(battle_id)) == {"rounds_completed": 40, "rounds_planned": 40}

    listed = client.get("/api/v1/battles?status=completed", headers=READ).json()
    assert [b["id"] for b in listed["battles"]] == [battle_id]
    assert client.get("/api/v1/battles/nope", headers=READ).status_code == 404
    assert client.get("/api/v1/battles/" + "x" * 100, headers=READ).status_code == 404


def test_rounds_are_paginated(client: Any) -> None:
    battle_id = create_battle(client)
    wait_battle(client, battle_id)
    page = client.get(f"/api/v1/battles/{battle_id}/rounds?limit=15&offset=30", headers=READ).json()
    assert page["total"] == 40 and page["limit"] == 15 and page["offset"] == 30
    assert [r["round_number"] for r in page["rounds"]] == list(range(30, 40))
    first = client.get(f"/api/v1/battles/{battle_id}/rounds", headers=READ).json()
    assert len(first["rounds"]) == 40 and first["limit"] == 100
    row = first["rounds"][0]
    assert set(row) == {"round_number", "strategy", "original_text", "attacked_text", "true_label", "toxic_score",
                        "predicted_toxic", "evaded", "created_at"}
    assert row["strategy"] == "spacing" and row["true_label"] == 1
    assert client.get(f"/api/v1/battles/{battle_id}/rounds?offset=-1", headers=READ).status_code == 422
    assert client.get(f"/api/v1/battles/{battle_id}/rounds?limit=1001", headers=READ).status_code == 422
    assert client.get("/api/v1/battles/nope/rounds", headers=READ).status_code == 404


def test_stop_a_running_battle_keeps_its_rounds(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(attack={"batch_size": 5}), defender=FakeDefender(delay_s=0.05),
                         battle_threads=1)
    battle_id = create_battle(client, rounds=2000)
    wait_for(lambda: client.get(f"/api/v1/battles/{battle_id}", headers=READ).json()["progress"]["rounds_completed"] >= 10)
    stop = client.post(f"/api/v1/battles/{battle_id}/stop", headers=ADMIN)
    assert stop.status_code == 202 and stop.json()["stop_requested"] is True
    body = wait_battle(client, battle_id)
    assert body["status"] == "stopped" and 10 <= body["progress"]["rounds_completed"] < 2000
    store = client.app.state.arena.ctx.store
    assert store.count_rounds(battle_id) == body["progress"]["rounds_completed"]
    again = client.post(f"/api/v1/battles/{battle_id}/stop", headers=ADMIN)
    assert again.status_code == 409 and again.json() == {"detail": "battle is already stopped"}
    assert client.post("/api/v1/battles/nope/stop", headers=ADMIN).status_code == 404


def test_stop_a_pending_battle(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(), defender=FakeDefender(), run_jobs=False, queue=MemoryBackend())
    battle_id = create_battle(client)
    response = client.post(f"/api/v1/battles/{battle_id}/stop", headers=ADMIN)
    assert response.status_code == 202 and response.json()["status"] == "stopped"


def test_battle_on_stored_training_data_and_missing_challenger(client: Any) -> None:
    store = client.app.state.arena.ctx.store
    samples = [("너 같은 놈은 꺼져", 1), ("오늘 날씨 좋다", 0), ("you stupid idiot", 1)]
    store.add_training_samples([
        {"text": t, "label": y, "source": "import", "text_hash": hashlib.sha256(t.encode()).hexdigest()}
        for t, y in samples
    ])
    battle_id = create_battle(client, rounds=8, seed_source="training_data")
    body = wait_battle(client, battle_id)
    assert body["status"] == "completed" and body["seed_source"] == "training_data"
    originals = {r["original_text"] for r in client.get(f"/api/v1/battles/{battle_id}/rounds", headers=READ).json()["rounds"]}
    assert originals == {"너 같은 놈은 꺼져", "you stupid idiot"}
    missing = client.post("/api/v1/battles", json={"rounds": 5, "model": "challenger"}, headers=ADMIN)
    assert missing.status_code == 409 and missing.json() == {"detail": "no model has the alias 'challenger'"}


# ------------------------------------------------------------------------------------------- models


def test_models_and_aliases(client: Any) -> None:
    store = client.app.state.arena.ctx.store
    store.upsert_model(name="content-filter", version=7, uri="models:/content-filter/7", alias="champion",
                       metrics={"clean_f1": 0.81, "evasion_rate": 0.3, "evasion_rate.spacing": 0.5}, status="champion")
    store.upsert_model(name="content-filter", version=8, uri="models:/content-filter/8", alias="challenger",
                       metrics={"clean_f1": 0.84}, status="challenger")
    listed = client.get("/api/v1/models", headers=READ).json()
    assert listed["name"] == "content-filter" and listed["serving_version"] == "7"
    assert [(m["version"], m["alias"], m["serving"]) for m in listed["models"]] == [(8, "challenger", False), (7, "champion", True)]
    champion = client.get("/api/v1/models/champion", headers=READ).json()
    assert champion["version"] == 7 and champion["metrics"]["clean_f1"] == 0.81 and champion["status"] == "champion"
    assert client.get("/api/v1/models/challenger", headers=READ).json()["version"] == 8
    assert client.get("/api/v1/models/other", headers=READ).status_code == 404
    store.set_model_status("content-filter", 8, "rejected", clear_alias=True)
    assert client.get("/api/v1/models/challenger", headers=READ).status_code == 404


# ----------------------------------------------------------------------------------------- classify


def test_classify_single_and_batch(client: Any) -> None:
    single = client.post("/api/v1/classify", json={"text": "이 미친놈아"}, headers=READ)
    assert single.status_code == 200
    assert single.json() == {"model_version": "7", "results": [
        {"toxic_score": pytest.approx(0.9), "is_toxic": True, "confidence": pytest.approx(0.9)}]}
    batch = client.post("/api/v1/classify", json={"texts": ["hello", "나쁜 놈", ""]}, headers=READ).json()
    assert [r["is_toxic"] for r in batch["results"]] == [False, True, False]


def test_concurrent_classify_requests_share_defender_calls(service_config: Any, make_client: Any) -> None:
    defender = FakeDefender(delay_s=0.02)
    client = make_client(service_config(api={"micro_batch_wait_ms": 30}, inference={"batch_size": 64}),
                         defender=defender, battle_threads=1)
    results: dict[int, Any] = {}

    def send(i: int) -> None:
        text = f"문장 {i} 놈" if i % 2 else f"sentence {i}"
        results[i] = client.post("/api/v1/classify", json={"text": text}, headers=READ).json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i]["results"][0]["is_toxic"] == bool(i % 2) for i in range(16))  # each got its own answer
    assert sum(defender.calls) == 16 and len(defender.calls) < 16 and max(defender.calls) > 1
    exposition = client.get("/api/v1/metrics").text
    assert "arena_classify_batch_size_count" in exposition and "arena_classify_batch_size_sum 16.0" in exposition


def test_micro_batcher_collects_up_to_max_batch_and_reports_failures() -> None:
    calls: list[list[str]] = []

    def score(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        if "boom" in texts:
            raise RuntimeError("model failure")
        return np.array([float(len(t)) for t in texts], dtype=np.float32)

    async def scenario() -> None:
        sizes: list[int] = []
        batcher = MicroBatcher(score, max_batch=4, max_wait_s=0.05, on_batch=sizes.append)
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.submit(["x" * i]) for i in range(1, 7)))
            assert [float(r[0]) for r in results] == [1, 2, 3, 4, 5, 6]
            assert [len(c) for c in calls] == [4, 2] and sizes == [4, 2]
            pair = await batcher.submit(["ab", "abc"])
            assert pair.tolist() == [2.0, 3.0]
            with pytest.raises(RuntimeError, match="model failure"):
                await batcher.submit(["boom"])
            assert (await batcher.submit(["after"])).tolist() == [5.0]  # the collector survived
        finally:
            await batcher.stop()

    asyncio.run(scenario())


def test_micro_batcher_without_waiting_sends_requests_one_by_one() -> None:
    calls: list[int] = []

    def score(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        time.sleep(0.01)
        return np.zeros(len(texts), dtype=np.float32)

    async def scenario() -> None:
        batcher = MicroBatcher(score, max_batch=1, max_wait_s=0.0)
        await batcher.start()
        try:
            await asyncio.gather(*(batcher.submit(["t"]) for _ in range(5)))
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert calls == [1, 1, 1, 1, 1]


# ------------------------------------------------------------------------------ health and metrics


def test_ready_reports_which_check_failed(service_config: Any, make_client: Any) -> None:
    class DownQueue(MemoryBackend):
        def ping(self) -> bool:
            return False

    unloaded = FakeDefender()
    unloaded.ready = False
    client = make_client(service_config(), defender=unloaded, queue=DownQueue(), battle_threads=1)
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "checks": {"store": True, "queue": False, "champion": False},
                               "failed": ["queue", "champion"]}
    assert client.get("/health").status_code == 200
    classify = client.post("/api/v1/classify", json={"text": "hi"}, headers=READ)
    assert classify.status_code == 503 and classify.json() == {"detail": "no champion model is loaded"}
    client.app.state.arena.ctx.store.ping = lambda: False
    assert client.get("/ready").json()["checks"]["store"] is False


def test_metrics_exposition_and_quality_report(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from content_arena.service import jobs

    store = client.app.state.arena.ctx.store
    store.upsert_model(name="content-filter", version=7, uri="models:/content-filter/7", alias="champion",
                       metrics={"clean_f1": 0.81, "evasion_rate": 0.25, "evasion_rate.spacing": 0.5,
                                "evasion_rate.nfd": 0.0}, status="champion")
    battle_id = create_battle(client)
    wait_battle(client, battle_id)
    # A pipeline run, with a fake run function (this test is about the metrics it leaves behind).
    monkeypatch.setattr(jobs, "execute_pipeline", lambda cfg: {"challenger": {"version": 8}, "promoted": False,
                                                                "seconds": 12.5, "gate": {"decision": "FAIL"}})
    run_id = client.post("/pipeline/trigger", headers=ADMIN).json()["run_id"]
    wait_for(lambda: client.get(f"/pipeline/runs/{run_id}", headers=READ).json()["status"] == "completed")
    client.post("/api/v1/classify", json={"text": "hello"}, headers=READ)
    invalidate_quality_report(client.app.state.arena.ctx.backend)

    response = client.get("/api/v1/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRIC_NAMES:
        assert f"# TYPE {name} " in text, name
    assert 'arena_rounds_total{outcome="evaded",strategy="spacing"}' in text
    assert 'arena_defender_f1{model_version="7"} 0.81' in text
    assert 'arena_evasion_rate{model_version="7",strategy="spacing"} 0.5' in text
    assert 'arena_pipeline_runs_total{decision="reject"} 1.0' in text
    assert "arena_training_seconds_sum 12.5" in text
    assert 'arena_http_request_duration_seconds_count{method="POST",route="/api/v1/classify",status="200"}' in text

    report = client.get("/api/v1/metrics/quality", headers=READ).json()
    assert report["models"][0] == {
        "version": 7, "status": "champion", "alias": "champion", "recorded_at": report["models"][0]["recorded_at"],
        "f1": 0.81, "evasion_rate": 0.25, "per_strategy": {"spacing": 0.5, "nfd": 0.0}}
    battle = report["battles"][0]
    assert battle["battle_id"] == battle_id and battle["model_version"] == "7" and battle["rounds"] == 40
    assert set(battle["per_strategy"]) == {"spacing", "nfd"}
    assert sum(s["rounds"] for s in battle["per_strategy"].values()) == 40


@pytest.mark.postgres
def test_battles_runs_and_quality_on_postgres(service_config: Any, make_client: Any, postgres_schema: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The same flow on the real PostgreSQL (per-test schema); the pipeline run function is a FAKE here."""
    from content_arena.service import jobs
    from content_arena.store import open_store
    from support.backends import POSTGRES_URL

    store = open_store(POSTGRES_URL, schema=postgres_schema)
    monkeypatch.setattr(jobs, "execute_pipeline", lambda cfg: {"challenger": None, "promoted": False, "seconds": 1.0})
    try:
        client = make_client(service_config(attack={"batch_size": 16}), store=store, defender=FakeDefender(),
                             battle_threads=1)
        battle_id = create_battle(client)
        assert wait_battle(client, battle_id)["status"] == "completed"
        page = client.get(f"/api/v1/battles/{battle_id}/rounds?limit=5&offset=35", headers=READ).json()
        assert [r["round_number"] for r in page["rounds"]] == [35, 36, 37, 38, 39]
        report = client.get("/api/v1/metrics/quality", headers=READ).json()
        assert sum(s["rounds"] for s in report["battles"][0]["per_strategy"].values()) == 40
        run_id = client.post("/pipeline/trigger", headers=ADMIN).json()["run_id"]
        run = wait_for(lambda: (b := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                       == "completed" and b)
        assert run["decision"] == "pass" and run["summary"] == {"challenger": None, "promoted": False, "seconds": 1.0}
    finally:
        store.close()


def test_database_outage_is_a_503_not_a_500(service_config: Any, make_client: Any) -> None:
    """A store that cannot reach its database (after its own retries) answers 503 with Retry-After;
    the message does not echo the SQL or the URL."""
    import sqlalchemy.exc

    from content_arena.store import StoreUnavailable

    client = make_client(service_config(), defender=FakeDefender(), queue=MemoryBackend(), battle_threads=1)
    store = client.app.state.arena.ctx.store

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("PostgreSQL at 127.0.0.1:5432 did not answer for 15 s")

    def dropped(*args: Any, **kwargs: Any) -> Any:
        raise sqlalchemy.exc.OperationalError("SELECT secret FROM battles", {}, Exception("server closed the connection"))

    for failure in (down, dropped):
        store.list_battles = failure
        response = client.get("/api/v1/battles", headers=READ)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json() == {"detail": "the database is unavailable, retry later"}
    del store.list_battles
    assert client.get("/api/v1/battles", headers=READ).status_code == 200
