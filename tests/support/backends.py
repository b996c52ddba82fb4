"""Redis and PostgreSQL for tests, each test isolated in its own key prefix or schema.

Redis tests use ARENA_TEST_REDIS_URL (default redis://127.0.0.1:6379/15) with a random key prefix that is
deleted afterwards; PostgreSQL tests use ARENA_TEST_POSTGRES_URL with a schema per test, dropped
afterwards. An unreachable server FAILS the test with how to start it, so a missing server never passes
for a green run; ARENA_SKIP_REDIS=1 / ARENA_SKIP_POSTGRES=1 skip those tests instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
POSTGRES_URL = os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def skip_if_asked(server: str) -> None:
    """Skips the test when ARENA_SKIP_<SERVER>=1 (server: "REDIS" or "POSTGRES")."""
    if os.environ.get(f"ARENA_SKIP_{server}") == "1":
        pytest.skip(f"ARENA_SKIP_{server}=1")


def unreachable(name: str, url: str, reason: object, start: str, server: str) -> NoReturn:
    """Fails the test: the ``name`` server at ``url`` cannot be used, with how to start it (``start``) or
    skip its tests instead (ARENA_SKIP_<server>=1)."""
    from sqlalchemy.engine import make_url

    location = make_url(url).render_as_string(hide_password=True)
    pytest.fail(f"{name} is unreachable at {location}: {str(reason).strip()}\nStart it with:  {start}\n"
                f"or set ARENA_SKIP_{server}=1 to skip the {name} tests.", pytrace=False)


# --------------------------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix on the test Redis (checked reachable); its keys are deleted afterwards."""
    import redis

    skip_if_asked("REDIS")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        reason: Exception | None = exc
    else:
        reason = None
    if reason is not None:  # outside the except block: the message alone, no exception chain
        unreachable("Redis", REDIS_URL, reason, START_REDIS, "REDIS")
    prefix = f"arena-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)
    client.close()


@pytest.fixture
def redis_backend(redis_prefix: str) -> Iterator[Any]:
    """A Redis queue backend on ``redis_prefix``; closed after the test."""
    from content_arena.queue import QueueUnavailable, open_queue

    try:
        backend = open_queue(REDIS_URL, prefix=redis_prefix)
    except QueueUnavailable as exc:
        reason = exc
    else:
        reason = None
    if reason is not None:
        unreachable("Redis", REDIS_URL, reason, START_REDIS, "REDIS")
    yield backend
    backend.close()


# ---------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    """An engine on the test PostgreSQL for creating and dropping schemas, or (a string) the reason the
    server cannot be used: pass it to :func:`require_postgres`."""
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


def require_postgres(admin: Any) -> Any:
    """The ``postgres_admin`` engine; skips (ARENA_SKIP_POSTGRES=1) or fails when it is a reason string."""
    skip_if_asked("POSTGRES")
    if isinstance(admin, str):
        unreachable("PostgreSQL", POSTGRES_URL, admin, START_POSTGRES, "POSTGRES")
    return admin


@pytest.fixture
def postgres_schema(postgres_admin: Any) -> Iterator[str]:
    """A fresh schema name on the test PostgreSQL, not yet created (the store or the migrations create
    it); dropped afterwards."""
    from sqlalchemy import text

    admin = require_postgres(postgres_admin)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield schema
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
