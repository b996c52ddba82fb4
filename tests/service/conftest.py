"""Fixtures for the service tests: configs, apps with a fake or a real tiny champion, Redis, PostgreSQL.

* Most API tests use :class:`FakeDefender` (flags texts containing "놈") so they need no model.
* Tests that need a real champion share ONE tiny model trained per session (``trained_champion``); each
  gets a private copy of its MLflow database, so promotions in one test never leak into another.
* Redis tests use ARENA_TEST_REDIS_URL (default redis://127.0.0.1:6379/15) with a random key prefix
  that is deleted afterwards; PostgreSQL tests use ARENA_TEST_POSTGRES_URL with a per-test schema.
  An unreachable server FAILS the test with how to start it (ARENA_SKIP_REDIS=1 / ARENA_SKIP_POSTGRES=1
  skip instead).
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import TINY

from .helpers import POSTGRES_URL, REDIS_URL, START_POSTGRES, START_REDIS, TOKENS

# ------------------------------------------------------------------------------------------- configs


@pytest.fixture
def service_config(tiny_config: Callable[..., Any]) -> Callable[..., Any]:
    """tiny_config plus API tokens; keyword sections are merged over it (e.g. api={...})."""

    def make(**overrides: Any) -> Any:
        api = {"tokens": dict(TOKENS), **overrides.pop("api", {})}
        return tiny_config(api=api, **overrides)

    return make


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """Opens TestClients (lifespan started); each is closed at the end of the test."""
    from fastapi.testclient import TestClient

    from content_arena.service.app import create_app

    stack: list[Any] = []

    def make(cfg: Any, **kwargs: Any) -> Any:
        client = TestClient(create_app(cfg, **kwargs), raise_server_exceptions=False)
        client.__enter__()
        stack.append(client)
        return client

    yield make
    for client in reversed(stack):
        client.__exit__(None, None, None)


# --------------------------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_backend() -> Iterator[Any]:
    """A Redis queue backend with a random key prefix on db 15; its keys are deleted afterwards."""
    from content_arena.queue import QueueUnavailable, open_queue

    if os.environ.get("ARENA_SKIP_REDIS") == "1":
        pytest.skip("ARENA_SKIP_REDIS=1")
    prefix = f"arena-test-{uuid.uuid4().hex[:12]}:"
    try:
        backend = open_queue(REDIS_URL, prefix=prefix)
    except QueueUnavailable as exc:
        pytest.fail(f"{exc}\nStart it with:  {START_REDIS}\nor set ARENA_SKIP_REDIS=1 to skip the Redis tests.",
                    pytrace=False)
    yield backend
    for key in backend.client.scan_iter(match=f"{prefix}*", count=500):
        backend.client.delete(key)
    backend.close()


# ---------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from content_arena.store import normalize_url

    engine = create_engine(normalize_url(POSTGRES_URL), poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        engine.dispose()
        yield str(exc.orig).strip()
        return
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_schema(postgres_admin: Any) -> Iterator[str]:
    """A fresh schema name on the test PostgreSQL (dropped afterwards)."""
    from sqlalchemy import text

    if os.environ.get("ARENA_SKIP_POSTGRES") == "1":
        pytest.skip("ARENA_SKIP_POSTGRES=1")
    if isinstance(postgres_admin, str):
        pytest.fail(f"PostgreSQL is unreachable at {POSTGRES_URL}: {postgres_admin}\nStart it with:  {START_POSTGRES}\n"
                    "or set ARENA_SKIP_POSTGRES=1 to skip the PostgreSQL tests.", pytrace=False)
    schema = f"svc_{uuid.uuid4().hex[:16]}"
    yield schema
    with postgres_admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


# ---------------------------------------------------------------------------------- a real champion


@dataclass(frozen=True)
class TrainedChampion:
    mlflow_db: Path
    artifacts: Path
    model_dir: Path
    version: int
    val_metrics: dict[str, float]


@pytest.fixture(scope="session")
def trained_champion(tmp_path_factory: pytest.TempPathFactory) -> TrainedChampion:
    """ONE tiny champion per test session: trained on 600 seed-corpus examples for 4 epochs (~20 s; a
    real if weak classifier, F1 about 0.8, so battles against it see evasions), registered as v1."""
    from content_arena.config import load_config
    from content_arena.data import load_seed_corpus
    from content_arena.model_registry import CHAMPION
    from content_arena.orchestrator import Workspace, register_model
    from content_arena.training import train_champion

    root = tmp_path_factory.mktemp("champion")
    cfg = load_config(None, home=str(root / ".arena"), mlflow={
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_location": str(root / "mlartifacts"),
    }, **{**TINY, "training": {**TINY["training"], "epochs": 4}})
    examples = load_seed_corpus()
    random.Random(0).shuffle(examples)
    result = train_champion(examples[:600], root / "model", cfg, val_examples=examples[600:800])
    ws = Workspace.open(cfg)
    with ws.registry.run("test-champion") as run:
        version = register_model(ws, result, run, status="champion", alias=CHAMPION)
    ws.registry.set_alias(CHAMPION, version)
    ws.store.close()
    return TrainedChampion(root / "mlflow.db", root / "mlartifacts", result.model_dir, version, result.val_metrics)


@pytest.fixture
def champion_config(service_config: Callable[..., Any], trained_champion: TrainedChampion, tmp_path: Path) -> Callable[..., Any]:
    """Configs whose registry is a private copy of the session champion's (champion = v1), with v1's
    model_metadata row in the test's store."""
    from content_arena.store import open_store

    mlflow_db = tmp_path / "mlflow.db"
    shutil.copy(trained_champion.mlflow_db, mlflow_db)

    def make(**overrides: Any) -> Any:
        mlflow = {"tracking_uri": f"sqlite:///{mlflow_db}", "artifact_location": str(trained_champion.artifacts),
                  **overrides.pop("mlflow", {})}
        cfg = service_config(mlflow=mlflow, **overrides)
        with open_store(cfg.storage_url) as store:
            store.upsert_model(name=cfg.mlflow.model_name, version=trained_champion.version,
                               uri=f"models:/{cfg.mlflow.model_name}/{trained_champion.version}", alias="champion",
                               metrics=dict(trained_champion.val_metrics), status="champion")
        return cfg

    return make
