"""The HTTP routes. Each is a thin call into the store, the queue or the library.

Routes that touch the database are plain ``def`` (FastAPI runs them in its thread pool); /classify is
``async`` and hands texts to the micro-batcher.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from content_arena.queue import battle_lease_key
from content_arena.service import jobs
from content_arena.service.logs import describe_texts
from content_arena.service.quality import cached_quality_report, invalidate_quality_report
from content_arena.service.schemas import (
    BattleCreate,
    BattleCreated,
    BattleList,
    BattleOut,
    ClassifyOut,
    ClassifyRequest,
    ConflictOut,
    ErrorOut,
    HealthOut,
    ModelOut,
    ModelsOut,
    PipelineRunList,
    PipelineRunOut,
    PromoteOut,
    PromoteRequest,
    ReadyOut,
    ResumeOut,
    RoundsPage,
    StopOut,
    TriggerIn,
    TriggerOut,
)
from content_arena.service.security import Principal, principal_for
from content_arena.store import BattleRecord, ModelRecord

if TYPE_CHECKING:
    from content_arena.service.app import AppState

log = logging.getLogger(__name__)

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorOut, "description": "The token lacks the needed scope."},
    429: {"model": ErrorOut, "description": "Rate limit exceeded; see Retry-After."},
}
FINISHED_BATTLE = ("completed", "failed", "stopped")
PROMOTE_LOCK_TTL_S = 600.0


MAX_OFFSET = 2**31 - 1  # beyond a 64-bit integer the database driver overflows (500)


def app_state(request: Request) -> AppState:
    return request.app.state.arena


def validation_error(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


# -- auth and rate limiting -----------------------------------------------------------------------


def _client_key(request: Request) -> str:
    return "addr:" + (request.client.host if request.client else "unknown")


def _too_many(retry_after: int) -> HTTPException:
    return HTTPException(429, "rate limit exceeded", headers={"Retry-After": str(retry_after)})


def _authenticate(state: AppState, request: Request, scope: str) -> Principal:
    """Token, then scope, then the caller's bucket (runs off the event loop for Redis).

    Authentication touches no backend: a caller without a valid token gets 401 (429 once its address
    has used up its bucket of refusals, kept in this process) before the shared rate limiter or
    anything else is reached, so it can neither drain another caller's bucket nor see a backend error.
    Anonymous callers (api.allow_anonymous) share buckets per client address.
    """
    authorization = request.headers.get("authorization")
    principal = principal_for(state.tokens, authorization)
    if principal is None or (principal.anonymous and not principal.allows(scope)):
        retry = state.limiter.check_refused(_client_key(request))
        if retry:
            raise _too_many(retry)
        challenge = 'Bearer realm="content-arena"' + (', error="invalid_token"' if authorization else "")
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": challenge})
    if not principal.allows(scope):
        raise HTTPException(403, f"this operation needs the {scope} scope")
    retry = state.limiter.check(_client_key(request) if principal.anonymous else principal.key)
    if retry:
        raise _too_many(retry)
    return principal


def require(scope: str) -> Any:
    async def dependency(request: Request) -> Principal:
        state = app_state(request)
        if state.ctx.backend.kind == "memory":  # in-process buckets: no I/O, stay on the loop
            return _authenticate(state, request, scope)
        return await asyncio.to_thread(_authenticate, state, request, scope)

    return Depends(dependency)


READ = require("read")
ADMIN = require("admin")

router = APIRouter()


# -- operations -----------------------------------------------------------------------------------


@router.get("/health", response_model=HealthOut, tags=["operations"])
async def health() -> dict[str, str]:
    """The process is alive (no token needed)."""
    return {"status": "ok"}


@router.get("/ready", response_model=ReadyOut, tags=["operations"], responses={503: {"model": ReadyOut}})
def ready(request: Request) -> JSONResponse:
    """200 only when the store and the queue answer and a champion is loaded (no token needed)."""
    ctx = app_state(request).ctx
    checks = {"store": ctx.store.ping(), "queue": ctx.backend.ping(), "champion": ctx.champion.loaded}
    failed = [name for name, ok in checks.items() if not ok]
    body = {"status": "not ready" if failed else "ready", "checks": checks, "failed": failed}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/api/v1/metrics", tags=["operations"], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus exposition (no token needed)."""
    state = app_state(request)
    try:
        state.ctx.metrics.set_quality(cached_quality_report(state.ctx.store, state.ctx.backend, state.ctx.model_name))
    except Exception as exc:  # the counters are still worth serving
        log.warning("quality gauges not refreshed: %s", jobs.first_line(exc))
    return Response(state.ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/metrics/quality", tags=["operations"], responses=AUTH_RESPONSES)
def quality(request: Request, _: Principal = READ) -> dict[str, Any]:
    """Evasion rate and F1 per strategy and model version over time (model evaluations and battles)."""
    ctx = app_state(request).ctx
    return cached_quality_report(ctx.store, ctx.backend, ctx.model_name)


# -- battles --------------------------------------------------------------------------------------


def battle_out(battle: BattleRecord) -> dict[str, Any]:
    data = battle.to_dict()
    planned = battle.rounds_planned
    return {
        **{key: data[key] for key in (
            "id", "status", "model_name", "model_version", "strategies", "source", "evaded_count", "error",
            "created_at", "started_at", "finished_at",
        )},
        "seed_source": battle.params.get("seed_source", "seed"),
        "progress": {
            "rounds_completed": battle.rounds_completed,
            "rounds_planned": planned,
            "fraction": battle.rounds_completed / planned if planned else 0.0,
        },
        "evasion_rate": battle.evasion_rate,
    }


def uuid_hex(value: str) -> str | None:
    """The 32-digit hex form of a UUID given as hex or hyphenated text; None for anything else
    (ids are uuid4 hex, so nothing that is not a UUID is looked up: no NUL or 5,000-character key
    ever reaches the database)."""
    if len(value) > 36:
        return None
    try:
        return uuid.UUID(value).hex
    except ValueError:
        return None


def _battle_or_404(state: AppState, battle_id: str) -> BattleRecord:
    key = uuid_hex(battle_id)
    battle = state.ctx.store.get_battle(key) if key is not None else None
    if battle is None:
        raise HTTPException(404, "no such battle")
    return battle


def _target_version(state: AppState, alias: str) -> str | None:
    ctx = state.ctx
    if alias == "champion" and ctx.champion.loaded:
        return ctx.champion.version
    record = ctx.store.get_model_by_alias(ctx.model_name, alias)
    return None if record is None else str(record.version)


@router.post(
    "/api/v1/battles", status_code=202, response_model=BattleCreated, tags=["battles"],
    responses={**AUTH_RESPONSES, 409: {"model": ErrorOut, "description": "No model has that alias."}},
)
def create_battle(body: BattleCreate, request: Request, principal: Principal = ADMIN) -> dict[str, str]:
    """Queue a battle against the champion (or challenger); a worker plays it. Needs admin."""
    from content_arena.attacks import StrategyUnavailable, UnknownStrategyError, resolve_strategies

    state = app_state(request)
    cfg = state.ctx.cfg
    if body.rounds > cfg.api.max_rounds:
        raise validation_error(("body", "rounds"), f"at most {cfg.api.max_rounds} rounds per battle")
    spec = body.strategies if body.strategies is not None else cfg.attack.strategies
    try:
        strategies = resolve_strategies(spec, llm=cfg.llm_options())
    except (UnknownStrategyError, StrategyUnavailable) as exc:
        raise validation_error(("body", "strategies"), str(exc)) from None
    version = _target_version(state, body.model)
    if version is None:
        raise HTTPException(409, f"no model has the alias {body.model!r}")
    seeds = jobs.battle_seeds(state.ctx, body.seed_source)
    if not seeds:
        raise validation_error(("body", "seed_source"), f"no toxic texts in {body.seed_source}")
    battle_id = state.ctx.store.create_battle(
        strategies=[s.name for s in strategies], rounds=body.rounds, model_name=state.ctx.model_name,
        model_version=version, seed=cfg.attack.seed, source="api",
        params={"seed_source": body.seed_source, "model_alias": body.model, "n_seed_texts": len(seeds),
                "batch_size": cfg.attack.batch_size, "requested_by": principal.key},
    )
    state.ctx.backend.battle_queue.push({"battle_id": battle_id})
    log.info("battle %s queued", battle_id, extra={"battle_id": battle_id, "rounds": body.rounds})
    return {"id": battle_id, "status": "pending"}


@router.get("/api/v1/battles", response_model=BattleList, tags=["battles"], responses=AUTH_RESPONSES)
def list_battles(
    request: Request,
    status: str | None = Query(None, pattern="^(pending|running|completed|failed|stopped)$"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    _: Principal = READ,
) -> dict[str, Any]:
    """Battles, newest first."""
    battles = app_state(request).ctx.store.list_battles(status=status, limit=limit, offset=offset)
    return {"battles": [battle_out(b) for b in battles], "limit": limit, "offset": offset}


@router.get(
    "/api/v1/battles/{battle_id}", response_model=BattleOut, tags=["battles"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}},
)
def get_battle(battle_id: str, request: Request, _: Principal = READ) -> dict[str, Any]:
    """Status, progress and evasion rate of one battle."""
    return battle_out(_battle_or_404(app_state(request), battle_id))


@router.get(
    "/api/v1/battles/{battle_id}/rounds", response_model=RoundsPage, tags=["battles"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}},
)
def get_rounds(
    battle_id: str,
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    _: Principal = READ,
) -> dict[str, Any]:
    """A page of the battle's rounds in round order."""
    state = app_state(request)
    battle = _battle_or_404(state, battle_id)
    rounds = state.ctx.store.list_rounds(battle.id, limit=limit, offset=offset)
    return {
        "battle_id": battle.id, "total": battle.rounds_completed, "limit": limit, "offset": offset,
        "rounds": [r.to_dict() for r in rounds],
    }


@router.post(
    "/api/v1/battles/{battle_id}/stop", status_code=202, response_model=StopOut, tags=["battles"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def stop_battle(battle_id: str, request: Request, _: Principal = ADMIN) -> dict[str, Any]:
    """Ask a pending or running battle to stop; its written rounds stay. Needs admin."""
    state = app_state(request)
    battle = _battle_or_404(state, battle_id)
    if battle.status in FINISHED_BATTLE:
        raise HTTPException(409, f"battle is already {battle.status}")
    jobs.request_battle_stop(state.ctx, battle.id)
    if battle.status == "pending" and state.ctx.backend.lock(battle_lease_key(battle.id)).holder() is None:
        state.ctx.store.update_battle(battle.id, status="stopped", finished=True)
    current = state.ctx.store.get_battle(battle.id)
    return {"id": battle.id, "status": current.status if current else battle.status, "stop_requested": True}


@router.post(
    "/api/v1/battles/{battle_id}/resume", status_code=202, response_model=ResumeOut, tags=["battles"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def resume_battle(battle_id: str, request: Request, _: Principal = ADMIN) -> dict[str, Any]:
    """Queue a failed or stranded (pending or running with no live worker) battle again; only its
    missing rounds are played. 409 when it is completed, stopped or being played. Needs admin."""
    state = app_state(request)
    battle = _battle_or_404(state, battle_id)
    try:
        status = jobs.resume_battle(state.ctx, battle.id)
    except jobs.ResumeRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return {"id": battle.id, "status": status}


# -- models ---------------------------------------------------------------------------------------


def model_out(record: ModelRecord, serving_version: str | None) -> dict[str, Any]:
    data = record.to_dict()
    return {
        **{key: data[key] for key in ("name", "version", "alias", "status", "uri", "metrics", "created_at", "updated_at")},
        "serving": serving_version == str(record.version),
    }


@router.get("/api/v1/models", response_model=ModelsOut, tags=["models"], responses=AUTH_RESPONSES)
def list_models(request: Request, _: Principal = READ) -> dict[str, Any]:
    """Registered defender versions with their alias, status and recorded metrics."""
    ctx = app_state(request).ctx
    serving = ctx.champion.version
    records = ctx.store.list_models(ctx.model_name)
    return {"name": ctx.model_name, "serving_version": serving, "models": [model_out(r, serving) for r in records]}


@router.get(
    "/api/v1/models/{alias}", response_model=ModelOut, tags=["models"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}},
)
def get_model(alias: str, request: Request, _: Principal = READ) -> dict[str, Any]:
    """The champion or challenger with its recorded metrics."""
    ctx = app_state(request).ctx
    if alias not in ("champion", "challenger"):
        raise HTTPException(404, "unknown alias: use champion or challenger")
    record = ctx.store.get_model_by_alias(ctx.model_name, alias)
    if record is None:
        raise HTTPException(404, f"no model has the alias {alias}")
    return model_out(record, ctx.champion.version)


@router.post(
    "/api/v1/models/promote", response_model=PromoteOut, tags=["models"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}, 409: {"model": ConflictOut}, 503: {"model": ErrorOut}},
)
def promote_model(body: PromoteRequest, request: Request, _: Principal = ADMIN) -> Any:
    """Make ``version`` the champion (registry alias and model_metadata) and serve it. Needs admin.

    Takes the training lock for the duration, so it never races a pipeline run's own promotion.
    """
    from content_arena.model_promoter import promote
    from content_arena.model_registry import CHAMPION

    ctx = app_state(request).ctx
    lock = ctx.backend.training_lock
    owner = f"promote-{uuid.uuid4().hex}"
    if not lock.acquire(owner, PROMOTE_LOCK_TTL_S):
        return JSONResponse(
            {"detail": "a pipeline run holds the training lock", "running_run_id": lock.holder()}, status_code=409
        )
    try:
        active = ctx.runs.active()
        if active:  # the store's record, for when Redis forgot the run's lock
            return JSONResponse({"detail": "a pipeline run holds the training lock", "running_run_id": active[0].id},
                                status_code=409)
        registry = ctx.champion.registry
        if body.version not in {info.version for info in registry.versions()}:
            raise HTTPException(404, f"{ctx.model_name} version {body.version} is not registered")
        previous = registry.version_for(CHAMPION)
        for version in {body.version, previous} - {None}:
            if ctx.store.get_model(ctx.model_name, version) is None:
                ctx.store.upsert_model(name=ctx.model_name, version=version, uri=registry.uri(version), status=None)
        if previous != body.version:
            promote(registry, ctx.store, challenger_version=body.version, champion_version=previous)
            log.info("promoted version %s (was %s)", body.version, previous)
        if ctx.champion.version != str(body.version):
            ctx.champion.load_version(body.version)
        invalidate_quality_report(ctx.backend)
    finally:
        lock.release(owner)
    return {"champion_version": body.version, "previous_version": previous, "serving_version": ctx.champion.version}


# -- classify -------------------------------------------------------------------------------------


def check_texts(texts: list[str], field: str, *, max_length: int, max_batch: int) -> None:
    """422 for an empty or oversized batch, an oversized text, a NUL or a lone surrogate."""
    if not texts:
        raise validation_error(("body", field), "at least one text is needed")
    if len(texts) > max_batch:
        raise validation_error(("body", field), f"at most {max_batch} texts per request")
    for index, text in enumerate(texts):
        loc: tuple[str | int, ...] = ("body", field) if field == "text" else ("body", field, index)
        if len(text) > max_length:
            raise validation_error(loc, f"text is longer than {max_length} characters")
        if "\x00" in text:
            raise validation_error(loc, "text contains a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise validation_error(loc, "text is not valid UTF-8 (it contains a lone surrogate)") from None


@router.post(
    "/api/v1/classify", response_model=ClassifyOut, tags=["classify"],
    responses={**AUTH_RESPONSES, 503: {"model": ErrorOut, "description": "No champion is loaded."}},
)
async def classify(body: ClassifyRequest, request: Request, _: Principal = READ) -> dict[str, Any]:
    """Toxic score, label and confidence for each text, from the served champion."""
    state = app_state(request)
    api = state.ctx.cfg.api
    field = "text" if body.text is not None else "texts"
    texts = [body.text] if body.text is not None else list(body.texts or [])
    check_texts(texts, field, max_length=api.max_text_length, max_batch=api.max_batch_size)
    request.state.log_extra = describe_texts(texts)
    defender = state.ctx.champion.current()
    if defender is None or not defender.ready:
        raise HTTPException(503, "no champion model is loaded")
    scores = await state.batcher.submit(texts)
    results = defender.postprocess(np.asarray(scores, dtype=np.float32))
    return {"model_version": defender.version, "results": results}


# -- pipeline -------------------------------------------------------------------------------------


@router.post(
    "/pipeline/trigger", status_code=202, response_model=TriggerOut, tags=["pipeline"],
    responses={**AUTH_RESPONSES, 409: {"model": ConflictOut, "description": "A run is in progress."}},
)
def trigger_pipeline(request: Request, body: TriggerIn | None = None, principal: Principal = ADMIN) -> Any:
    """Queue one run of the adversarial loop (``cycles`` of it, optional body). Needs admin.

    The run holds the training lock (``lock:training``, owner = run id) from here until it ends, and
    is recorded only if the ``pipeline_runs`` table has no queued or running run (checked under a store
    lock), so a second trigger on any replica gets 409 naming the run in progress, even after Redis
    lost the lock.
    """
    plan = body or TriggerIn()
    run_id, holder = jobs.queue_pipeline_run(app_state(request).ctx, principal.key, plan.cycles, plan.until_pass)
    if run_id is None:
        return JSONResponse(
            {"detail": f"a pipeline run is already in progress: {holder}", "running_run_id": holder}, status_code=409
        )
    return {"run_id": run_id, "status": "queued"}


@router.get("/pipeline/runs", response_model=PipelineRunList, tags=["pipeline"], responses=AUTH_RESPONSES)
def list_runs(
    request: Request, limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=MAX_OFFSET), _: Principal = READ
) -> dict[str, Any]:
    """Pipeline runs, newest first."""
    return {"runs": [r.to_dict() for r in app_state(request).ctx.runs.list(limit=limit, offset=offset)]}


@router.get(
    "/pipeline/runs/{run_id}", response_model=PipelineRunOut, tags=["pipeline"],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}},
)
def get_run(run_id: str, request: Request, _: Principal = READ) -> dict[str, Any]:
    """Status of one pipeline run, with its summary when completed or its error when failed."""
    key = uuid_hex(run_id)
    run = app_state(request).ctx.runs.get(key) if key is not None else None
    if run is None:
        raise HTTPException(404, "no such pipeline run")
    return run.to_dict()
