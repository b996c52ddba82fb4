"""In-process queues, locks, cache and rate buckets: threads of one process share them."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from content_arena.queue.base import JobQueue, QueueBackend, Subscription, TrainingLock

# Idle rate buckets are dropped once there are more than this many, so memory stays bounded.
MAX_RATE_BUCKETS = 10_000


class MemoryJobQueue(JobQueue):
    def __init__(self, name: str) -> None:
        self.name = name
        self._items: collections.deque[dict[str, Any]] = collections.deque()
        self._ready = threading.Condition()

    def push(self, job: dict[str, Any]) -> None:
        with self._ready:
            self._items.append(dict(job))
            self._ready.notify()

    def pop(self, timeout: float = 0.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._ready:
            while not self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._ready.wait(remaining)
            return self._items.popleft()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._ready:
            return [dict(job) for job in self._items]

    def ping(self) -> bool:
        return True


class MemoryLock(TrainingLock):
    def __init__(self, name: str, table: dict[str, tuple[str, float]], guard: threading.Lock) -> None:
        self.name = name
        self._table = table
        self._guard = guard

    def _current(self) -> str | None:
        entry = self._table.get(self.name)
        if entry is None:
            return None
        owner, expires_at = entry
        if expires_at <= time.monotonic():
            del self._table[self.name]
            return None
        return owner

    def acquire(self, owner: str, ttl_s: float) -> bool:
        with self._guard:
            if self._current() is not None:
                return False
            self._table[self.name] = (owner, time.monotonic() + ttl_s)
            return True

    def release(self, owner: str) -> bool:
        with self._guard:
            if self._current() != owner:
                return False
            del self._table[self.name]
            return True

    def refresh(self, owner: str, ttl_s: float) -> bool:
        with self._guard:
            if self._current() != owner:
                return False
            self._table[self.name] = (owner, time.monotonic() + ttl_s)
            return True

    def holder(self) -> str | None:
        with self._guard:
            return self._current()


class MemorySubscription(Subscription):
    def __init__(self, backend: MemoryBackend, channel: str) -> None:
        self._backend = backend
        self._channel = channel
        self._queue = MemoryJobQueue(channel)

    def deliver(self, message: dict[str, Any]) -> None:
        self._queue.push(message)

    def get(self, timeout: float = 0.0) -> dict[str, Any] | None:
        return self._queue.pop(timeout)

    def close(self) -> None:
        self._backend._unsubscribe(self._channel, self)


class MemoryBackend(QueueBackend):
    kind = "memory"

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self._guard = threading.Lock()
        self._queues: dict[str, MemoryJobQueue] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._values: dict[str, str] = {}
        self._lists: dict[str, collections.deque[dict[str, Any]]] = {}
        self._subscribers: dict[str, list[MemorySubscription]] = {}

    def job_queue(self, name: str) -> JobQueue:
        with self._guard:
            return self._queues.setdefault(name, MemoryJobQueue(self.key(name)))

    def lock(self, name: str) -> TrainingLock:
        return MemoryLock(self.key(name), self._locks, self._guard)

    def cache_set(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        with self._guard:
            self._cache[self.key(key)] = (dict(value), time.monotonic() + ttl_s)

    def cache_get(self, key: str) -> dict[str, Any] | None:
        with self._guard:
            entry = self._cache.get(self.key(key))
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._cache[self.key(key)]
                return None
            return dict(entry[0])

    def cache_delete(self, key: str) -> None:
        with self._guard:
            self._cache.pop(self.key(key), None)

    def set_value(self, key: str, value: str) -> None:
        with self._guard:
            self._values[self.key(key)] = str(value)

    def get_value(self, key: str) -> str | None:
        with self._guard:
            return self._values.get(self.key(key))

    def delete_value(self, key: str) -> None:
        with self._guard:
            self._values.pop(self.key(key), None)

    def push_history(self, key: str, entry: dict[str, Any], keep: int) -> None:
        with self._guard:
            items = self._lists.setdefault(self.key(key), collections.deque())
            items.append(dict(entry))
            while len(items) > max(1, keep):
                items.popleft()

    def history(self, key: str) -> list[dict[str, Any]]:
        with self._guard:
            return [dict(item) for item in self._lists.get(self.key(key), ())]

    def publish(self, channel: str, message: dict[str, Any]) -> int:
        with self._guard:
            subscribers = list(self._subscribers.get(self.key(channel), ()))
        for subscriber in subscribers:
            subscriber.deliver(dict(message))
        return len(subscribers)

    def subscribe(self, channel: str) -> Subscription:
        subscription = MemorySubscription(self, self.key(channel))
        with self._guard:
            self._subscribers.setdefault(self.key(channel), []).append(subscription)
        return subscription

    def _unsubscribe(self, channel: str, subscription: MemorySubscription) -> None:
        with self._guard:
            subscribers = self._subscribers.get(channel, [])
            if subscription in subscribers:
                subscribers.remove(subscription)

    def take_token(self, bucket: str, capacity: int, refill_per_s: float) -> float:
        now = time.monotonic()
        with self._guard:
            tokens, last = self._buckets.get(bucket, (float(capacity), now))
            tokens = min(float(capacity), tokens + (now - last) * refill_per_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / refill_per_s
            self._buckets[bucket] = (tokens, now)
            if len(self._buckets) > MAX_RATE_BUCKETS:
                self._drop_full_buckets(now, capacity, refill_per_s)
            return wait

    def _drop_full_buckets(self, now: float, capacity: int, refill_per_s: float) -> None:
        full_after = capacity / refill_per_s
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]

    def ping(self) -> bool:
        return True
