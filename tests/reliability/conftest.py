"""Fixtures of the reliability tests (faults, load and hostile input), beyond the shared ones of
tests/support: the suite's shorter loop, and private PostgreSQL and Redis servers that tests stop.

Everything else (the fake defender, TestClients, Redis with a key prefix, PostgreSQL schemas and the
session champion) is the same as every suite's, from tests/support.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.backends import skip_if_asked
from support.configs import API, SMALL, clean_arena_env, merge_sections

# The reliability loop: SMALL (its pipelines test what happens around training, not what it learns),
# the API tokens, no rate limit (load tests would hit it) and 1 ms micro-batches (fast round trips).
RELIABILITY = merge_sections(SMALL, API, {"api": {"rate_limit_per_minute": 100_000, "micro_batch_wait_ms": 1}})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_arena_env(monkeypatch)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread during this suite's tests: they run servers, workers and battles beside the
    model on two shared cores, where a second torch thread only competes with them. Restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def service_config(tiny_config: Callable[..., Any]) -> Callable[..., Any]:
    """The reliability suite's service configs (RELIABILITY); ``champion_config`` builds on them too."""
    return lambda **overrides: tiny_config(RELIABILITY, **overrides)


# ------------------------------------------------------------------- private servers the tests stop


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Any]:
    """A private PostgreSQL cluster (tests/reliability/servers.py) for the module; stopped and deleted after."""
    import pwd
    import tempfile

    from .servers import PrivatePostgres, free_port, postgres_binaries

    skip_if_asked("POSTGRES")
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

    skip_if_asked("REDIS")
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
