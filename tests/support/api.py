"""Driving the service API in tests: tokens, a fake defender, polling, and TestClients with lifespan."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from content_arena.defender import Defender

ADMIN_TOKEN = "admin-token-0123456789"
READ_TOKEN = "read-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
TOKENS = {ADMIN_TOKEN: "admin", READ_TOKEN: "read"}


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
    """Polls ``predicate`` until it returns a truthy value, which is returned.

    Raises:
        AssertionError: the value stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_battle(client: Any, battle_id: str, timeout: float = 30.0,
                done: tuple[str, ...] = ("completed", "failed", "stopped")) -> dict[str, Any]:
    """The battle's body once its status is one of ``done``."""

    def finished() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/battles/{battle_id}", headers=READ).json()
        return body if body["status"] in done else None

    return wait_for(finished, timeout)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """Opens TestClients (lifespan started) on ``create_app(cfg, **kwargs)``; each is closed at the end of
    the test, the last opened first."""
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
