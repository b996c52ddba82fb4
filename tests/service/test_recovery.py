"""Crash safety: a worker killed mid-battle, shut-downs, orphaned runs, and workers in another process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from content_arena.queue import MemoryBackend, battle_lease_key
from content_arena.service.champion import ChampionHolder
from content_arena.service.context import ServiceContext
from content_arena.service.jobs import WorkerPool, recover_orphans
from content_arena.service.metrics import ArenaMetrics
from content_arena.service.runs import PipelineRunStore
from content_arena.store import open_store
from support.api import ADMIN, READ, FakeDefender, wait_battle, wait_for

# A worker process: plays a 600-round battle against a slow fake defender (version "7") in the
# configured store and prints the battle id. The test kills it with SIGKILL part-way through.
WORKER_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from content_arena.attack_runner import AttackRunner
    from content_arena.attacks import resolve_strategies
    from content_arena.config import load_config
    from content_arena.defender import Defender
    from content_arena.orchestrator import load_dataset
    from content_arena.store import open_store

    class SlowDefender(Defender):
        def load(self):
            return self
        def predict(self, texts):
            time.sleep(0.03)
            return np.array([0.9 if "놈" in t else 0.1 for t in texts], dtype=np.float32)

    cfg = load_config(None)
    store = open_store(cfg.storage_url)
    defender = SlowDefender()
    defender.ready, defender.version = True, "7"
    train, _ = load_dataset(cfg)
    seeds = [e for e in train if e.label == 1]
    runner = AttackRunner(defender, store, resolve_strategies(["spacing", "nfd"]), batch_size=10, seed=cfg.attack.seed)
    battle_id = runner.start(seeds, 600, model_version="7", source="worker-process")
    print(battle_id, flush=True)
    runner.run(battle_id, seeds)
""")


def start_worker_process(cfg: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_") or k.startswith("ARENA_TEST")}
    env.update(ARENA_HOME=cfg.home, ARENA_STORAGE__URL=cfg.storage_url, ARENA_TRAINING__TORCH_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], env=env, stdout=subprocess.PIPE, text=True)


def test_battle_of_a_killed_worker_is_resumed_with_its_rounds_intact(service_config: Any, make_client: Any) -> None:
    cfg = service_config()
    process = start_worker_process(cfg)
    try:
        battle_id = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert battle_id, "the worker process did not start a battle"
        store = open_store(cfg.storage_url)
        wait_for(lambda: store.count_rounds(battle_id) >= 50, timeout=60)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    killed = store.get_battle(battle_id)
    assert killed.status == "running" and 50 <= killed.rounds_completed < 600
    committed = {r.round_number: r for r in store.list_rounds(battle_id, limit=None)}
    assert set(committed) == set(range(len(committed))) and len(committed) == killed.rounds_completed

    client = make_client(cfg, defender=FakeDefender(version="7"), battle_threads=1)
    assert client.app.state.arena.recovery["resumed"] == [battle_id]
    body = wait_battle(client, battle_id, timeout=60)
    assert body["status"] == "completed", body
    assert body["progress"]["rounds_completed"] == 600
    assert body["error"] == f"worker restarted after {killed.rounds_completed} of 600 rounds; resuming"
    after = {r.round_number: r for r in store.list_rounds(battle_id, limit=None)}
    assert set(after) == set(range(600))
    for number, before in committed.items():  # committed rounds were kept, not rewritten
        assert after[number] == before
    store.close()


def _running_battle(store: Any, *, model_version: str, strategies: list[str], rounds_done: int = 3) -> str:
    battle_id = store.create_battle(strategies=strategies, rounds=50, model_version=model_version, source="test",
                                    params={"n_seed_texts": 5, "batch_size": 10})
    store.update_battle(battle_id, status="running", started=True)
    store.add_rounds(battle_id, [
        {"round_number": i, "strategy": strategies[0], "original_text": "나쁜 놈", "attacked_text": "나 쁜 놈",
         "true_label": 1, "toxic_score": 0.9, "predicted_toxic": True, "evaded": False}
        for i in range(rounds_done)
    ])
    return battle_id


def test_battle_that_cannot_be_resumed_is_failed_with_the_reason(service_config: Any, make_client: Any) -> None:
    cfg = service_config()
    store = open_store(cfg.storage_url)
    missing_model = _running_battle(store, model_version="/nonexistent/model-dir", strategies=["spacing"])
    gone_strategy = _running_battle(store, model_version="7", strategies=["retired_strategy"])
    client = make_client(cfg, defender=FakeDefender(version="7"), battle_threads=1)
    for battle_id, cause in ((missing_model, "the model could not be loaded"),
                             (gone_strategy, "a strategy could not be built")):
        body = wait_battle(client, battle_id)
        assert body["status"] == "failed"
        assert body["error"] == f"worker restarted; cannot resume: {cause}"
        assert body["progress"]["rounds_completed"] == 3 and body["finished_at"]
    store.close()


def test_orphaned_pipeline_runs_are_failed_but_live_ones_kept(service_config: Any) -> None:
    cfg = service_config()
    store = open_store(cfg.storage_url)
    backend = MemoryBackend()
    ctx = ServiceContext(cfg=cfg, store=store, backend=backend, runs=PipelineRunStore(store),
                         champion=ChampionHolder(cfg, store, FakeDefender()), metrics=ArenaMetrics())
    orphan = ctx.runs.create(requested_by="test")
    ctx.runs.mark_running(orphan, "dead-worker")
    live = ctx.runs.create(requested_by="test")
    assert backend.training_lock.acquire(live, 60)
    report = recover_orphans(ctx, include_pending=False)
    assert report["runs_failed"] == [orphan]
    failed = ctx.runs.get(orphan)
    assert failed.status == "failed" and failed.error == "worker restarted" and failed.finished_at
    assert ctx.runs.get(live).status == "queued"

    # Battles: a live lease or a recent update keeps a running battle away from the reaper.
    leased = _running_battle(store, model_version="7", strategies=["spacing"])
    assert backend.lock(battle_lease_key(leased)).acquire("other-worker", 60)
    fresh = _running_battle(store, model_version="7", strategies=["nfd"])
    assert recover_orphans(ctx, include_pending=False, stale_after_s=60)["resumed"] == []
    assert recover_orphans(ctx, include_pending=False)["resumed"] == [fresh]
    assert store.get_battle(leased).status == "running" and store.get_battle(fresh).status == "pending"
    assert len(backend.battle_queue) == 1
    store.close()


def test_shutdown_mid_battle_puts_it_back_and_the_next_start_finishes_it(service_config: Any, make_client: Any) -> None:
    from fastapi.testclient import TestClient

    from content_arena.service.app import create_app

    cfg = service_config(attack={"batch_size": 5})
    first = TestClient(create_app(cfg, defender=FakeDefender(delay_s=0.03), battle_threads=1))
    with first:
        response = first.post("/api/v1/battles", json={"rounds": 300, "strategies": ["spacing"]}, headers=ADMIN)
        battle_id = response.json()["id"]
        wait_for(lambda: first.get(f"/api/v1/battles/{battle_id}", headers=READ).json()["progress"]["rounds_completed"] >= 10)
    store = open_store(cfg.storage_url)
    interrupted = store.get_battle(battle_id)
    assert interrupted.status == "pending" and interrupted.error == "interrupted by a worker shutdown; will resume"
    assert 10 <= interrupted.rounds_completed < 300
    second = make_client(cfg, defender=FakeDefender(), battle_threads=1)
    assert second.app.state.arena.recovery["requeued"] == [battle_id]
    assert wait_battle(second, battle_id)["status"] == "completed"
    assert store.count_rounds(battle_id) == 300
    store.close()


@pytest.mark.redis
def test_a_separate_worker_plays_battles_queued_through_redis(
    service_config: Any, make_client: Any, redis_backend: Any
) -> None:
    """The API with --no-jobs only queues; a worker pool elsewhere (here: another ServiceContext on the
    same store and Redis, as `arena worker` builds it) plays the battle."""
    cfg = service_config(attack={"batch_size": 10})
    api = make_client(cfg, defender=FakeDefender(), queue=redis_backend, run_jobs=False)
    battle_id = api.post("/api/v1/battles", json={"rounds": 30, "strategies": ["nfd"]}, headers=ADMIN).json()["id"]
    assert len(redis_backend.battle_queue) == 1
    store = open_store(cfg.storage_url)
    ctx = ServiceContext(cfg=cfg, store=store, backend=redis_backend, runs=PipelineRunStore(store),
                         champion=ChampionHolder(cfg, store, FakeDefender()), metrics=ArenaMetrics())
    pool = WorkerPool(ctx, battle_threads=1, pipeline_threads=0, watch_champion=False).start()
    try:
        body = wait_battle(api, battle_id)
    finally:
        pool.stop()
    assert body["status"] == "completed" and body["progress"]["rounds_completed"] == 30
    assert redis_backend.client.get(f"{redis_backend.prefix}battle:{battle_id}:status") is not None
    assert redis_backend.client.exists(f"{redis_backend.prefix}lock:battle:{battle_id}") == 0
    store.close()


# ------------------------------------------------------------------------------------ resuming


def test_a_failed_battle_is_resumed_through_the_api_and_plays_only_its_missing_rounds(
    service_config: Any, make_client: Any,
) -> None:
    cfg = service_config()
    store = open_store(cfg.storage_url)
    failed = _running_battle(store, model_version="7", strategies=["spacing"], rounds_done=3)
    # Not an outage: the periodic recovery leaves it alone, only the API resumes it.
    store.update_battle(failed, status="failed", error="internal error (see the server log)", finished=True)
    done = store.create_battle(strategies=["nfd"], rounds=5, model_version="7", source="test")
    store.update_battle(done, status="completed", finished=True)
    client = make_client(cfg, defender=FakeDefender(version="7"), battle_threads=1)

    assert client.post(f"/api/v1/battles/{failed}/resume", headers=READ).status_code == 403
    resumed = client.post(f"/api/v1/battles/{failed}/resume", headers=ADMIN)
    assert resumed.status_code == 202 and resumed.json() == {"id": failed, "status": "pending"}
    body = wait_battle(client, failed)
    assert body["status"] == "completed" and body["progress"]["rounds_completed"] == 50
    assert body["error"] == "resume requested" and body["finished_at"]
    rounds = client.get(f"/api/v1/battles/{failed}/rounds", params={"limit": 1000}, headers=READ).json()["rounds"]
    assert sorted(r["round_number"] for r in rounds) == list(range(50))
    # The three rounds written before the failure were kept, not played again.
    assert [r["attacked_text"] for r in rounds[:3]] == ["나 쁜 놈"] * 3

    refused = client.post(f"/api/v1/battles/{done}/resume", headers=ADMIN)
    assert refused.status_code == 409 and refused.json() == {"detail": "battle is already completed"}
    assert client.post("/api/v1/battles/not-a-uuid/resume", headers=ADMIN).status_code == 404
    assert client.post(f"/api/v1/battles/{'0' * 32}/resume", headers=ADMIN).status_code == 404
    store.close()


def test_recovery_resumes_outage_failures_and_requeues_pending_battles_the_queue_lost(
    service_config: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from content_arena.service import jobs

    monkeypatch.setattr(jobs, "PENDING_GRACE_S", 0.0)
    cfg = service_config()
    store = open_store(cfg.storage_url)
    backend = MemoryBackend()
    ctx = ServiceContext(cfg=cfg, store=store, backend=backend, runs=PipelineRunStore(store),
                         champion=ChampionHolder(cfg, store, FakeDefender()), metrics=ArenaMetrics())
    outage = _running_battle(store, model_version="7", strategies=["spacing"])
    store.update_battle(outage, status="failed", error="the database was unavailable", finished=True)
    broken = _running_battle(store, model_version="7", strategies=["nfd"])
    store.update_battle(broken, status="failed", error="internal error (see the server log)", finished=True)
    lost = store.create_battle(strategies=["spacing"], rounds=5, model_version="7", source="test")
    queued = store.create_battle(strategies=["spacing"], rounds=5, model_version="7", source="test")
    backend.battle_queue.push({"battle_id": queued})

    report = recover_orphans(ctx, include_pending=False)
    assert report["retried"] == [outage] and report["requeued"] == [lost]
    assert [job["battle_id"] for job in backend.battle_queue.snapshot()] == [queued, lost, outage]
    again = store.get_battle(outage)
    assert again.status == "pending" and again.finished_at is None
    assert again.error == "resuming after: the database was unavailable"
    assert store.get_battle(broken).status == "failed", "a failure that is not an outage is left alone"
    # A second pass finds everything queued: nothing is queued twice.
    assert recover_orphans(ctx, include_pending=False)["requeued"] == []
    assert len(backend.battle_queue) == 3
    store.close()


def test_a_queued_run_whose_lock_vanished_is_requeued_and_a_running_one_gets_a_grace_period(
    service_config: Any,
) -> None:
    cfg = service_config()
    store = open_store(cfg.storage_url)
    backend = MemoryBackend()
    ctx = ServiceContext(cfg=cfg, store=store, backend=backend, runs=PipelineRunStore(store),
                         champion=ChampionHolder(cfg, store, FakeDefender()), metrics=ArenaMetrics())
    running = ctx.runs.create(requested_by="test")
    ctx.runs.mark_running(running, "live-worker")
    report = recover_orphans(ctx, include_pending=False, run_grace_s=60)
    assert report["runs_failed"] == [] and ctx.runs.get(running).status == "running"
    ctx.runs.mark_completed(running, {"challenger": None}, "pass")
    queued = ctx.runs.create(requested_by="test")
    report = recover_orphans(ctx, include_pending=False, run_grace_s=60)
    assert report["runs_requeued"] == [queued]
    assert backend.training_lock.holder() == queued and backend.retrain_queue.snapshot() == [{"run_id": queued}]
    store.close()
