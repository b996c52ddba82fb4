"""Faults: PostgreSQL connections killed mid-battle, Redis going away, MLflow failing mid-pipeline, a
training crash, a tampered champion on disk.

How each fault is made:

* PostgreSQL: the store connects with a unique ``application_name``; between batches (the runner's
  ``on_progress`` hook) another connection runs ``pg_terminate_backend`` on every backend with that name.
* Redis: the app runs on the real test Redis; the outage swaps the client's connection pool for one on a
  closed port (127.0.0.1:1) and the recovery swaps the real one back (the same client, so the Lua scripts
  follow). A service started while Redis is down is tested separately.
* MLflow: ``ModelRegistry.register`` / ``ModelRegistry.set_alias`` are monkeypatched to raise
  ``RegistryError`` once the champion exists (the pipeline's first registry write after training).
* Training crash: ``content_arena.steps.train.train_challenger`` is monkeypatched to raise.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.api import ADMIN, READ, FakeDefender, wait_for
from support.backends import POSTGRES_URL, REDIS_URL

CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

# The gate can never pass, so every pipeline run trains and registers a challenger.
FAILING_GATE = {"max_evasion_rate": 0.0, "min_f1_score": 1.0}


def _examples(n: int) -> list[Any]:
    from content_arena.data import Example

    return [Example(text=f"너 같은 놈은 {i}번 꺼져", label=1) for i in range(n)]


# ------------------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.postgres
@pytest.mark.parametrize("kills", [1, 3], ids=["killed-once", "killed-3-times"])
def test_postgres_connections_killed_mid_battle(kills: int, postgres_schema: str, postgres_admin: Any) -> None:
    """Killed between batches: pool_pre_ping reconnects and the battle goes on; either way a rerun ends
    with exactly the planned rounds, each written once."""
    from sqlalchemy import text

    from content_arena.attack_runner import AttackRunner
    from content_arena.attacks import get_strategy
    from content_arena.store import Store

    app_name = f"arena-rel-{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    store = Store(f"{POSTGRES_URL}{sep}application_name={app_name}", schema=postgres_schema)
    killed: list[int] = []

    def kill_store_connections(done: int, planned: int) -> None:
        if len(killed) >= kills:
            return
        with postgres_admin.begin() as connection:
            rows = connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = :name AND pid <> pg_backend_pid()"), {"name": app_name},
            ).all()
        killed.append(len(rows))

    strategies = [get_strategy("spacing"), get_strategy("homoglyph"), get_strategy("jamo_split")]
    seeds = _examples(7)
    planned = 90
    try:
        runner = AttackRunner(FakeDefender(), store, strategies, batch_size=16, seed=5,
                              on_progress=kill_store_connections)
        battle_id = runner.start(seeds, planned, model_version="7")
        try:
            summary = runner.run(battle_id, seeds)
        except Exception:  # the other allowed outcome: failed with a reason, then a rerun resumes
            failed = store.get_battle(battle_id)
            assert failed is not None and failed.status == "failed" and failed.error
            summary = AttackRunner(FakeDefender(), store, strategies, batch_size=16, seed=5).run(battle_id, seeds)
        assert killed and sum(killed) >= 1, "no store connection was terminated: the fault was not injected"
        assert summary.status == "completed" and summary.rounds == planned
        rows = []
        offset = 0
        while page := store.list_rounds(battle_id, limit=1000, offset=offset):
            rows.extend(page)
            offset += len(page)
        numbers = [r.round_number for r in rows]
        assert sorted(numbers) == list(range(planned)), "missing or duplicated rounds"
        battle = store.get_battle(battle_id)
        assert battle is not None and battle.status == "completed" and battle.rounds_completed == planned
        # The plan is deterministic: a clean run in another battle writes the same variants.
        clean = AttackRunner(FakeDefender(), store, strategies, batch_size=32, seed=5)
        other = clean.start(seeds, planned, model_version="7")
        clean.run(other, seeds)
        again = {r.round_number: r.attacked_text for r in store.list_rounds(other, limit=1000)}
        assert {r.round_number: r.attacked_text for r in rows} == again
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_killed_under_the_service_keeps_ready_and_battles(
    service_config: Callable[..., Any], make_client: Callable[..., Any], postgres_schema: str, postgres_admin: Any,
) -> None:
    """The service's idle pooled connections killed: the next requests reconnect (pre-ping), no error.
    (Killing a connection while a battle's query runs on it is test_transient_db_error_fails_the_battle.)"""
    from sqlalchemy import text

    from content_arena.store import Store

    app_name = f"arena-rel-{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    store = Store(f"{POSTGRES_URL}{sep}application_name={app_name}", schema=postgres_schema)
    try:
        client = make_client(service_config(), store=store, defender=FakeDefender())
        assert client.get("/api/v1/battles", headers=READ).status_code == 200
        with postgres_admin.begin() as connection:
            killed = connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                             "WHERE application_name = :name AND pid <> pg_backend_pid()"),
                                        {"name": app_name}).all()
        assert killed, "no store connection was terminated: the fault was not injected"
        assert client.get("/ready").status_code == 200
        assert client.get("/api/v1/battles", headers=READ).status_code == 200
        battle = client.post("/api/v1/battles", json={"rounds": 40, "strategies": ["spacing"]}, headers=ADMIN).json()
        done = wait_for(lambda: (b := client.get(f"/api/v1/battles/{battle['id']}", headers=READ).json())["status"]
                        in ("completed", "failed") and b)
        assert done["status"] == "completed", done
        page = client.get(f"/api/v1/battles/{battle['id']}/rounds", params={"limit": 1000}, headers=READ).json()
        assert sorted(r["round_number"] for r in page["rounds"]) == list(range(40))
    finally:
        store.close()


def test_transient_db_error_fails_the_battle_with_a_reason(
    service_config: Callable[..., Any], make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen with PostgreSQL when pg_terminate_backend hits the worker's connection in mid-query (about
    one run in three of a service-level kill); injected here deterministically on SQLite."""
    from sqlalchemy.exc import OperationalError

    from content_arena.store import open_store

    cfg = service_config()
    cfg.home_path.mkdir(parents=True, exist_ok=True)
    store = open_store(cfg.storage_url)
    real = store.done_round_numbers
    calls: list[str] = []

    def dropped_once(battle_id: str) -> Any:
        if not calls:
            calls.append(battle_id)
            raise OperationalError("SELECT battle_rounds.round_number", {},
                                   Exception("server closed the connection unexpectedly"))
        return real(battle_id)

    monkeypatch.setattr(store, "done_round_numbers", dropped_once)
    try:
        client = make_client(cfg, store=store, defender=FakeDefender())
        battle = client.post("/api/v1/battles", json={"rounds": 20, "strategies": ["spacing"]}, headers=ADMIN).json()
        wait_for(lambda: calls, timeout=10)
        done = wait_for(lambda: (b := client.get(f"/api/v1/battles/{battle['id']}", headers=READ).json())["status"]
                        in ("completed", "failed") and b, timeout=5)
        # Failed, the client sees a fixed string: no SQL, parameters or server address.
        assert done["status"] == "completed" or done["error"] == "the database was unavailable", done
    finally:
        store.close()


# ----------------------------------------------------------------------------------------------- Redis


class RedisOutage:
    """Swaps a RedisBackend's connection pool for one on a closed port, and back."""

    def __init__(self, backend: Any) -> None:
        import redis

        self.backend = backend
        self.good = backend.client.connection_pool
        self.dead = redis.ConnectionPool.from_url(CLOSED_REDIS_URL, decode_responses=True, socket_connect_timeout=1)

    def __enter__(self) -> RedisOutage:
        self.backend.client.connection_pool = self.dead
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.client.connection_pool = self.good
        self.dead.disconnect()


@pytest.mark.redis
def test_service_refuses_to_start_without_redis(service_config: Callable[..., Any]) -> None:
    from content_arena.queue import QueueUnavailable
    from content_arena.service.app import create_app

    with pytest.raises(QueueUnavailable, match="127.0.0.1:1"):
        create_app(service_config(queue={"url": CLOSED_REDIS_URL}), defender=FakeDefender())


@pytest.mark.redis
def test_redis_outage_ready_names_the_queue_nothing_lost_and_recovers(
    service_config: Callable[..., Any], make_client: Callable[..., Any], redis_prefix: str,
) -> None:
    from content_arena.queue import open_queue

    backend = open_queue(REDIS_URL, prefix=redis_prefix)
    cfg = service_config(queue={"url": REDIS_URL})
    client = make_client(cfg, queue=backend, defender=FakeDefender(), run_jobs=False)
    queued = client.post("/api/v1/battles", json={"rounds": 20, "strategies": ["spacing"]}, headers=ADMIN)
    assert queued.status_code == 202
    assert len(backend.battle_queue) == 1

    with RedisOutage(backend):
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["queue"] and ready.json()["checks"]["store"] is True
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/metrics").status_code == 200
        trigger = client.post("/pipeline/trigger", headers=ADMIN)
        assert trigger.status_code == 503 and trigger.json()["detail"]
        assert client.get("/pipeline/runs", headers=READ).status_code in (200, 503)

    # Nothing recorded half-way during the outage, nothing lost from before it.
    assert client.get("/ready").status_code == 200
    assert client.get("/pipeline/runs", headers=READ).json()["runs"] == []
    assert backend.training_lock.holder() is None
    assert len(backend.battle_queue) == 1
    battles = client.get("/api/v1/battles", headers=READ).json()["battles"]
    assert [b["id"] for b in battles] == [queued.json()["id"]]
    # Recovered: new work is accepted again and the queued battle is played by a worker.
    assert client.post("/pipeline/trigger", headers=ADMIN).status_code == 202
    worker = make_client(cfg, queue=open_queue(REDIS_URL, prefix=redis_prefix), defender=FakeDefender())
    done = wait_for(lambda: (b := worker.get(f"/api/v1/battles/{queued.json()['id']}", headers=READ).json())["status"]
                    == "completed" and b)
    assert done["progress"]["rounds_completed"] == 20


@pytest.mark.redis
def test_redis_outage_gives_503_not_500(
    service_config: Callable[..., Any], make_client: Callable[..., Any], redis_prefix: str,
) -> None:
    from content_arena.queue import open_queue

    backend = open_queue(REDIS_URL, prefix=redis_prefix)
    client = make_client(service_config(queue={"url": REDIS_URL}), queue=backend, defender=FakeDefender(), run_jobs=False)
    with RedisOutage(backend):
        trigger = client.post("/pipeline/trigger", headers=ADMIN)
        classify = client.post("/api/v1/classify", json={"text": "안녕"}, headers=READ)
    assert trigger.status_code == 503 and trigger.json() == {"detail": "the job queue is unavailable, retry later"}
    assert "127.0.0.1" not in trigger.text
    # The rate limiter fails open to this replica's buckets: classification goes on.
    assert classify.status_code == 200, classify.text


# ------------------------------------------------------------------------------ MLflow and training


def _pipeline_config(champion_config: Callable[..., Any]) -> Any:
    return champion_config(quality_gate=FAILING_GATE, attack={"rounds": 24, "strategies": ["spacing", "homoglyph"]},
                           data={"test_fraction": 0.1})


def _registry_state(cfg: Any) -> tuple[list[int], dict[str, int | None]]:
    from content_arena.model_registry import CHALLENGER, CHAMPION, ModelRegistry

    registry = ModelRegistry.from_config(cfg)
    versions = sorted(v.version for v in registry.versions())
    return versions, {alias: registry.version_for(alias) for alias in (CHAMPION, CHALLENGER)}


def _store_models(cfg: Any) -> dict[int, tuple[str | None, str]]:
    from content_arena.store import open_store

    with open_store(cfg.storage_url) as store:
        return {m.version: (m.alias, m.status) for m in store.list_models(cfg.mlflow.model_name)}


def test_mlflow_unreachable_at_register_fails_cleanly_and_rerun_succeeds(
    champion_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from content_arena.model_registry import ModelRegistry, RegistryError
    from content_arena.orchestrator import run_pipeline

    cfg = _pipeline_config(champion_config)
    before = _registry_state(cfg)
    store_before = _store_models(cfg)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise RegistryError("MLflow tracking server unreachable (injected)")

    with monkeypatch.context() as patch:
        patch.setattr(ModelRegistry, "register", unreachable)
        with pytest.raises(RegistryError, match="unreachable"):
            run_pipeline(cfg)
    assert _registry_state(cfg) == before, "a version was registered or an alias moved"
    assert _store_models(cfg) == store_before, "model_metadata changed"

    summary = run_pipeline(cfg)
    assert summary.challenger is not None
    versions, aliases = _registry_state(cfg)
    assert versions == [*before[0], summary.challenger["version"]]


def test_mlflow_unreachable_at_set_alias_leaves_no_half_registered_model(
    champion_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from content_arena.model_registry import CHAMPION, ModelRegistry, RegistryError
    from content_arena.orchestrator import run_pipeline

    cfg = _pipeline_config(champion_config)
    real_set_alias = ModelRegistry.set_alias

    def flaky(self: Any, alias: str, version: int) -> None:
        if alias != CHAMPION:
            raise RegistryError("MLflow tracking server unreachable (injected)")
        real_set_alias(self, alias, version)

    with monkeypatch.context() as patch:
        patch.setattr(ModelRegistry, "set_alias", flaky)
        with pytest.raises(RegistryError):
            run_pipeline(cfg)
    versions, aliases = _registry_state(cfg)
    assert aliases["challenger"] is None
    mirrored = {v: alias for v, (alias, _) in _store_models(cfg).items() if alias}
    assert mirrored == {1: "champion"}, mirrored


def test_training_crash_releases_the_lock_and_registers_nothing(
    champion_config: Callable[..., Any], make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import content_arena.steps.train as train_step

    cfg = _pipeline_config(champion_config)
    before = _registry_state(cfg)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA error: out of memory (injected)")

    monkeypatch.setattr(train_step, "train_challenger", crash)
    client = make_client(cfg)
    wait_for(lambda: client.get("/ready").status_code == 200)
    run_id = client.post("/pipeline/trigger", headers=ADMIN).json()["run_id"]
    run = wait_for(lambda: (r := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                   in ("completed", "failed") and r, timeout=80)
    assert run["status"] == "failed" and run["error"] == "the pipeline run failed (see the server log)"
    assert client.app.state.arena.ctx.backend.training_lock.holder() is None
    assert _registry_state(cfg) == before
    assert set(_store_models(cfg)) == {1}
    again = client.post("/pipeline/trigger", headers=ADMIN)
    assert again.status_code == 202, again.text  # no stuck lock: a new run is accepted
    wait_for(lambda: client.get(f"/pipeline/runs/{again.json()['run_id']}", headers=READ).json()["status"]
             in ("completed", "failed"), timeout=80)


# ---------------------------------------------------------------------------------- tampered champion


def test_tampered_champion_at_startup_is_refused(
    champion_config: Callable[..., Any], make_client: Callable[..., Any], trained_champion: Any,
) -> None:
    from content_arena.model_registry import ModelRegistry

    cfg = champion_config()
    model_dir = ModelRegistry.from_config(cfg).download(trained_champion.version)
    weights = Path(model_dir) / "model.safetensors"
    original = weights.read_bytes()
    backup = weights.with_suffix(".bak")
    shutil.copy(weights, backup)
    try:
        data = bytearray(original)
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
        client = make_client(cfg)
        holder = client.app.state.arena.ctx.champion
        wait_for(lambda: holder.last_error is not None or holder.loaded, timeout=30)
        ready = client.get("/ready")
        assert ready.status_code == 503 and "champion" in ready.json()["failed"]
        assert "model.safetensors" in (holder.last_error or "") and "sha256" in holder.last_error.lower()
        classify = client.post("/api/v1/classify", json={"text": "안녕하세요"}, headers=READ)
        assert classify.status_code == 503 and classify.json()["detail"] == "no champion model is loaded"
    finally:  # the cached copy lives under the test's home, but leave it intact anyway
        weights.write_bytes(original)
        backup.unlink()
