"""Queues, locks, cache and rate buckets in Redis, shared by API replicas and ``arena worker`` processes.

* Job queues are lists: LPUSH to add, BRPOP to take the oldest.
* A lock is ``SET key owner NX PX ttl``; release and refresh run a Lua script that compares the owner
  first, so only the holder can free or extend it, and a crashed holder's lock expires by its TTL.
* Cache entries are JSON strings with a TTL (``SET ... PX``).
* A token bucket is a hash {tokens, ts} updated by one Lua script using the server clock.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from content_arena.queue.base import JobQueue, QueueBackend, QueueUnavailable, Subscription, TrainingLock

# Each blocking pop waits at most this long so a worker notices shutdown promptly.
MAX_BLOCKING_POP_S = 2.0

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

REFRESH_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

TOKEN_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local last = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


def _milliseconds(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


class RedisJobQueue(JobQueue):
    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name

    def push(self, job: dict[str, Any]) -> None:
        self.client.lpush(self.name, json.dumps(job))

    def pop(self, timeout: float = 0.0) -> dict[str, Any] | None:
        if timeout <= 0:
            raw = self.client.rpop(self.name)
        else:
            found = self.client.brpop([self.name], timeout=min(timeout, MAX_BLOCKING_POP_S))
            raw = found[1] if found else None
        return None if raw is None else json.loads(raw)

    def __len__(self) -> int:
        return int(self.client.llen(self.name))

    def snapshot(self) -> list[dict[str, Any]]:
        # LPUSH adds at the head and BRPOP takes from the tail: the tail is the oldest.
        return [json.loads(raw) for raw in reversed(self.client.lrange(self.name, 0, -1))]

    def ping(self) -> bool:
        return _ping(self.client)


class RedisLock(TrainingLock):
    def __init__(self, client: redis.Redis, name: str, release_script: Any, refresh_script: Any) -> None:
        self.client = client
        self.name = name
        self._release = release_script
        self._refresh = refresh_script

    def acquire(self, owner: str, ttl_s: float) -> bool:
        return bool(self.client.set(self.name, owner, nx=True, px=_milliseconds(ttl_s)))

    def release(self, owner: str) -> bool:
        return bool(self._release(keys=[self.name], args=[owner]))

    def refresh(self, owner: str, ttl_s: float) -> bool:
        return bool(self._refresh(keys=[self.name], args=[owner, _milliseconds(ttl_s)]))

    def holder(self) -> str | None:
        value = self.client.get(self.name)
        return None if value is None else str(value)


class RedisSubscription(Subscription):
    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)

    def get(self, timeout: float = 0.0) -> dict[str, Any] | None:
        message = self._pubsub.get_message(timeout=max(timeout, 0.0))
        if message is None or message.get("type") != "message":
            return None
        return json.loads(message["data"])

    def close(self) -> None:
        self._pubsub.close()


class RedisBackend(QueueBackend):
    kind = "redis"

    def __init__(self, url: str, prefix: str = "", *, check: bool = True) -> None:
        super().__init__(prefix)
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=3, socket_timeout=MAX_BLOCKING_POP_S + 5,
            health_check_interval=30,
        )
        pool_kwargs = self.client.connection_pool.connection_kwargs
        self.location = f"Redis at {pool_kwargs.get('host', '?')}:{pool_kwargs.get('port', 6379)}/{pool_kwargs.get('db', 0)}"
        self._release = self.client.register_script(RELEASE_SCRIPT)
        self._refresh = self.client.register_script(REFRESH_SCRIPT)
        self._bucket = self.client.register_script(TOKEN_BUCKET_SCRIPT)
        if check:
            try:
                self.client.ping()
            except redis.RedisError as exc:
                self.client.close()
                raise QueueUnavailable(f"cannot reach {self.location}: {exc}") from exc

    def job_queue(self, name: str) -> JobQueue:
        return RedisJobQueue(self.client, self.key(name))

    def lock(self, name: str) -> TrainingLock:
        return RedisLock(self.client, self.key(name), self._release, self._refresh)

    def cache_set(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        self.client.set(self.key(key), json.dumps(value, default=str), px=_milliseconds(ttl_s))

    def cache_get(self, key: str) -> dict[str, Any] | None:
        raw = self.client.get(self.key(key))
        return None if raw is None else json.loads(raw)

    def cache_delete(self, key: str) -> None:
        self.client.delete(self.key(key))

    def set_value(self, key: str, value: str) -> None:
        self.client.set(self.key(key), str(value))

    def get_value(self, key: str) -> str | None:
        value = self.client.get(self.key(key))
        return None if value is None else str(value)

    def delete_value(self, key: str) -> None:
        self.client.delete(self.key(key))

    def push_history(self, key: str, entry: dict[str, Any], keep: int) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key(key), json.dumps(entry, default=str))
            pipe.ltrim(self.key(key), -max(1, keep), -1)
            pipe.execute()

    def history(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.client.lrange(self.key(key), 0, -1)]

    def publish(self, channel: str, message: dict[str, Any]) -> int:
        return int(self.client.publish(self.key(channel), json.dumps(message, default=str)))

    def subscribe(self, channel: str) -> Subscription:
        return RedisSubscription(self.client, self.key(channel))

    def take_token(self, bucket: str, capacity: int, refill_per_s: float) -> float:
        return float(self._bucket(keys=[self.key(bucket)], args=[capacity, refill_per_s]))

    def ping(self) -> bool:
        return _ping(self.client)

    def close(self) -> None:
        self.client.close()

    def describe(self) -> str:
        return self.location


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
