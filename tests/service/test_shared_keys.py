"""The design's Redis keys and events outside the API: the loop's champion moves and battles keep
``model:champion:*``, ``metrics:detection_rate:*`` and ``battle_completed`` current on the configured
Redis queue, on the API's own queue inside a pipeline run it executes, and do nothing (and fail nothing)
without a shared queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from content_arena import monitoring
from content_arena.attacks import resolve_strategies
from content_arena.data import Example
from content_arena.model_registry import CHAMPION
from content_arena.monitoring import BATTLE_COMPLETED, StateKeys, sharing
from content_arena.queue import MemoryBackend, open_queue
from content_arena.service import jobs
from content_arena.steps import Workspace, aliases, run_battle
from content_arena.steps.attack import publish_battle
from content_arena.store import open_store
from support.api import FakeDefender
from support.backends import REDIS_URL


class FakeRegistry:
    """The registry calls the alias moves make, on a dict of aliases."""

    model_name = "content-filter"

    def __init__(self) -> None:
        self.aliases: dict[str, int] = {}

    def set_alias(self, alias: str, version: int) -> None:
        self.aliases[alias] = version

    def delete_alias(self, alias: str) -> None:
        self.aliases.pop(alias, None)

    def version_for(self, alias: str) -> int | None:
        return self.aliases.get(alias)

    def uri(self, version: int | str) -> str:
        return f"models:/{self.model_name}/{version}"


@pytest.fixture
def workspace(tiny_config: Any) -> Iterator[Any]:
    """A workspace whose config names the test Redis; two registered versions with recorded F1."""

    def make(**queue: Any) -> Workspace:
        store = open_store("sqlite://")
        for version, f1 in ((1, 0.8), (2, 0.9)):
            store.upsert_model(name="content-filter", version=version, uri=f"models:/content-filter/{version}",
                               metrics={"clean_f1": f1, "val_f1": 0.5})
        made.append(store)
        return Workspace(tiny_config(queue=queue), store, FakeRegistry())  # type: ignore[arg-type]

    made: list[Any] = []
    yield make
    for store in made:
        store.close()


@pytest.fixture
def prefixed(redis_backend: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Backends opened from ``queue.url`` use the test's random key prefix."""
    monkeypatch.setattr(monitoring, "_open_backend", lambda url: open_queue(url, prefix=redis_backend.prefix))
    return redis_backend


def seeds() -> list[Example]:
    return [Example(text=f"이 놈 {i}", label=1) for i in range(6)]


@pytest.mark.redis
def test_moving_the_champion_alias_records_its_path_and_f1_on_the_configured_redis(workspace: Any,
                                                                                   prefixed: Any) -> None:
    ws = workspace(url=REDIS_URL)
    keys = StateKeys(prefixed)
    aliases.set_champion(ws, 1)
    assert prefixed.get_value("model:champion:path") == "models:/content-filter/1"
    assert float(prefixed.get_value("model:champion:f1")) == pytest.approx(0.8)
    aliases.set_champion(ws, 2, previous=1)
    assert prefixed.get_value("model:champion:path") == "models:/content-filter/2"
    assert float(prefixed.get_value("model:champion:f1")) == pytest.approx(0.9)
    aliases.roll_back(ws, 2, 1)
    assert prefixed.get_value("model:champion:path") == "models:/content-filter/1"
    assert float(prefixed.get_value("model:champion:f1")) == pytest.approx(0.8)
    assert keys.current_detection_rate() is None  # no battle yet


@pytest.mark.redis
def test_a_loop_battle_publishes_battle_completed_and_the_detection_rate_on_the_configured_redis(
        workspace: Any, prefixed: Any) -> None:
    ws = workspace(url=REDIS_URL)
    events = prefixed.subscribe(BATTLE_COMPLETED)
    events.get(timeout=0.2)  # the subscription is live
    summary = run_battle(ws, FakeDefender(version="2"), resolve_strategies("spacing,homoglyph"), seeds(), 2)
    event = events.get(timeout=5)
    events.close()
    assert event is not None and event["battle_id"] == summary.battle_id
    assert event["model_version"] == "2" and event["rounds"] == summary.rounds
    assert set(event["per_strategy"]) == {"spacing", "homoglyph"}
    assert event["detection_rate"] == pytest.approx(1 - summary.evasion_rate)
    keys = StateKeys(prefixed)
    assert keys.current_detection_rate()["battle_id"] == summary.battle_id
    assert [e["battle_id"] for e in keys.detection_rate_history("2")] == [summary.battle_id]


@pytest.mark.redis
def test_a_battle_against_another_model_than_the_champion_leaves_the_current_rate(workspace: Any,
                                                                                  prefixed: Any) -> None:
    ws = workspace(url=REDIS_URL)
    ws.registry.set_alias(CHAMPION, 1)
    summary = run_battle(ws, FakeDefender(version="1"), resolve_strategies("spacing"), seeds(), 1)
    current = StateKeys(prefixed).current_detection_rate()
    publish_battle(ws, summary, "2")  # as `arena battle` does, for a battle on version 2, not the champion
    keys = StateKeys(prefixed)
    assert keys.current_detection_rate() == current and current["model_version"] == "1"
    assert [e["model_version"] for e in keys.detection_rate_history()] == ["1", "2"]


def test_without_a_shared_queue_the_keys_are_not_written_and_nothing_is_opened(
        workspace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str) -> Any:
        raise AssertionError(f"opened {url}")

    monkeypatch.setattr(monitoring, "_open_backend", refuse)
    ws = workspace()
    aliases.set_champion(ws, 1)
    run_battle(ws, FakeDefender(version="1"), resolve_strategies("spacing"), seeds(), 1)
    assert ws.registry.version_for(CHAMPION) == 1


def test_a_redis_that_does_not_answer_never_fails_the_move_or_the_battle(workspace: Any,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    ws = workspace(url="redis://127.0.0.1:1/0")
    aliases.set_champion(ws, 1)
    summary = run_battle(ws, FakeDefender(version="1"), resolve_strategies("spacing"), seeds(), 1)
    assert ws.registry.version_for(CHAMPION) == 1 and summary.status == "completed"
    assert "could not record the champion's keys" in caplog.text
    assert "could not publish battle_completed" in caplog.text


def test_inside_sharing_the_loop_writes_to_the_lent_backend_even_with_a_redis_url(workspace: Any,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "_open_backend", lambda url: pytest.fail("opened the configured queue"))
    ws = workspace(url="redis://127.0.0.1:1/0")
    backend = MemoryBackend()
    events = backend.subscribe(BATTLE_COMPLETED)
    with sharing(backend):
        aliases.set_champion(ws, 2)
        summary = run_battle(ws, FakeDefender(version="2"), resolve_strategies("spacing"), seeds(), 2)
    assert backend.get_value("model:champion:path") == "models:/content-filter/2"
    assert events.get(timeout=1)["battle_id"] == summary.battle_id
    assert StateKeys(backend).current_detection_rate()["battle_id"] == summary.battle_id


def test_an_api_pipeline_run_publishes_once_on_the_api_queue(service_config: Any, make_client: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A FAKE pipeline run that plays a loop battle and promotes through the steps: the events reach the
    API's in-process queue exactly once (the steps publish; the job does not publish again)."""
    from .helpers import ADMIN, wait_for

    published: list[dict[str, Any]] = []

    def fake(cfg: Any) -> dict[str, Any]:
        store = open_store("sqlite://")
        store.upsert_model(name="content-filter", version=3, uri="models:/content-filter/3", metrics={"clean_f1": 0.7})
        ws = Workspace(cfg, store, FakeRegistry())  # type: ignore[arg-type]
        try:
            battle = run_battle(ws, FakeDefender(version="3"), resolve_strategies("spacing"), seeds(), 3)
            aliases.set_champion(ws, 3)
        finally:
            store.close()
        return {"battle": battle.to_dict(), "champion_before": {"version": 3}, "promoted": False, "seconds": 1.0}

    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    client = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    backend = client.app.state.arena.ctx.backend
    events = backend.subscribe(BATTLE_COMPLETED)
    response = client.post("/pipeline/trigger", headers=ADMIN)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    wait_for(lambda: client.get(f"/pipeline/runs/{run_id}", headers=ADMIN).json()["status"] == "completed")
    while (event := events.get(timeout=0.5)) is not None:
        published.append(event)
    events.close()
    assert [e["model_version"] for e in published] == ["3"]
    assert json.loads(backend.get_value("metrics:detection_rate:current"))["model_version"] == "3"
    assert backend.get_value("model:champion:path") == "models:/content-filter/3"
