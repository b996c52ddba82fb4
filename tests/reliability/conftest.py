"""Fixtures for the reliability tests: faults, load and hostile input.

Self-contained on purpose (nothing is imported from tests/service): configs, a fake defender, apps with
lifespan started, Redis with a random key prefix, PostgreSQL with a schema per test, and ONE tiny real
champion trained per session (smaller than the service suite's: 400 examples, 2 epochs, a few seconds).

Torch runs on one thread here: the CI machine has two shared cores.
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
import torch

# One fake defender and one poll helper for both suites: the service suite's (tests/ is on sys.path).
from service.helpers import FakeDefender, wait_for  # noqa: F401  (re-exported for the tests)

torch.set_num_threads(1)

ADMIN_TOKEN = "rel-admin-token-0123456789"
READ_TOKEN = "rel-read-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
TOKENS = {ADMIN_TOKEN: "admin", READ_TOKEN: "read"}

REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"

SMALL = {
    "model": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "ngram_buckets": 4096, "ngram_dim": 16,
              "max_length": 64},
    "training": {"epochs": 2, "challenger_epochs": 1, "batch_size": 32, "learning_rate": 3e-3, "seed": 3},
    "attack": {"rounds": 60, "batch_size": 32},
    "augment": {"variants_per_failure": 1},
}


def make_config(home: Path, **overrides: Any) -> Any:
    """SMALL merged with ``overrides`` (one level deep), all state under ``home``, API tokens set."""
    from content_arena.config import load_config

    merged: dict[str, Any] = {k: dict(v) for k, v in SMALL.items()}
    merged["api"] = {"tokens": dict(TOKENS), "rate_limit_per_minute": 100_000, "micro_batch_wait_ms": 1}
    for key, value in overrides.items():
        if isinstance(value, dict):
            merged.setdefault(key, {}).update(value)
        else:
            merged[key] = value
    return load_config(None, home=str(home / ".arena"), **merged)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith(("ARENA_TEST", "ARENA_SKIP_")):
            monkeypatch.delenv(key)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.chdir(tmp_path)
    return lambda **overrides: make_config(tmp_path, **overrides)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """Opens TestClients with their lifespan started; each is closed at the end of the test."""
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


def _skip_or_fail(kind: str, reason: str) -> None:
    if os.environ.get(f"ARENA_SKIP_{kind}") == "1":
        pytest.skip(f"ARENA_SKIP_{kind}=1")
    if reason:
        pytest.fail(f"{kind.lower()} is unreachable: {reason} (ARENA_SKIP_{kind}=1 skips)", pytrace=False)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix on the test Redis; its keys are deleted afterwards."""
    import redis

    _skip_or_fail("REDIS", "")
    prefix = f"arena-rel-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _skip_or_fail("REDIS", str(exc))
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)
    client.close()


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
    """A fresh schema on the test PostgreSQL (dropped afterwards); open it with Store(POSTGRES_URL, schema=...)."""
    from sqlalchemy import text

    _skip_or_fail("POSTGRES", postgres_admin if isinstance(postgres_admin, str) else "")
    schema = f"rel_{uuid.uuid4().hex[:16]}"
    with postgres_admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
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
    """ONE tiny champion per session, registered as v1 of a private MLflow (sqlite) registry."""
    from content_arena.data import load_seed_corpus
    from content_arena.model_registry import CHAMPION
    from content_arena.orchestrator import Workspace, register_model
    from content_arena.training import train_champion

    root = tmp_path_factory.mktemp("champion")
    cfg = make_config(root, mlflow={"tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                                    "artifact_location": str(root / "mlartifacts")})
    examples = load_seed_corpus()
    random.Random(0).shuffle(examples)
    result = train_champion(examples[:400], root / "model", cfg, val_examples=examples[400:520])
    ws = Workspace.open(cfg)
    with ws.registry.run("test-champion") as run:
        version = register_model(ws, result, run, status="champion", alias=CHAMPION)
    ws.registry.set_alias(CHAMPION, version)
    ws.store.close()
    return TrainedChampion(root / "mlflow.db", root / "mlartifacts", result.model_dir, version, result.val_metrics)


@pytest.fixture
def champion_config(config: Callable[..., Any], trained_champion: TrainedChampion, tmp_path: Path) -> Callable[..., Any]:
    """Configs whose registry is a private copy of the session champion's MLflow db (the artifacts are
    shared: a test that tampers with them restores them), with v1's model_metadata row in the test's store."""
    from content_arena.store import open_store

    mlflow_db = tmp_path / "mlflow.db"
    shutil.copy(trained_champion.mlflow_db, mlflow_db)

    def make(**overrides: Any) -> Any:
        mlflow = {"tracking_uri": f"sqlite:///{mlflow_db}", "artifact_location": str(trained_champion.artifacts),
                  **overrides.pop("mlflow", {})}
        cfg = config(mlflow=mlflow, **overrides)
        cfg.home_path.mkdir(parents=True, exist_ok=True)
        with open_store(cfg.storage_url) as store:
            store.upsert_model(name=cfg.mlflow.model_name, version=trained_champion.version,
                               uri=f"models:/{cfg.mlflow.model_name}/{trained_champion.version}", alias="champion",
                               metrics=dict(trained_champion.val_metrics), status="champion")
        return cfg

    return make


# ------------------------------------------------------------------- private servers the tests stop


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Any]:
    """A private PostgreSQL cluster (tests/reliability/servers.py) for the module; stopped and deleted after."""
    import pwd
    import tempfile

    from .servers import PrivatePostgres, free_port, postgres_binaries

    if os.environ.get("ARENA_SKIP_POSTGRES") == "1":
        pytest.skip("ARENA_SKIP_POSTGRES=1")
    bin_dir = postgres_binaries()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install postgresql "
                    "or set ARENA_SKIP_POSTGRES=1 to skip the PostgreSQL tests.", pytrace=False)
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="arena-pg-restart-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = PrivatePostgres(bin_dir, root, free_port(), run_as)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        if server.running():
            try:
                server.stop("immediate")
            except Exception as exc:  # noqa: BLE001 - teardown goes on to delete the directory
                print(f"could not stop the private PostgreSQL: {exc}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg(pg_server: Any) -> Iterator[Any]:
    """The private PostgreSQL, accepting connections before and after the test."""
    if not pg_server.running():
        pg_server.start()
    yield pg_server
    if not pg_server.running():
        pg_server.start()
    assert pg_server.accepts_connections()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    """A private, empty Redis (no persistence) on a free port; stopped after the test."""
    from .servers import PrivateRedis, free_port, redis_binary

    if os.environ.get("ARENA_SKIP_REDIS") == "1":
        pytest.skip("ARENA_SKIP_REDIS=1")
    binary = redis_binary()
    if binary is None:
        pytest.fail("redis-server not found: install redis or set ARENA_SKIP_REDIS=1 to skip the Redis tests.",
                    pytrace=False)
    server = PrivateRedis(binary, tmp_path, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
