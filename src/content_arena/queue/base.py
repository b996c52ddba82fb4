"""The shared-state interface: job queues, owned locks with a TTL, a small TTL cache, rate buckets.

Two implementations, picked by :func:`content_arena.queue.open_queue`: in-process (threads, the
embedded default) and Redis (several API replicas and ``arena worker`` processes share one state).
Jobs are plain JSON-able dicts.
"""

from __future__ import annotations

import abc
from typing import Any

RETRAIN_QUEUE = "queue:retrain_trigger"
BATTLE_QUEUE = "queue:battles"
TRAINING_LOCK = "lock:training"
QUALITY_CACHE = "metrics:quality"


def battle_status_key(battle_id: str) -> str:
    return f"battle:{battle_id}:status"


def battle_progress_key(battle_id: str) -> str:
    return f"battle:{battle_id}:progress"


def battle_stop_key(battle_id: str) -> str:
    return f"battle:{battle_id}:stop"


def battle_lease_key(battle_id: str) -> str:
    """The lock a worker holds while it plays a battle; its expiry marks a dead worker."""
    return f"lock:battle:{battle_id}"


def rate_bucket_key(client_key: str) -> str:
    return f"ratelimit:{client_key}"


class QueueUnavailable(RuntimeError):
    """The queue backend cannot be reached. The message names where, never a password."""


class JobQueue(abc.ABC):
    """A FIFO of job dicts."""

    name: str

    @abc.abstractmethod
    def push(self, job: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def pop(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The oldest job, waiting up to ``timeout`` seconds for one; None when there is none."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def snapshot(self) -> list[dict[str, Any]]:
        """The jobs waiting now, oldest first (a copy; what recovery compares the store against)."""

    @abc.abstractmethod
    def ping(self) -> bool: ...


class TrainingLock(abc.ABC):
    """A named lock held by an owner token for at most ``ttl_s`` seconds unless refreshed.

    Used for the training lock (one pipeline run at a time across every replica) and for the
    per-battle leases of the workers. A holder that crashes loses the lock when its TTL runs out.
    """

    name: str

    @abc.abstractmethod
    def acquire(self, owner: str, ttl_s: float) -> bool:
        """Take the lock for ``owner`` if nobody holds it; True on success."""

    @abc.abstractmethod
    def release(self, owner: str) -> bool:
        """Free the lock only if ``owner`` holds it; True when it was released."""

    @abc.abstractmethod
    def refresh(self, owner: str, ttl_s: float) -> bool:
        """Extend the TTL only if ``owner`` holds it; False when the lock was lost."""

    @abc.abstractmethod
    def holder(self) -> str | None:
        """The current owner token, or None."""


class Subscription(abc.ABC):
    """A subscriber of one channel; close it when done."""

    @abc.abstractmethod
    def get(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The next message, waiting up to ``timeout`` seconds; None when none came."""

    @abc.abstractmethod
    def close(self) -> None: ...


class QueueBackend(abc.ABC):
    """Job queues, locks, a TTL cache and rate buckets on one backend."""

    kind: str

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @abc.abstractmethod
    def job_queue(self, name: str) -> JobQueue: ...

    @abc.abstractmethod
    def lock(self, name: str) -> TrainingLock: ...

    @property
    def retrain_queue(self) -> JobQueue:
        return self.job_queue(RETRAIN_QUEUE)

    @property
    def battle_queue(self) -> JobQueue:
        return self.job_queue(BATTLE_QUEUE)

    @property
    def training_lock(self) -> TrainingLock:
        return self.lock(TRAINING_LOCK)

    @abc.abstractmethod
    def cache_set(self, key: str, value: dict[str, Any], ttl_s: float) -> None: ...

    @abc.abstractmethod
    def cache_get(self, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def cache_delete(self, key: str) -> None: ...

    # Plain values, capped lists and pub/sub: the monitoring keys and events (content_arena.monitoring).

    @abc.abstractmethod
    def set_value(self, key: str, value: str) -> None:
        """Set a string value with no expiry."""

    @abc.abstractmethod
    def get_value(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def delete_value(self, key: str) -> None: ...

    @abc.abstractmethod
    def push_history(self, key: str, entry: dict[str, Any], keep: int) -> None:
        """Append ``entry`` to the list at ``key``, keeping only the newest ``keep`` entries."""

    @abc.abstractmethod
    def history(self, key: str) -> list[dict[str, Any]]:
        """The list at ``key``, oldest first."""

    @abc.abstractmethod
    def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Send ``message`` to the current subscribers of ``channel``; returns how many got it."""

    @abc.abstractmethod
    def subscribe(self, channel: str) -> Subscription:
        """Messages published on ``channel`` from now on."""

    @abc.abstractmethod
    def take_token(self, bucket: str, capacity: int, refill_per_s: float) -> float:
        """Take one token from a token bucket: 0.0 when allowed, else seconds until a token is due."""

    @abc.abstractmethod
    def ping(self) -> bool: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def describe(self) -> str:
        return self.kind
