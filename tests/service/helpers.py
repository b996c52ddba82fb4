"""Shared helpers of the service tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from content_arena.defender import Defender

ADMIN_TOKEN = "admin-token-0123456789"
READ_TOKEN = "read-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
TOKENS = {ADMIN_TOKEN: "admin", READ_TOKEN: "read"}

REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
POSTGRES_URL = os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


class FakeDefender(Defender):
    """Flags texts containing "놈"; ``delay_s`` per call makes battles slow enough to stop or kill."""

    def __init__(self, version: str = "7", delay_s: float = 0.0) -> None:
        super().__init__()
        self.version = version
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.ready = True

    def load(self) -> FakeDefender:
        self.ready = True
        return self

    def predict(self, texts: Any) -> np.ndarray:
        self.calls.append(len(texts))
        if self.delay_s:
            time.sleep(self.delay_s)
        return np.array([0.9 if "놈" in t else 0.1 for t in texts], dtype=np.float32)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_battle(client: Any, battle_id: str, timeout: float = 30.0, done: tuple[str, ...] = ("completed", "failed", "stopped")) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/battles/{battle_id}", headers=READ).json()
        return body if body["status"] in done else None

    return wait_for(finished, timeout)


@contextmanager
def env_vars(**values: str) -> Iterator[None]:
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
