"""POST /pipeline/trigger: one run at a time (the training lock), run records, one real run."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from content_arena.service import jobs
from support.api import ADMIN, READ, wait_for


class GatedPipeline:
    """A FAKE pipeline run function that blocks until released (the tests using it are about trigger
    concurrency, not about what a run does)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    def __call__(self, cfg: Any) -> dict[str, Any]:
        self.started += 1
        assert self.release.wait(30), "the test never released the fake pipeline run"
        return {"gate": {"decision": "PASS", "reasons": []}, "challenger": None, "promoted": False, "seconds": 0.1}


def fire_triggers(clients: list[Any], n: int = 20) -> list[Any]:
    barrier = threading.Barrier(n)
    responses: list[Any] = [None] * n

    def trigger(i: int) -> None:
        barrier.wait()
        responses[i] = clients[i % len(clients)].post("/pipeline/trigger", headers=ADMIN)

    threads = [threading.Thread(target=trigger, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def check_exactly_one_run(clients: list[Any], fake: GatedPipeline) -> str:
    responses = fire_triggers(clients)
    codes = Counter(r.status_code for r in responses)
    assert codes == {202: 1, 409: 19}, codes
    accepted = next(r for r in responses if r.status_code == 202).json()
    run_id = accepted["run_id"]
    assert accepted["status"] == "queued"
    for response in responses:
        if response.status_code == 409:
            assert response.json() == {"detail": f"a pipeline run is already in progress: {run_id}",
                                       "running_run_id": run_id}
    client = clients[0]
    wait_for(lambda: client.get(f"/pipeline/runs/{run_id}", headers=READ).json()["status"] == "running")
    assert client.post("/pipeline/trigger", headers=ADMIN).status_code == 409
    fake.release.set()
    done = wait_for(lambda: (body := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                    == "completed" and body)
    assert done["decision"] == "pass" and done["summary"]["gate"]["decision"] == "PASS"
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    assert fake.started == 1
    runs = client.get("/pipeline/runs", headers=READ).json()["runs"]
    assert [r["id"] for r in runs] == [run_id]
    # The lock is free again: the next trigger is accepted.
    wait_for(lambda: client.app.state.arena.ctx.backend.training_lock.holder() is None)
    again = client.post("/pipeline/trigger", headers=ADMIN)
    assert again.status_code == 202
    wait_for(lambda: client.get(f"/pipeline/runs/{again.json()['run_id']}", headers=READ).json()["status"] == "completed")
    return run_id


def test_twenty_concurrent_triggers_start_exactly_one_run(service_config: Any, make_client: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses a FAKE pipeline run function: this test is about trigger concurrency only."""
    fake = GatedPipeline()
    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    from support.api import FakeDefender

    client = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    check_exactly_one_run([client], fake)


@pytest.mark.redis
def test_twenty_concurrent_triggers_on_two_replicas_share_the_redis_lock(
    service_config: Any, make_client: Any, redis_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uses a FAKE pipeline run function: this test is about trigger concurrency only. Two app instances
    (replicas) on one store and one Redis; triggers alternate between them."""
    from support.api import FakeDefender

    fake = GatedPipeline()
    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    cfg = service_config()
    first = make_client(cfg, defender=FakeDefender(), queue=redis_backend, battle_threads=1)
    second = make_client(cfg, defender=FakeDefender(), queue=redis_backend, battle_threads=1)
    run_id = check_exactly_one_run([first, second], fake)
    assert redis_backend.client.exists(f"{redis_backend.prefix}lock:training") == 0
    assert second.get(f"/pipeline/runs/{run_id}", headers=READ).json()["status"] == "completed"


def test_failed_run_is_recorded_and_frees_the_lock(service_config: Any, make_client: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses a FAKE pipeline run function that raises."""
    from support.api import FakeDefender

    def broken(cfg: Any) -> dict[str, Any]:
        raise RuntimeError("registry unreachable\nsecond line with details")

    monkeypatch.setattr(jobs, "execute_pipeline", broken)
    client = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    run_id = client.post("/pipeline/trigger", headers=ADMIN).json()["run_id"]
    body = wait_for(lambda: (b := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"] == "failed" and b)
    # A fixed string: the exception (which may hold hosts, SQL or paths) goes to the log only.
    assert body["error"] == jobs.RUN_FAILED and body["decision"] == "failed"
    wait_for(lambda: client.post("/pipeline/trigger", headers=ADMIN).status_code == 202)
    assert client.get("/pipeline/runs/nope", headers=READ).status_code == 404
    assert 'arena_pipeline_runs_total{decision="failed"}' in client.get("/api/v1/metrics").text


@pytest.mark.slow
def test_real_pipeline_run_on_the_tiny_config(champion_config: Any, make_client: Any) -> None:
    """One real end-to-end trigger: battle, evaluation, gate, and (when the gate fails) a LoRA challenger."""
    cfg = champion_config(attack={"rounds": 60, "batch_size": 64}, training={"challenger_epochs": 1})
    client = make_client(cfg, battle_threads=1)
    wait_for(lambda: client.get("/ready").status_code == 200, timeout=60)
    assert client.post("/api/v1/classify", json={"text": "안녕하세요"}, headers=READ).json()["model_version"] == "1"
    run_id = client.post("/pipeline/trigger", headers=ADMIN).json()["run_id"]
    body = wait_for(lambda: (b := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                    in ("completed", "failed") and b, timeout=300, interval=0.5)
    assert body["status"] == "completed", body["error"]
    summary = body["summary"]
    assert summary["bootstrapped"] is False and summary["champion_before"]["version"] == 1
    assert summary["battle"]["rounds"] == 60
    assert body["decision"] in ("pass", "promote", "reject")
    serving = summary["champion_version"]
    wait_for(lambda: client.app.state.arena.ctx.champion.version == str(serving), timeout=60)
    assert client.post("/api/v1/classify", json={"text": "안녕하세요"}, headers=READ).json()["model_version"] == str(serving)
    text = client.get("/api/v1/metrics").text
    assert f'arena_pipeline_runs_total{{decision="{body["decision"]}"}} 1.0' in text
    assert 'arena_defender_f1{model_version="1"}' in text
    models = client.get("/api/v1/models", headers=READ).json()["models"]
    assert {m["version"] for m in models} >= {1}
