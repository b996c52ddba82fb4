"""Background work: battles and pipeline runs, taken from the job queues by worker threads.

The API only records a job and pushes it (``queue:battles``, ``queue:retrain_trigger``); the threads of a
:class:`WorkerPool` (inside ``arena serve`` by default, or in ``arena worker`` processes with Redis) pop
and run it.

* A battle is played by whoever holds its lease (``lock:battle:<id>``, a short TTL refreshed while it
  plays). A battle left ``running`` with no live lease belongs to a dead worker: :func:`recover_orphans`
  puts it back to ``pending`` and queues it again; the runner then skips the rounds already written.
  If it cannot be resumed (model or strategy gone) it is marked failed with the reason.
* A pipeline run holds the training lock (owner = run id) from the trigger until it ends, so there is
  at most one run across every replica. A run whose lock is gone was orphaned and is marked failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from content_arena.config import ArenaConfig
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.queue import (
    JobQueue,
    TrainingLock,
    battle_lease_key,
    battle_progress_key,
    battle_status_key,
    battle_stop_key,
)
from content_arena.service.context import ServiceContext
from content_arena.service.metrics import pipeline_decision
from content_arena.service.quality import invalidate_quality_report
from content_arena.service.runs import ACTIVE_STATUSES
from content_arena.store import Store

log = logging.getLogger(__name__)

BATTLE_LEASE_TTL_S = 30.0
STOP_FLAG_TTL_S = 24 * 3600.0
CACHE_TTL_S = 3600.0
MAINTENANCE_INTERVAL_S = 30.0
MAX_EXTRA_DEFENDERS = 2
WORKER_RESTARTED = "worker restarted"


def execute_pipeline(cfg: ArenaConfig) -> dict[str, Any]:
    """One adversarial-loop run; the summary as a dict. (Tests about trigger concurrency replace this.)"""
    from content_arena.orchestrator import run_pipeline

    return run_pipeline(cfg).to_dict()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:500] if line else type(exc).__name__


class LeaseKeeper:
    """Refreshes a lock every ttl/3 seconds in a thread; ``lost`` turns True if the lock was taken away."""

    def __init__(self, lock: TrainingLock, owner: str, ttl_s: float) -> None:
        self.lock = lock
        self.owner = owner
        self.ttl_s = ttl_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{lock.name}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.lock.refresh(self.owner, self.ttl_s):
                    self.lost = True
                    log.warning("lost lock %s held by %s", self.lock.name, self.owner)
                    return
            except Exception as exc:  # a blip in Redis: try again next period
                log.warning("could not refresh lock %s: %s", self.lock.name, first_line(exc))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class CountingStore:
    """The store, with every round batch also counted in ``arena_rounds_total``."""

    def __init__(self, store: Store, count: Callable[[list[dict[str, Any]]], None]) -> None:
        self._store = store
        self._count = count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def add_rounds(self, battle_id: str, rounds: Sequence[Mapping[str, Any]]) -> int:
        inserted = self._store.add_rounds(battle_id, rounds)
        self._count([dict(r) for r in rounds])
        return inserted


# ------------------------------------------------------------------------------------------ battles


def battle_seeds(ctx: ServiceContext, seed_source: str, limit: int | None = None) -> list[Example]:
    """Toxic seed texts: the configured dataset's fit split ("seed", as the loop attacks) or the stored training data.

    ``limit`` is the battle's recorded seed count, so a resumed battle plays the same plan even if more
    training data has been stored since (samples are only ever appended).
    """
    if seed_source == "training_data":
        seeds = [Example(s.text, 1) for s in ctx.store.list_training_samples() if s.label == 1]
    else:
        from content_arena.orchestrator import load_splits

        seeds = load_splits(ctx.cfg).seeds
    return seeds[:limit] if limit else seeds


class DefenderCache:
    """Defenders for battles against versions other than the served champion (e.g. the challenger)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, Defender] = {}

    def get(self, ctx: ServiceContext, model_version: str | None) -> Defender:
        from content_arena.defender import ModelNotFound, load_defender

        champion = ctx.champion.current()
        if champion is not None and champion.ready and (model_version is None or champion.version == model_version):
            return champion
        if model_version is None:
            raise ModelNotFound("no champion is loaded")
        with self._lock:
            if model_version in self._loaded:
                return self._loaded[model_version]
            location = ctx.champion.registry.uri(int(model_version)) if model_version.isdigit() else model_version
            defender = load_defender(location, ctx.cfg)
            defender.version = model_version
            if len(self._loaded) >= MAX_EXTRA_DEFENDERS:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[model_version] = defender
            return defender


def request_battle_stop(ctx: ServiceContext, battle_id: str) -> None:
    ctx.backend.cache_set(battle_stop_key(battle_id), {"requested_at": time.time()}, STOP_FLAG_TTL_S)


def _cache_battle_status(ctx: ServiceContext, battle_id: str, status: str, **extra: Any) -> None:
    try:
        ctx.backend.cache_set(
            battle_status_key(battle_id), {"status": status, "worker": ctx.worker_id, "at": time.time(), **extra},
            CACHE_TTL_S,
        )
    except Exception as exc:  # the cache is a convenience; the store is the record
        log.warning("could not cache battle status: %s", first_line(exc))


def run_battle_job(
    ctx: ServiceContext, battle_id: str, shutting_down: threading.Event, defenders: DefenderCache
) -> str:
    """Play (or resume) one battle; returns what happened: completed|stopped|failed|skipped|busy|interrupted."""
    from content_arena.attack_runner import AttackRunner, BattleStopped
    from content_arena.attacks import resolve_strategies

    store = ctx.store
    lease = ctx.backend.lock(battle_lease_key(battle_id))
    if not lease.acquire(ctx.worker_id, BATTLE_LEASE_TTL_S):
        log.info("battle %s is being played by %s", battle_id, lease.holder())
        return "busy"
    keeper = LeaseKeeper(lease, ctx.worker_id, BATTLE_LEASE_TTL_S).start()
    try:
        battle = store.get_battle(battle_id)
        if battle is None or battle.status in ("completed", "stopped"):
            return "skipped"
        if ctx.backend.cache_get(battle_stop_key(battle_id)) is not None:
            store.update_battle(battle_id, status="stopped", finished=True)
            return "stopped"
        try:
            strategies = resolve_strategies(list(battle.strategies), llm=ctx.cfg.llm_options())
            defender = defenders.get(ctx, battle.model_version)
            seeds = battle_seeds(ctx, battle.params.get("seed_source", "seed"), battle.params.get("n_seed_texts"))
            if not seeds:
                raise ValueError("no toxic seed texts")
        except Exception as exc:
            restarted = battle.error is not None and battle.error.startswith(WORKER_RESTARTED)
            reason = f"{WORKER_RESTARTED}; cannot resume: {first_line(exc)}" if restarted else (
                f"cannot start: {first_line(exc)}"
            )
            store.update_battle(battle_id, status="failed", error=reason, finished=True)
            _cache_battle_status(ctx, battle_id, "failed")
            log.warning("battle %s failed: %s", battle_id, reason)
            return "failed"

        def should_stop() -> bool:
            return shutting_down.is_set() or keeper.lost or ctx.backend.cache_get(battle_stop_key(battle_id)) is not None

        def on_progress(done: int, total: int) -> None:
            ctx.backend.cache_set(
                battle_progress_key(battle_id), {"rounds_completed": done, "rounds_planned": total}, CACHE_TTL_S
            )

        runner = AttackRunner(
            defender, CountingStore(store, ctx.metrics.count_rounds), strategies,  # type: ignore[arg-type]
            batch_size=int(battle.params.get("batch_size") or ctx.cfg.attack.batch_size), seed=battle.seed,
            should_stop=should_stop, on_progress=on_progress,
        )
        _cache_battle_status(ctx, battle_id, "running")
        log.info("battle %s: playing %d rounds", battle_id, battle.rounds_planned,
                 extra={"battle_id": battle_id, "model_version": battle.model_version})
        try:
            summary = runner.run(battle_id, seeds)
        except BattleStopped:
            if ctx.backend.cache_get(battle_stop_key(battle_id)) is not None:
                _cache_battle_status(ctx, battle_id, "stopped")
                return "stopped"
            # Shutting down (or the lease was lost): not the user's stop, so it goes back to pending.
            store.update_battle(battle_id, status="pending", error="interrupted by a worker shutdown; will resume")
            if ctx.backend.kind != "memory":
                ctx.backend.battle_queue.push({"battle_id": battle_id})
            return "interrupted"
        except Exception as exc:
            log.exception("battle %s failed", battle_id)
            # The runner records failures inside its loop; one raised before it (or while recording it,
            # e.g. the database went away) would otherwise leave the battle pending with no error.
            try:
                current = store.get_battle(battle_id)
                if current is not None and current.status in ("pending", "running"):
                    store.update_battle(battle_id, status="failed", error=f"{type(exc).__name__}: {first_line(exc)}",
                                        finished=True)
            except Exception as again:
                log.warning("battle %s: could not record the failure: %s", battle_id, first_line(again))
            _cache_battle_status(ctx, battle_id, "failed")
            return "failed"
        _cache_battle_status(ctx, battle_id, summary.status)
        _publish_battle(ctx, summary.to_dict(), battle.model_version)
        invalidate_quality_report(ctx.backend)
        log.info("battle %s %s: %d rounds, evasion %.3f", battle_id, summary.status, summary.rounds,
                 summary.evasion_rate, extra={"battle_id": battle_id})
        return summary.status
    finally:
        keeper.stop()
        lease.release(ctx.worker_id)


# ---------------------------------------------------------------------------------------- pipeline


def queue_pipeline_run(ctx: ServiceContext, requested_by: str) -> tuple[str | None, str | None]:
    """Queue one pipeline run under the one-run rule: take the training lock (owner = a new run id), then
    record the run and push it. Returns ``(run_id, None)``, or ``(None, holder)`` when a run holds the lock.
    """
    import uuid

    run_id = uuid.uuid4().hex
    lock = ctx.backend.training_lock
    if not lock.acquire(run_id, float(ctx.cfg.queue.training_lock_ttl_s)):
        return None, lock.holder()
    try:
        ctx.runs.create(requested_by=requested_by, run_id=run_id)
        ctx.backend.retrain_queue.push({"run_id": run_id})
    except BaseException:
        lock.release(run_id)
        raise
    log.info("pipeline run %s queued", run_id, extra={"run_id": run_id})
    return run_id, None


def _publish_battle(ctx: ServiceContext, summary: dict[str, Any], model_version: str | None) -> None:
    """The ``battle_completed`` event and the detection-rate keys (see content_arena.monitoring)."""
    from content_arena.monitoring import StateKeys, safely

    safely(lambda: StateKeys(ctx.backend).battle_finished(summary, model_version,
                                                          champion_version=ctx.champion.version),
           "publish battle_completed")


def run_pipeline_job(ctx: ServiceContext, run_id: str) -> str:
    """Run one queued pipeline run that holds the training lock; returns its final status."""
    lock = ctx.backend.training_lock
    ttl = float(ctx.cfg.queue.training_lock_ttl_s)
    if lock.holder() != run_id:
        ctx.runs.mark_failed(run_id, "the training lock expired before the run started", only_if=ACTIVE_STATUSES)
        return "failed"
    if not ctx.runs.mark_running(run_id, ctx.worker_id):
        lock.release(run_id)
        return "skipped"
    keeper = LeaseKeeper(lock, run_id, ttl).start()
    started = time.perf_counter()
    log.info("pipeline run %s started", run_id, extra={"run_id": run_id})
    try:
        summary = execute_pipeline(ctx.cfg)
        decision = pipeline_decision(summary)
        ctx.runs.mark_completed(run_id, summary, decision)
        ctx.metrics.record_pipeline(summary, float(summary.get("seconds") or time.perf_counter() - started))
    except Exception as exc:
        log.exception("pipeline run %s failed", run_id, extra={"run_id": run_id})
        ctx.runs.mark_failed(run_id, first_line(exc))
        ctx.metrics.record_pipeline(None, time.perf_counter() - started)
        return "failed"
    finally:
        keeper.stop()
        lock.release(run_id)
        invalidate_quality_report(ctx.backend)
    log.info("pipeline run %s completed: %s", run_id, decision, extra={"run_id": run_id})
    if summary.get("battle"):
        _publish_battle(ctx, summary["battle"], str((summary.get("champion_before") or {}).get("version")))
    if summary.get("promoted") or summary.get("bootstrapped"):
        ctx.champion.refresh()
    return "completed"


# ---------------------------------------------------------------------------------------- recovery


def _all_battles(store: Store, status: str) -> list[Any]:
    found, offset = [], 0
    while True:
        page = store.list_battles(status=status, limit=500, offset=offset)
        found.extend(page)
        if len(page) < 500:
            return found
        offset += len(page)


def recover_orphans(ctx: ServiceContext, *, include_pending: bool, stale_after_s: float = 0.0) -> dict[str, list[str]]:
    """Requeue battles and fail pipeline runs that a dead worker left behind.

    A ``running`` battle whose lease is free (and, with ``stale_after_s``, not updated for that long) is
    set back to ``pending`` with the reason and queued again; ``include_pending`` (at start-up) also
    requeues ``pending`` battles, whose queue entries an in-process queue loses on restart. A queued
    or running pipeline run whose training lock is gone is marked failed.
    """
    report: dict[str, list[str]] = {"resumed": [], "requeued": [], "failed": [], "runs_failed": []}
    now = datetime.now(timezone.utc)
    for battle in _all_battles(ctx.store, "running"):
        if ctx.backend.lock(battle_lease_key(battle.id)).holder() is not None:
            continue
        if stale_after_s and now - battle.updated_at < timedelta(seconds=stale_after_s):
            continue
        reason = f"{WORKER_RESTARTED} after {battle.rounds_completed} of {battle.rounds_planned} rounds"
        try:
            ctx.store.update_battle(battle.id, status="pending", error=f"{reason}; resuming")
            ctx.backend.battle_queue.push({"battle_id": battle.id})
            report["resumed"].append(battle.id)
        except Exception as exc:
            log.warning("cannot requeue battle %s: %s", battle.id, first_line(exc))
            ctx.store.update_battle(battle.id, status="failed", error=reason, finished=True)
            report["failed"].append(battle.id)
    if include_pending:
        for battle in _all_battles(ctx.store, "pending"):
            if battle.id in report["resumed"] or ctx.backend.lock(battle_lease_key(battle.id)).holder():
                continue
            ctx.backend.battle_queue.push({"battle_id": battle.id})
            report["requeued"].append(battle.id)
    holder = ctx.backend.training_lock.holder()
    for run in ctx.runs.active():
        if run.id != holder and ctx.runs.mark_failed(run.id, WORKER_RESTARTED, only_if=ACTIVE_STATUSES):
            report["runs_failed"].append(run.id)
    if any(report.values()):
        log.warning("recovered orphaned work: %s", {k: len(v) for k, v in report.items()}, extra=report)
    return report


# ------------------------------------------------------------------------------------------ workers


class WorkerPool:
    """Threads that take battles and pipeline runs off the queues, plus a maintenance thread that
    recovers orphaned work and follows champion changes."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        battle_threads: int = 2,
        pipeline_threads: int = 1,
        watch_champion: bool = True,
        maintenance_interval_s: float = MAINTENANCE_INTERVAL_S,
    ) -> None:
        self.ctx = ctx
        self.battle_threads = battle_threads
        self.pipeline_threads = pipeline_threads
        self.watch_champion = watch_champion
        self.maintenance_interval_s = maintenance_interval_s
        self.stopping = threading.Event()
        self.defenders = DefenderCache()
        self._threads: list[threading.Thread] = []
        self._busy: set[str] = set()

    def start(self) -> WorkerPool:
        def spawn(name: str, target: Callable[[], None]) -> None:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

        for i in range(self.battle_threads):
            spawn(f"battle-worker-{i}", lambda: self._consume(self.ctx.backend.battle_queue, self._battle))
        for i in range(self.pipeline_threads):
            spawn(f"pipeline-worker-{i}", lambda: self._consume(self.ctx.backend.retrain_queue, self._pipeline))
        spawn("maintenance", self._maintain)
        return self

    def stop(self, timeout: float = 10.0, *, wait_idle: bool = False) -> None:
        """Ask threads to finish: battles stop at the next batch (and resume later); a pipeline run
        still going after ``timeout`` is left to the process exit and recovered on the next start.
        Idle threads leave at their next poll (within a second) and put back any job they took;
        ``wait_idle`` waits for them too (before closing a Redis connection they read from)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            if wait_idle or thread.name in self._busy:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _battle(self, job: dict[str, Any]) -> None:
        run_battle_job(self.ctx, str(job["battle_id"]), self.stopping, self.defenders)

    def _pipeline(self, job: dict[str, Any]) -> None:
        run_pipeline_job(self.ctx, str(job["run_id"]))

    def _consume(self, queue: JobQueue, handle: Callable[[dict[str, Any]], None]) -> None:
        name = threading.current_thread().name
        while not self.stopping.is_set():
            try:
                job = queue.pop(timeout=0.5)
            except Exception as exc:
                log.warning("cannot read %s: %s", queue.name, first_line(exc))
                self.stopping.wait(1.0)
                continue
            if job is None:
                continue
            if self.stopping.is_set():
                queue.push(job)  # taken while shutting down: leave it for the next worker
                return
            self._busy.add(name)
            try:
                handle(job)
            except Exception:
                log.exception("job from %s failed", queue.name)
            finally:
                self._busy.discard(name)

    def _maintain(self) -> None:
        while not self.stopping.wait(self.maintenance_interval_s):
            try:
                recover_orphans(self.ctx, include_pending=False, stale_after_s=2 * BATTLE_LEASE_TTL_S)
                if self.watch_champion:
                    self.ctx.champion.refresh()
            except Exception as exc:
                log.warning("maintenance pass failed: %s", first_line(exc))
