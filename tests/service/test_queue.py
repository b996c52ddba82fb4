"""Queue, lock, cache and rate-bucket semantics, in-process and against the real Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from content_arena.queue import (
    BATTLE_QUEUE,
    RETRAIN_QUEUE,
    TRAINING_LOCK,
    MemoryBackend,
    QueueBackend,
    QueueUnavailable,
    battle_progress_key,
    battle_status_key,
    open_queue,
)

BACKENDS = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[QueueBackend]:
    if request.param == "memory":
        yield MemoryBackend()
    else:
        yield request.getfixturevalue("redis_backend")


def test_job_queue_is_fifo_and_counts(backend: QueueBackend) -> None:
    queue = backend.retrain_queue
    assert len(queue) == 0 and queue.pop() is None
    for i in range(3):
        queue.push({"run_id": f"r{i}", "payload": {"n": i, "text": "한국어"}})
    assert len(queue) == 3
    first = queue.pop(timeout=1)
    assert first == {"run_id": "r0", "payload": {"n": 0, "text": "한국어"}}
    assert [queue.pop(timeout=1)["run_id"] for _ in range(2)] == ["r1", "r2"]
    assert len(queue) == 0 and queue.ping()
    assert backend.battle_queue.pop() is None  # queues are separate


def test_pop_waits_for_a_job_up_to_the_timeout(backend: QueueBackend) -> None:
    queue = backend.battle_queue
    started = time.monotonic()
    assert queue.pop(timeout=0.3) is None
    assert 0.25 <= time.monotonic() - started < 2.5
    timer = threading.Timer(0.2, queue.push, args=[{"battle_id": "b1"}])
    timer.start()
    assert queue.pop(timeout=2.0) == {"battle_id": "b1"}
    timer.join()


def test_lock_has_one_owner_who_alone_releases_or_refreshes(backend: QueueBackend) -> None:
    lock = backend.training_lock
    assert lock.holder() is None
    assert lock.acquire("run-a", 30)
    assert not lock.acquire("run-b", 30)
    assert lock.holder() == "run-a"
    assert not lock.release("run-b") and lock.holder() == "run-a"
    assert not lock.refresh("run-b", 30)
    assert lock.refresh("run-a", 30)
    assert lock.release("run-a") and lock.holder() is None
    assert not lock.release("run-a")
    assert lock.acquire("run-b", 30) and lock.holder() == "run-b"
    assert backend.lock("lock:other").acquire("run-c", 30)  # independent names


def test_a_crashed_holders_lock_expires_by_ttl(backend: QueueBackend) -> None:
    lock = backend.training_lock
    assert lock.acquire("dead-worker", 0.2)
    assert not lock.acquire("next", 10)
    time.sleep(0.35)
    assert lock.holder() is None
    assert not lock.refresh("dead-worker", 10)
    assert lock.acquire("next", 10) and lock.holder() == "next"


def test_refresh_keeps_the_lock_alive(backend: QueueBackend) -> None:
    lock = backend.training_lock
    assert lock.acquire("runner", 0.3)
    for _ in range(3):
        time.sleep(0.15)
        assert lock.refresh("runner", 0.3)
    assert lock.holder() == "runner"


def test_only_one_of_many_concurrent_acquirers_wins(backend: QueueBackend) -> None:
    lock = backend.training_lock
    barrier = threading.Barrier(20)
    winners: list[str] = []

    def contend(name: str) -> None:
        barrier.wait()
        if lock.acquire(name, 30):
            winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and lock.holder() == winners[0]


def test_cache_entries_expire(backend: QueueBackend) -> None:
    backend.cache_set(battle_status_key("b1"), {"status": "running", "n": 3}, 0.2)
    assert backend.cache_get(battle_status_key("b1")) == {"status": "running", "n": 3}
    assert backend.cache_get(battle_progress_key("b1")) is None
    time.sleep(0.3)
    assert backend.cache_get(battle_status_key("b1")) is None
    backend.cache_set("metrics:quality", {"x": 1}, 10)
    backend.cache_delete("metrics:quality")
    assert backend.cache_get("metrics:quality") is None


def test_token_bucket_allows_capacity_then_asks_to_wait(backend: QueueBackend) -> None:
    waits = [backend.take_token("client-a", capacity=3, refill_per_s=5.0) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.0 < waits[3] <= 0.25
    assert backend.take_token("client-b", capacity=3, refill_per_s=5.0) == 0.0  # buckets are per key
    time.sleep(0.25)
    assert backend.take_token("client-a", capacity=3, refill_per_s=5.0) == 0.0


def test_open_queue_picks_the_backend_by_url() -> None:
    assert isinstance(open_queue(None), MemoryBackend)
    assert isinstance(open_queue(""), MemoryBackend)
    with pytest.raises(ValueError, match="unsupported queue URL scheme 'amqp'"):
        open_queue("amqp://localhost")
    with pytest.raises(QueueUnavailable, match="cannot reach Redis at 127.0.0.1:1/0"):
        open_queue("redis://:secret@127.0.0.1:1/0")


def test_default_key_names_are_the_documented_ones() -> None:
    backend = MemoryBackend()
    assert backend.retrain_queue.name == RETRAIN_QUEUE == "queue:retrain_trigger"
    assert backend.battle_queue.name == BATTLE_QUEUE
    assert backend.training_lock.name == TRAINING_LOCK == "lock:training"
    assert battle_status_key("x") == "battle:x:status" and battle_progress_key("x") == "battle:x:progress"


@pytest.mark.redis
def test_redis_keys_and_lock_token(redis_backend: Any) -> None:
    """The lock is a plain key holding the owner token with a PX expiry; queues are lists."""
    client, prefix = redis_backend.client, redis_backend.prefix
    redis_backend.retrain_queue.push({"run_id": "r1"})
    assert client.type(f"{prefix}queue:retrain_trigger") == "list"
    assert redis_backend.training_lock.acquire("owner-1", 5)
    assert client.get(f"{prefix}lock:training") == "owner-1"
    assert 0 < client.pttl(f"{prefix}lock:training") <= 5000
    redis_backend.cache_set("metrics:quality", {"models": []}, 30)
    assert 0 < client.pttl(f"{prefix}metrics:quality") <= 30_000
    # Another process (another client) sees the same lock and cannot release it.
    other = open_queue(_url(redis_backend), prefix=prefix)
    try:
        assert other.training_lock.holder() == "owner-1"
        assert not other.training_lock.release("owner-2")
        assert other.retrain_queue.pop() == {"run_id": "r1"}
    finally:
        other.close()


def _url(backend: Any) -> str:
    kwargs = backend.client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"
