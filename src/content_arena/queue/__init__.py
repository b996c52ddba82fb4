"""Job queues, the training lock and shared caches: in-process by default, Redis when configured.

    backend = open_queue(cfg.queue.url)          # None → in-process; redis://host:6379/0 → Redis
    backend.retrain_queue.push({"run_id": ...})  # key queue:retrain_trigger
    backend.training_lock.acquire(owner, ttl_s)  # key lock:training
"""

from __future__ import annotations

from content_arena.queue.base import (
    BATTLE_QUEUE,
    QUALITY_CACHE,
    RETRAIN_QUEUE,
    TRAINING_LOCK,
    JobQueue,
    QueueBackend,
    QueueUnavailable,
    Subscription,
    TrainingLock,
    battle_lease_key,
    battle_progress_key,
    battle_status_key,
    battle_stop_key,
    rate_bucket_key,
)
from content_arena.queue.memory import MemoryBackend

__all__ = [
    "BATTLE_QUEUE",
    "QUALITY_CACHE",
    "RETRAIN_QUEUE",
    "TRAINING_LOCK",
    "JobQueue",
    "MemoryBackend",
    "QueueBackend",
    "QueueUnavailable",
    "Subscription",
    "TrainingLock",
    "battle_lease_key",
    "battle_progress_key",
    "battle_status_key",
    "battle_stop_key",
    "open_queue",
    "rate_bucket_key",
]


def open_queue(url: str | None, *, prefix: str = "") -> QueueBackend:
    """The backend for ``url``: None or "" (or ``memory://``) → in-process; ``redis://`` / ``rediss://`` → Redis.

    ``prefix`` is put before every key (tests use a random one). Raises ValueError for another
    scheme and QueueUnavailable when Redis does not answer.
    """
    if not url or url.startswith("memory://"):
        return MemoryBackend(prefix)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        from content_arena.queue.redis_backend import RedisBackend

        return RedisBackend(url, prefix)
    raise ValueError(f"unsupported queue URL scheme {scheme!r}: leave queue.url empty or use redis://host:6379/0")
