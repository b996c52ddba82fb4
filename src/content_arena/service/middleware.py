"""Per-request id, access log, HTTP duration histogram, and the last-resort error response.

A pure ASGI middleware (no per-request task like BaseHTTPMiddleware). An exception that escapes a
route becomes ``500 {"detail": "internal error", "request_id": ...}``; the traceback goes to the log
only, never to the client.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from content_arena.service.metrics import ArenaMetrics

log = logging.getLogger("content_arena.service.access")
REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises 413 (an HTTPException: the app answers it as JSON) past ``limit`` bytes,
    for bodies sent without a Content-Length."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request body too large: at most {limit} bytes")
        return message

    return limited


def _header_bytes(scope: Scope) -> int:
    return len(scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")) + len(
        scope.get("query_string", b"")) + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: ArenaMetrics, plain_routes: frozenset[str] = frozenset(),
                 max_body_bytes: int | None = None, max_header_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # The server (uvicorn's h11 parser) bounds what it buffers; this check also holds behind
        # servers that do not (httptools), so no handler ever sees oversized headers.
        self.max_header_bytes = max_header_bytes
        self.metrics = metrics
        # Routes without a route object in the scope (the docs pages): labelled by their path.
        self.plain_routes = plain_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        try:
            if self.max_header_bytes is not None and _header_bytes(scope) > self.max_header_bytes:
                body = {"detail": f"request headers too large: at most {self.max_header_bytes} bytes"}
                await JSONResponse(body, status_code=431)(scope, receive, send_with_id)
                return
            limit = self.max_body_bytes
            if limit is not None:
                length = _content_length(scope)
                if length is not None and length > limit:
                    body = {"detail": f"request body too large: at most {limit} bytes"}
                    await JSONResponse(body, status_code=413)(scope, receive, send_with_id)
                    return
                receive = _limited(receive, limit)
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "path": scope.get("path")})
            if response_started:
                raise
            response = JSONResponse({"detail": "internal error", "request_id": request_id}, status_code=500)
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or (
                scope["path"] if scope["path"] in self.plain_routes else "unmatched"
            )
            self.metrics.http_duration.labels(scope["method"], route, str(status)).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                log.info(
                    "%s %s %d", scope["method"], route, status,
                    extra={
                        "request_id": request_id, "method": scope["method"], "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2),
                        "client": client[0] if client else None, **state.get("log_extra", {}),
                    },
                )
