"""Outages of the real servers under a running service: Redis restarted (every key lost) and PostgreSQL
stopped for 30 s while battles play, and 20 pipeline triggers around a Redis restart.

The servers are private ones the tests start on their own ports and stop (``redis_server`` and ``pg`` in
conftest.py, see servers.py), never the shared ones other test sessions use. The champion is the fake
defender, slowed down so that battles are still playing when the fault comes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from support.api import ADMIN, READ, FakeDefender, wait_for
from support.backends import POSTGRES_URL

ROUNDS = 96
BATCH = 8  # 12 batches per battle


def _start_battles(client: Any, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        created = client.post("/api/v1/battles", json={"rounds": ROUNDS, "strategies": ["spacing", "homoglyph"]},
                              headers=ADMIN)
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    return ids


def _battle(client: Any, battle_id: str) -> dict[str, Any]:
    return client.get(f"/api/v1/battles/{battle_id}", headers=READ).json()


def _check_all_rounds_once(client: Any, battle_ids: list[str], timeout: float) -> None:
    """Every battle completed with exactly its planned rounds, each round number once."""
    for battle_id in battle_ids:
        done = wait_for(lambda b=battle_id: (body := _battle(client, b))["status"] in ("completed", "failed",
                        "stopped") and body, timeout=timeout)
        assert done["status"] == "completed", done
        assert done["progress"]["rounds_completed"] == ROUNDS, done
        page = client.get(f"/api/v1/battles/{battle_id}/rounds", params={"limit": 1000}, headers=READ).json()
        numbers = [r["round_number"] for r in page["rounds"]]
        assert sorted(numbers) == list(range(ROUNDS)), "missing or duplicated rounds"


def _no_internal_detail(response: Any, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text, f"{secret!r} leaked: {response.text[:300]}"


@pytest.mark.redis
def test_redis_restarted_mid_battle_every_battle_completes_and_classify_answers(
    service_config: Callable[..., Any], make_client: Callable[..., Any], redis_server: Any,
) -> None:
    """Redis (no persistence) down for 3 s while two battles play and two wait in its queue: the
    playing ones keep going (the stop/progress checks read "keep going"), the queued ones, whose
    entries died with Redis, are requeued by the periodic recovery; classify answers 200 throughout
    (the rate limiter fails open to this replica's buckets, counted in a metric); what needs Redis
    answers 503 without naming it; a caller without a valid token gets 401, not a backend error."""
    cfg = service_config(queue={"url": redis_server.url, "recovery_interval_s": 0.5}, attack={"batch_size": BATCH})
    client = make_client(cfg, defender=FakeDefender(delay_s=0.15), battle_threads=2)
    battles = _start_battles(client, 4)
    wait_for(lambda: sum(_battle(client, b)["progress"]["rounds_completed"] > 0 for b in battles) >= 2, timeout=30)
    assert sum(_battle(client, b)["status"] == "pending" for b in battles) >= 1, "no battle was still queued"

    redis_server.stop()
    down_since = time.monotonic()
    classify_codes = []
    while time.monotonic() - down_since < 3.0:
        classify_codes.append(client.post("/api/v1/classify", json={"text": "안녕하세요"}, headers=READ).status_code)
        time.sleep(0.05)
    trigger = client.post("/pipeline/trigger", headers=ADMIN)
    anonymous = client.get("/api/v1/battles", headers={"Authorization": "Bearer not-a-token"})
    during = [_battle(client, b) for b in battles]
    redis_server.start()

    assert classify_codes and set(classify_codes) == {200}, Counter(classify_codes)
    assert trigger.status_code == 503 and trigger.json() == {"detail": "the job queue is unavailable, retry later"}
    _no_internal_detail(trigger, str(redis_server.port), "127.0.0.1", "Error", "Redis")
    assert anonymous.status_code == 401
    assert not [b for b in during if b["status"] == "failed"], during
    assert any(0 < b["progress"]["rounds_completed"] < ROUNDS for b in during), "no battle was mid-way"
    _check_all_rounds_once(client, battles, timeout=90)
    fail_open = [line for line in client.get("/api/v1/metrics").text.splitlines()
                 if line.startswith("arena_rate_limit_fail_open_total ")]
    assert fail_open and float(fail_open[0].split()[1]) >= len(classify_codes), fail_open


class GatedPipeline:
    """A FAKE pipeline run function that blocks until released: the test is about triggers only."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    def __call__(self, cfg: Any) -> dict[str, Any]:
        self.started += 1
        assert self.release.wait(60), "the test never released the fake pipeline run"
        return {"gate": {"decision": "PASS", "reasons": []}, "challenger": None, "promoted": False, "seconds": 0.1}


@pytest.mark.redis
@pytest.mark.postgres
def test_twenty_triggers_around_a_redis_restart_start_exactly_one_run(
    service_config: Callable[..., Any], make_client: Callable[..., Any], redis_server: Any, postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two replicas on one PostgreSQL and one Redis. One trigger starts a run; 19 more, spread over
    the restart of Redis (which forgets the training lock and the queue), all get 409 or 503: the
    pipeline_runs table, checked under an advisory lock, still says a run is active."""
    from content_arena.service import jobs
    from content_arena.store import Store

    fake = GatedPipeline()
    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    cfg = service_config(queue={"url": redis_server.url, "recovery_interval_s": 0.5})
    stores = [Store(POSTGRES_URL, schema=postgres_schema) for _ in range(2)]
    try:
        replicas = [make_client(cfg, store=store, defender=FakeDefender(), battle_threads=1) for store in stores]
        first = replicas[0].post("/pipeline/trigger", headers=ADMIN)
        assert first.status_code == 202, first.text
        run_id = first.json()["run_id"]
        wait_for(lambda: fake.started == 1, timeout=20)

        responses: list[Any] = [None] * 19

        def trigger(i: int) -> None:
            time.sleep(0.1 * i)
            responses[i] = replicas[i % 2].post("/pipeline/trigger", headers=ADMIN)

        threads = [threading.Thread(target=trigger, args=(i,)) for i in range(19)]
        for thread in threads:
            thread.start()
        time.sleep(0.45)
        redis_server.restart(down_s=0.5)
        for thread in threads:
            thread.join()
        codes = Counter(r.status_code for r in responses)
        assert set(codes) <= {409, 503} and codes[409] >= 5, codes
        after_restart = [r for r in responses[12:] if r.status_code == 409]
        assert after_restart and all(r.json()["running_run_id"] == run_id for r in after_restart), codes
        for response in responses:
            _no_internal_detail(response, str(redis_server.port), "127.0.0.1")

        runs = replicas[1].get("/pipeline/runs", headers=READ).json()["runs"]
        assert [(r["id"], r["status"]) for r in runs] == [(run_id, "running")], runs
        fake.release.set()
        done = wait_for(lambda: (r := replicas[0].get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                        in ("completed", "failed") and r, timeout=30)
        assert done["status"] == "completed", done
        assert fake.started == 1
        # The rule holds in both directions: once the run has ended, a trigger is accepted again.
        wait_for(lambda: replicas[1].post("/pipeline/trigger", headers=ADMIN).status_code == 202, timeout=20)
        fake.release.set()
    finally:
        fake.release.set()
        for store in stores:
            store.close()


@pytest.mark.postgres
def test_postgres_stopped_for_30s_mid_battle_every_battle_completes(
    service_config: Callable[..., Any], make_client: Callable[..., Any], pg: Any,
) -> None:
    """The private PostgreSQL stopped for 30 s (a managed failover takes about 25 s) while two battles
    play and one waits: the battles' store calls retry within storage.retry_window_s (90 s), none fails,
    and each ends with exactly its planned rounds; meanwhile an API read gives up after the store's
    short window with a 503 that names no server."""
    from content_arena.store import Store

    store = Store(pg.url, schema=f"outage_{uuid.uuid4().hex[:12]}", reconnect_timeout_s=2.0)
    try:
        cfg = service_config(attack={"batch_size": BATCH})
        client = make_client(cfg, store=store, defender=FakeDefender(delay_s=0.1), battle_threads=2)
        battles = _start_battles(client, 3)
        wait_for(lambda: sum(_battle(client, b)["progress"]["rounds_completed"] > 0 for b in battles) >= 2,
                 timeout=30)
        pg.stop()
        stopped = time.monotonic()
        read = client.get(f"/api/v1/battles/{battles[0]}", headers=READ)
        assert read.status_code == 503 and read.json() == {"detail": "the database is unavailable, retry later"}
        _no_internal_detail(read, str(pg.port), "127.0.0.1", "SELECT", "postgres")
        time.sleep(max(0.0, 30.0 - (time.monotonic() - stopped)))
        pg.start()
        _check_all_rounds_once(client, battles, timeout=120)
    finally:
        store.close()
