"""The FastAPI app: :func:`create_app` wires config, store, queue, champion, workers and routes.

    app = create_app(load_config())   # then: uvicorn.run(app, host="127.0.0.1", port=8000)

Start-up (lifespan): recover work a dead worker left behind, start the worker threads, load the
champion in the background (``/ready`` turns 200 once it is loaded), start the classify batcher.
Shut-down: stop the batcher and the workers (running battles go back to pending and resume on the
next start), close what create_app opened.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from content_arena.config import ArenaConfig, load_config
from content_arena.defender import Defender, DefenderNotReady
from content_arena.live_samples import LiveSampleStore, ReviewSampler
from content_arena.model_registry import RegistryError
from content_arena.monitoring import LiveMonitor, LiveSignals, StateKeys, champion_f1, safely
from content_arena.queue import QueueBackend, QueueUnavailable, open_queue
from content_arena.service import jobs
from content_arena.service.alerts import AlertStore
from content_arena.service.alerts import router as alerts_router
from content_arena.service.batching import MicroBatcher
from content_arena.service.champion import ChampionHolder
from content_arena.service.context import ServiceContext
from content_arena.service.metrics import ArenaMetrics
from content_arena.service.middleware import ObservabilityMiddleware
from content_arena.service.routes import router
from content_arena.service.runs import PipelineRunStore
from content_arena.service.security import RateLimiter, TokenTable
from content_arena.store import Store, StoreUnavailable, open_store

log = logging.getLogger(__name__)

API_VERSION = "1"


@dataclass
class AppState:
    ctx: ServiceContext
    tokens: TokenTable
    limiter: RateLimiter
    batcher: MicroBatcher
    workers: jobs.WorkerPool
    load_champion_at_start: bool
    closers: list[Callable[[], None]] = field(default_factory=list)
    recovery: dict[str, list[str]] = field(default_factory=dict)
    champion_loader: threading.Thread | None = None
    alerts: AlertStore | None = None
    sampler: ReviewSampler | None = None

    def start_background(self) -> None:
        self.recovery = jobs.recover_orphans(self.ctx, include_pending=True, run_grace_s=jobs.LOCKLESS_RUN_GRACE_S)
        if self.load_champion_at_start:
            self.champion_loader = threading.Thread(target=self.ctx.champion.refresh, name="champion-loader", daemon=True)
            self.champion_loader.start()
        self.workers.start()
        if self.sampler is not None:
            self.sampler.start()

    def stop_background(self) -> None:
        self.workers.stop(wait_idle=self.ctx.backend.kind != "memory")
        if self.sampler is not None:
            self.sampler.stop()
        for close in reversed(self.closers):
            try:
                close()
            except Exception as exc:
                log.warning("error while closing: %s", jobs.first_line(exc))


def _score_with(champion: ChampionHolder, monitor: LiveMonitor | None = None) -> Callable[[list[str]], np.ndarray]:
    def score(texts: list[str]) -> np.ndarray:
        defender = champion.current()
        if defender is None:
            raise DefenderNotReady("no champion model is loaded")
        if monitor is not None:  # the live signals, from the same preprocessing (monitoring.enabled)
            return monitor.score(defender, texts)
        return defender.scores(texts)

    return score


def _champion_keys(ctx: ServiceContext) -> Callable[[str, str], None]:
    """Keep ``model:champion:path`` and ``model:champion:f1`` on the served champion."""

    def record(version: str, uri: str) -> None:
        def write() -> None:
            record = ctx.store.get_model(ctx.model_name, int(version)) if version.isdigit() else None
            StateKeys(ctx.backend).champion_changed(uri, champion_f1(record.metrics if record is not None else {}))

        safely(write, "record the champion's keys")

    return record


def _max_body_bytes(cfg: ArenaConfig) -> int:
    # JSON may spend up to 6 bytes per character (\uXXXX escapes); plus room for the envelope.
    return cfg.api.max_batch_size * cfg.api.max_text_length * 6 + 64 * 1024


def create_app(
    cfg: ArenaConfig,
    *,
    store: Store | None = None,
    queue: QueueBackend | None = None,
    defender: Defender | None = None,
    run_jobs: bool = True,
    battle_threads: int = 2,
) -> FastAPI:
    """The API for ``cfg``. ``store``, ``queue`` and ``defender`` replace what cfg would open (tests,
    embedding); what create_app opens itself it also closes at shut-down. ``run_jobs=False`` leaves
    battles and pipeline runs to ``arena worker`` processes (needs a Redis queue)."""
    closers: list[Callable[[], None]] = []
    tokens = TokenTable.from_config(cfg.api)
    if store is None:
        cfg.home_path.mkdir(parents=True, exist_ok=True)
        store = open_store(cfg.storage_url, retry_window_s=cfg.storage.retry_window_s)
        closers.append(store.close)
    if queue is None:
        queue = open_queue(cfg.queue.url)
        closers.append(queue.close)
    if not tokens.configured and not tokens.allow_anonymous:
        log.warning("no API tokens are configured and api.allow_anonymous is false: every request will get 401")
    watch = cfg.monitoring
    live = LiveSignals(drift_window=watch.drift_window, drift_min_texts=watch.drift_min_texts) if watch.enabled else None
    metrics = ArenaMetrics(live)
    champion = ChampionHolder(cfg, store, defender)
    ctx = ServiceContext(cfg=cfg, store=store, backend=queue, runs=PipelineRunStore(store), champion=champion,
                         metrics=metrics)
    champion.on_load = _champion_keys(ctx)
    sampler = None
    if live is not None and watch.review_sampling and watch.review_per_minute > 0:
        sampler = ReviewSampler(LiveSampleStore(store), retention_days=watch.review_retention_days)
    monitor = LiveMonitor(watch, live, sampler.offer if sampler is not None else None) if live is not None else None
    batcher = MicroBatcher(
        _score_with(champion, monitor), max_batch=cfg.inference.batch_size,
        max_wait_s=cfg.api.micro_batch_wait_ms / 1000,
        on_batch=metrics.classify_batch_size.observe,
    )
    workers = jobs.WorkerPool(
        ctx, battle_threads=battle_threads if run_jobs else 0, pipeline_threads=1 if run_jobs else 0,
        watch_champion=defender is None,
    )
    if not run_jobs and queue.kind == "memory":
        log.warning("jobs are disabled and the queue is in-process: battles and pipeline runs will never start")
    state = AppState(ctx=ctx, tokens=tokens, limiter=RateLimiter(queue, cfg.api.rate_limit_per_minute, registry=metrics.registry),
                     batcher=batcher, workers=workers, load_champion_at_start=defender is None, closers=closers,
                     alerts=AlertStore(store), sampler=sampler)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(state.start_background)
        await state.batcher.start()
        try:
            yield
        finally:
            await state.batcher.stop()
            await asyncio.to_thread(state.stop_background)

    app = FastAPI(
        title="Content Arena API",
        version=API_VERSION,
        description=(
            "Adversarial battles, model registry, classification and the retraining pipeline. "
            "Send `Authorization: Bearer <token>`; /health, /ready and /api/v1/metrics need no token."
        ),
        lifespan=lifespan,
    )
    app.state.arena = state
    app.include_router(router)
    app.include_router(alerts_router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(QueueUnavailable, _queue_unavailable)
    app.add_exception_handler(RegistryError, _registry_unavailable)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _store_unavailable)
    if queue.kind == "redis":
        import redis

        app.add_exception_handler(redis.RedisError, _queue_unavailable)
    if cfg.api.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cfg.api.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"], allow_credentials=False,
        )
    docs_paths = frozenset(p for p in (app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url) if p)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, plain_routes=docs_paths,
                       max_body_bytes=_max_body_bytes(cfg), max_header_bytes=cfg.api.max_header_bytes)
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several worker processes): config from $ARENA_CONFIG and env;
    ARENA_SERVICE_NO_JOBS=1 leaves battles and pipeline runs to ``arena worker``."""
    import os

    from content_arena.service.logs import configure_logging

    configure_logging()
    return create_app(load_config(), run_jobs=os.environ.get("ARENA_SERVICE_NO_JOBS") != "1")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 listing each bad field and why, without echoing the input back."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "invalid value")),
         "type": str(error.get("type", "value_error"))}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


# What a client sees when a backend does not answer: fixed strings. The exception (host, port, SQL,
# parameters) goes to the log with the request id only.
QUEUE_UNAVAILABLE = "the job queue is unavailable, retry later"
REGISTRY_UNAVAILABLE = "the model registry is unavailable, retry later"
STORE_UNAVAILABLE = "the database is unavailable, retry later"


def _unavailable(request: Request, exc: Exception, what: str, detail: str) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.warning("%s unavailable: %s", what, jobs.first_line(exc), extra={"request_id": request_id})
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


async def _queue_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 when Redis (locks, job queues) does not answer."""
    return _unavailable(request, exc, "queue", QUEUE_UNAVAILABLE)


async def _registry_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 when the model registry does not answer (instead of a 500, or a 404 that says a
    registered version does not exist)."""
    return _unavailable(request, exc, "model registry", REGISTRY_UNAVAILABLE)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database does not answer (server down or restarting, after the store's own
    retries), instead of a 500: the request can be retried and nothing was half-written."""
    return _unavailable(request, exc, "store", STORE_UNAVAILABLE)


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        body = {"detail": [{"loc": ["body"], "msg": "request body is not valid UTF-8", "type": "unicode_error"}]}
        return JSONResponse(body, status_code=422)
    return await http_exception_handler(request, exc)
