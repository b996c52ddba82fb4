"""Bearer tokens with scopes, and rate limiting per token and per client address.

Tokens come from ``api.tokens`` and the JSON file ``api.tokens_file`` ({"<token>": "read"|"admin"}).
"admin" includes "read". Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`
against every configured token, so neither the match position nor the length leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from content_arena.config import ApiConfig, ConfigError
from content_arena.queue import MemoryBackend, QueueBackend, rate_bucket_key

log = logging.getLogger(__name__)

SCOPES = ("read", "admin")
SCOPE_RANK = {"read": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``key`` identifies a token (a hash prefix) for rate limiting and logs."""

    scope: str
    key: str
    anonymous: bool = False

    def allows(self, needed: str) -> bool:
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[needed]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenTable:
    def __init__(self, tokens: dict[str, str], *, allow_anonymous: bool = False) -> None:
        for token, scope in tokens.items():
            if scope not in SCOPES:
                raise ConfigError(f"api tokens: scope must be one of {', '.join(SCOPES)}, got {scope!r}")
            if not token:
                raise ConfigError("api tokens: empty token")
        self._entries = [(_digest(token), scope) for token, scope in tokens.items()]
        self.allow_anonymous = allow_anonymous

    @classmethod
    def from_config(cls, api: ApiConfig) -> TokenTable:
        tokens: dict[str, str] = dict(api.tokens)
        if api.tokens_file:
            path = Path(api.tokens_file)
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"api.tokens_file {path}: cannot read a JSON object of tokens ({exc})") from None
            if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
                raise ConfigError(f"api.tokens_file {path}: expected a JSON object {{\"<token>\": \"read\"|\"admin\"}}")
            tokens.update(loaded)
        return cls(tokens, allow_anonymous=api.allow_anonymous)

    @property
    def configured(self) -> bool:
        return bool(self._entries)

    def lookup(self, token: str) -> str | None:
        """The scope of ``token``, or None. Compares against every entry (no early exit)."""
        candidate = _digest(token)
        found: str | None = None
        for digest, scope in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = scope
        return found

    def anonymous_scope(self) -> str | None:
        """Scope for a request without a token: none unless anonymous access is allowed.

        With anonymous access allowed and no tokens configured (local use) it is "admin"; with
        tokens configured, anonymous callers may only read.
        """
        if not self.allow_anonymous:
            return None
        return "read" if self.configured else "admin"


def principal_for(table: TokenTable, authorization: str | None) -> Principal | None:
    """The caller for an Authorization header value, or None when it is missing or invalid."""
    if not authorization:
        scope = table.anonymous_scope()
        return None if scope is None else Principal(scope, "anonymous", anonymous=True)
    kind, _, token = authorization.partition(" ")
    token = token.strip()
    if kind.lower() != "bearer" or not token:
        return None
    scope = table.lookup(token)
    if scope is None:
        return None
    return Principal(scope, "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16])


class RateLimiter:
    """Token buckets of ``per_minute`` requests, refilled continuously, one per caller key.

    With a shared backend (Redis) that does not answer, the limiter fails open per replica: each
    replica checks its own in-process buckets instead (so a caller may get ``per_minute`` from each
    replica) and counts every such check in ``arena_rate_limit_fail_open_total``. After a failure the
    shared backend is left alone for SHARED_RETRY_S seconds, so requests do not each wait on it.
    """

    SHARED_RETRY_S = 5.0

    def __init__(self, backend: QueueBackend, per_minute: int, *, registry: CollectorRegistry | None = None) -> None:
        self.backend = backend
        self.capacity = per_minute
        self.refill_per_s = per_minute / 60.0
        self._local = MemoryBackend() if backend.kind != "memory" else None
        self._refused = MemoryBackend()
        self._shared_down_until = 0.0
        self._guard = threading.Lock()
        self.fail_open = Counter(
            "arena_rate_limit_fail_open_total",
            "Rate-limit checks answered by this replica's own buckets because the shared queue did not answer.",
            registry=registry,
        ) if registry is not None else None

    def check(self, *client_keys: str) -> int:
        """0 when every key has a token left, else the Retry-After seconds (at least 1)."""
        wait = 0.0
        for key in client_keys:
            wait = max(wait, self._take(rate_bucket_key(key)))
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def check_refused(self, client_key: str) -> int:
        """Like :meth:`check`, for a request refused by authentication: counted in this replica's own
        buckets only, so a caller without a valid token never reaches the shared backend (and cannot
        drain a valid token's bucket) but still cannot guess tokens at full speed."""
        wait = self._refused.take_token(rate_bucket_key(client_key), self.capacity, self.refill_per_s)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def _take(self, bucket: str) -> float:
        if self._local is None:
            return self.backend.take_token(bucket, self.capacity, self.refill_per_s)
        if time.monotonic() >= self._shared_down_until:
            try:
                return self.backend.take_token(bucket, self.capacity, self.refill_per_s)
            except Exception as exc:
                with self._guard:
                    first = time.monotonic() >= self._shared_down_until
                    self._shared_down_until = time.monotonic() + self.SHARED_RETRY_S
                if first:
                    log.warning("rate limiter: shared buckets unavailable, using this replica's: %s",
                                type(exc).__name__)
        if self.fail_open is not None:
            self.fail_open.inc()
        return self._local.take_token(bucket, self.capacity, self.refill_per_s)
