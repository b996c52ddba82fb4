"""CLI commands of the service, mounted by ``content_arena.cli``: ``arena serve``, ``arena worker``,
``arena db upgrade``. Heavy imports (FastAPI, uvicorn, torch, alembic) stay inside the functions."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

db_app = typer.Typer(no_args_is_help=True, help="The store's database schema (Alembic migrations).")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="arena.yaml (default: $ARENA_CONFIG or ./arena.yaml)")]


def _load(config: Path | None, *, verbose: bool = False) -> Any:
    from content_arena.config import load_config
    from content_arena.service.logs import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.INFO)
    cfg = load_config(config)
    from content_arena.threads import set_torch_threads

    set_torch_threads(cfg.inference.torch_threads or cfg.training.torch_threads)  # None: the CPU quota
    return cfg


def server_options(api: Any) -> dict[str, Any]:
    """uvicorn options from ``api``: X-Forwarded-* believed only from ``api.trusted_proxies`` (none by
    default; uvicorn alone would trust 127.0.0.1) and the request head bounded by ``api.max_header_bytes``.

    Args:
        api: the ApiConfig section.

    Returns:
        Keyword arguments for ``uvicorn.run``.
    """
    trusted = [address for address in api.trusted_proxies if address]
    options: dict[str, Any] = {"proxy_headers": bool(trusted), "h11_max_incomplete_event_size": api.max_header_bytes}
    if trusted:
        options["forwarded_allow_ips"] = ",".join(trusted)
    return options


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default api.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default api.port, 8000).")] = None,
    jobs: Annotated[bool, typer.Option("--jobs/--no-jobs", help="Run battles and pipeline runs in this process "
                                       "(--no-jobs: leave them to `arena worker`, needs queue.url=redis://…).")] = True,
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from content_arena.service.app import create_app

    cfg = _load(config, verbose=verbose)
    bind_host = host or cfg.api.host
    bind_port = port or cfg.api.port
    log = logging.getLogger(__name__)
    options: dict[str, Any] = {"host": bind_host, "port": bind_port, "log_config": None, "access_log": False,
                               "timeout_graceful_shutdown": 15, **server_options(cfg.api)}
    if cfg.api.workers > 1:
        # Several processes: each builds its app from $ARENA_CONFIG and the environment. The training
        # lock, queues and rate limits must then live in Redis, or each process would have its own.
        if not cfg.queue.url:
            typer.echo("error: api.workers > 1 needs a shared queue: set queue.url (redis://…)", err=True)
            raise typer.Exit(2)
        if config is not None:
            os.environ["ARENA_CONFIG"] = str(config)
        if not jobs:
            os.environ["ARENA_SERVICE_NO_JOBS"] = "1"
        log.info("serving on %s:%s with %d worker processes", bind_host, bind_port, cfg.api.workers)
        uvicorn.run("content_arena.service.app:create_app_from_environment", factory=True,
                    workers=cfg.api.workers, **options)
        return
    log.info("serving on %s:%s", bind_host, bind_port)
    uvicorn.run(create_app(cfg, run_jobs=jobs), **options)


def worker(
    battle_threads: Annotated[int, typer.Option(min=1, help="Battles played at once.")] = 2,
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Take battles and pipeline runs off the Redis queues and run them (no HTTP)."""
    from content_arena.queue import open_queue
    from content_arena.service.champion import ChampionHolder
    from content_arena.service.context import ServiceContext
    from content_arena.service.jobs import LOCKLESS_RUN_GRACE_S, WorkerPool, recover_orphans
    from content_arena.service.metrics import ArenaMetrics
    from content_arena.service.runs import PipelineRunStore
    from content_arena.store import open_store

    cfg = _load(config, verbose=verbose)
    if not cfg.queue.url:
        typer.echo("error: arena worker needs a shared queue: set queue.url (ARENA_QUEUE__URL=redis://…)", err=True)
        raise typer.Exit(2)
    log = logging.getLogger(__name__)
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping workers", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    store = open_store(cfg.storage_url, retry_window_s=cfg.storage.retry_window_s)
    backend = open_queue(cfg.queue.url)
    ctx = ServiceContext(cfg=cfg, store=store, backend=backend, runs=PipelineRunStore(store),
                         champion=ChampionHolder(cfg, store), metrics=ArenaMetrics())
    recover_orphans(ctx, include_pending=True, run_grace_s=LOCKLESS_RUN_GRACE_S)
    # The champion (for battles against it) loads in the background; battles against other versions
    # load their model themselves.
    threading.Thread(target=ctx.champion.refresh, name="champion-loader", daemon=True).start()
    pool = WorkerPool(ctx, battle_threads=battle_threads).start()
    log.info("worker %s consuming %s", ctx.worker_id, backend.describe())
    while not done.wait(1.0):
        pass
    pool.stop(timeout=30, wait_idle=True)
    backend.close()
    store.close()


def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    config: ConfigOpt = None,
) -> None:
    """Bring the store's database (storage.url) to the latest schema revision."""
    from content_arena.config import ConfigError, load_config
    from content_arena.store.migrations import upgrade

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        at = upgrade(cfg.storage_url, revision=revision)
    except Exception as exc:
        typer.echo(f"error: database upgrade failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                   err=True)
        raise typer.Exit(2) from None
    typer.echo(f"database at revision {at}")


def register(app: typer.Typer, pipeline_app: typer.Typer) -> None:
    """Add the service commands to the ``arena`` CLI."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")
