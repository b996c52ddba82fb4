"""Background work: battles and pipeline runs, taken from the job queues by worker threads.

The API only records a job and pushes it (``queue:battles``, ``queue:retrain_trigger``); the threads of a
:class:`WorkerPool` (inside ``arena serve`` by default, or in ``arena worker`` processes with Redis) pop
and run it.

* A battle is played by whoever holds its lease (``lock:battle:<id>``, a short TTL refreshed while it
  plays). A battle left ``running`` with no live lease belongs to a dead worker: :func:`recover_orphans`
  puts it back to ``pending`` and queues it again; the runner then skips the rounds already written.
  If it cannot be resumed (model or strategy gone) it is marked failed with the reason.
* A pipeline run holds the training lock (owner = run id) from the trigger until it ends; the trigger
  also checks the ``pipeline_runs`` table under a store lock, so there is at most one run across every
  replica even when Redis loses the lock. A run whose lock stays gone was orphaned and is marked failed.

Redis going away (a restart without persistence loses every key) costs no battle: the stop and
progress checks read "keep going" while it does not answer, a lease or the training lock that vanished
is taken back by its holder, and the periodic recovery requeues pending battles whose queue entry is
gone, queued runs whose lock is gone, and battles that failed because the database or the queue was
unavailable. A failed battle's ``error`` is a fixed string (:func:`content_arena.attack_runner.battle_error`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from content_arena.attack_runner import ERROR_INTERNAL, TRANSIENT_ERRORS, battle_error
from content_arena.config import ArenaConfig
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.monitoring import sharing
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
# A held lock is refreshed every ttl/3 seconds, but at least this often, so a lock that vanished with
# a Redis restart is taken back within this time.
MAX_REFRESH_PERIOD_S = 10.0
# A running pipeline run is failed as orphaned only after its lock was seen gone for this long: a live
# holder takes its lock back within MAX_REFRESH_PERIOD_S.
LOCKLESS_RUN_GRACE_S = 3 * MAX_REFRESH_PERIOD_S
# A pending battle missing from the queue is requeued only once it has not changed for this long
# (between a battle's INSERT and its push, or a pop and the lease, it is briefly in neither).
PENDING_GRACE_S = 5.0
MAX_EXTRA_DEFENDERS = 2
WORKER_RESTARTED = "worker restarted"
RESUME_REQUESTED = "resume requested"
RUN_FAILED = "the pipeline run failed (see the server log)"


def execute_pipeline(cfg: ArenaConfig, cycles: int = 1, until_pass: bool = False) -> dict[str, Any]:
    """One adversarial-loop run (``cycles`` of it); the summary as a dict. (Tests about trigger concurrency replace this.)"""
    from content_arena.coevolution import run_cycles

    return run_cycles(cfg, cycles, until_pass).to_dict()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:500] if line else type(exc).__name__


class LeaseKeeper:
    """Refreshes a lock every min(ttl/3, MAX_REFRESH_PERIOD_S) seconds in a thread.

    A lock that is simply gone (Redis restarted without persistence) is taken back. ``lost`` turns
    True when someone else holds it; with ``give_up_when_lost`` the keeper then stops, otherwise it
    keeps trying to take it back (a pipeline run: the store, not the lock, says which run is active).
    Redis not answering is logged and retried next period.
    """

    def __init__(self, lock: TrainingLock, owner: str, ttl_s: float, *, give_up_when_lost: bool = True) -> None:
        self.lock = lock
        self.owner = owner
        self.ttl_s = ttl_s
        self.period_s = min(ttl_s / 3, MAX_REFRESH_PERIOD_S)
        self.give_up_when_lost = give_up_when_lost
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{lock.name}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                if self.lock.refresh(self.owner, self.ttl_s):
                    continue
                if self.lock.acquire(self.owner, self.ttl_s):
                    log.warning("lock %s had vanished; taken back by %s", self.lock.name, self.owner)
                    continue
                self.lost = True
                log.warning("lost lock %s held by %s", self.lock.name, self.owner)
                if self.give_up_when_lost:
                    return
            except Exception as exc:  # Redis not answering: try again next period
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
        from content_arena.steps import load_splits

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


def _stop_requested(ctx: ServiceContext, battle_id: str) -> bool:
    """Whether a user asked the battle to stop; False ("keep going") while the queue does not answer."""
    try:
        return ctx.backend.cache_get(battle_stop_key(battle_id)) is not None
    except Exception as exc:
        log.warning("battle %s: stop flag unreadable, going on: %s", battle_id, first_line(exc))
        return False


def _push_battle(ctx: ServiceContext, battle_id: str) -> bool:
    """Queue a battle; False when the queue does not answer (the periodic recovery queues it later)."""
    try:
        ctx.backend.battle_queue.push({"battle_id": battle_id})
        return True
    except Exception as exc:
        log.warning("battle %s: cannot queue it now, recovery will: %s", battle_id, first_line(exc))
        return False


class ResumeRefused(RuntimeError):
    """The battle cannot be resumed now (finished, or played by a live worker); the message says why."""


def resume_battle(ctx: ServiceContext, battle_id: str) -> str:
    """Queue a failed or stranded battle again; the runner then plays only its missing rounds.

    A battle is stranded when it is pending or running and no worker holds its lease.

    Args:
        ctx: the service context.
        battle_id: an existing battle's id.

    Returns:
        The battle's status afterwards ("pending").

    Raises:
        KeyError: no such battle.
        ResumeRefused: the battle is completed or stopped, or a live worker is playing it.
    """
    battle = ctx.store.get_battle(battle_id)
    if battle is None:
        raise KeyError(battle_id)
    if battle.status in ("completed", "stopped"):
        raise ResumeRefused(f"battle is already {battle.status}")
    if battle.status in ("pending", "running") and ctx.backend.lock(battle_lease_key(battle_id)).holder() is not None:
        raise ResumeRefused("battle is being played by a worker")
    ctx.store.update_battle(battle_id, status="pending", error=RESUME_REQUESTED, reopen=True)
    ctx.backend.battle_queue.push({"battle_id": battle_id})
    log.info("battle %s: resume requested", battle_id, extra={"battle_id": battle_id})
    return "pending"


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
    """Play (or resume) one battle; returns what happened: completed|stopped|failed|skipped|busy|interrupted.

    Its store calls retry for ``storage.retry_window_s`` while the database does not answer."""
    store = ctx.store
    lease = ctx.backend.lock(battle_lease_key(battle_id))
    if not lease.acquire(ctx.worker_id, BATTLE_LEASE_TTL_S):
        log.info("battle %s is being played by %s", battle_id, lease.holder())
        return "busy"
    keeper = LeaseKeeper(lease, ctx.worker_id, BATTLE_LEASE_TTL_S).start()
    try:
        with store.long_retries():
            return _play_battle(ctx, battle_id, shutting_down, defenders, keeper)
    finally:
        keeper.stop()
        try:
            lease.release(ctx.worker_id)
        except Exception as exc:  # the lease expires by its TTL
            log.warning("battle %s: could not release the lease: %s", battle_id, first_line(exc))


def _play_battle(
    ctx: ServiceContext, battle_id: str, shutting_down: threading.Event, defenders: DefenderCache, keeper: LeaseKeeper
) -> str:
    from content_arena.attack_runner import AttackRunner, BattleStopped
    from content_arena.attacks import resolve_strategies
    from content_arena.steps import arm

    store = ctx.store
    battle = store.get_battle(battle_id)
    if battle is None or battle.status in ("completed", "stopped"):
        return "skipped"
    if _stop_requested(ctx, battle_id):
        store.update_battle(battle_id, status="stopped", finished=True)
        return "stopped"
    try:
        defender = defenders.get(ctx, battle.model_version)
        # "adaptive" searches the defender under attack, as in the loop.
        strategies = arm(resolve_strategies(list(battle.strategies), llm=ctx.cfg.llm_options()), defender)
        seeds = battle_seeds(ctx, battle.params.get("seed_source", "seed"), battle.params.get("n_seed_texts"))
        if not seeds:
            raise ValueError("no toxic seed texts")
    except Exception as exc:
        restarted = battle.error is not None and battle.error.startswith(WORKER_RESTARTED)
        cause = "no toxic seed texts" if isinstance(exc, ValueError) and str(exc) == "no toxic seed texts" else (
            battle_error(exc))
        reason = f"{WORKER_RESTARTED}; cannot resume: {cause}" if restarted else f"cannot start: {cause}"
        log.warning("battle %s failed: %s (%s)", battle_id, reason, first_line(exc), extra={"battle_id": battle_id})
        store.update_battle(battle_id, status="failed", error=reason, finished=True)
        _cache_battle_status(ctx, battle_id, "failed")
        return "failed"

    def should_stop() -> bool:
        return shutting_down.is_set() or keeper.lost or _stop_requested(ctx, battle_id)

    def on_progress(done: int, total: int) -> None:
        try:
            ctx.backend.cache_set(
                battle_progress_key(battle_id), {"rounds_completed": done, "rounds_planned": total}, CACHE_TTL_S
            )
        except Exception as exc:  # progress is also in the store; the cache is a convenience
            log.warning("battle %s: progress not cached: %s", battle_id, first_line(exc))

    runner = AttackRunner(
        defender, CountingStore(store, ctx.metrics.count_rounds), strategies,  # type: ignore[arg-type]
        batch_size=int(battle.params.get("batch_size") or ctx.cfg.attack.batch_size), seed=battle.seed,
        should_stop=should_stop, on_progress=on_progress, max_text_length=ctx.cfg.attack.max_text_length,
    )
    _cache_battle_status(ctx, battle_id, "running")
    log.info("battle %s: playing %d rounds", battle_id, battle.rounds_planned,
             extra={"battle_id": battle_id, "model_version": battle.model_version})
    try:
        summary = runner.run(battle_id, seeds)
    except BattleStopped:
        if _stop_requested(ctx, battle_id):
            _cache_battle_status(ctx, battle_id, "stopped")
            return "stopped"
        # Shutting down (or the lease was lost): not the user's stop, so it goes back to pending.
        store.update_battle(battle_id, status="pending", error="interrupted by a worker shutdown; will resume")
        if ctx.backend.kind != "memory":
            _push_battle(ctx, battle_id)
        return "interrupted"
    except Exception as exc:
        log.exception("battle %s failed", battle_id, extra={"battle_id": battle_id})
        # The runner records failures inside its loop; one raised before it (or while recording it,
        # e.g. the database went away) would otherwise leave the battle pending with no error.
        try:
            current = store.get_battle(battle_id)
            if current is not None and current.status in ("pending", "running"):
                store.update_battle(battle_id, status="failed", error=battle_error(exc), finished=True)
        except Exception as again:
            log.warning("battle %s: could not record the failure: %s", battle_id, first_line(again))
        _cache_battle_status(ctx, battle_id, "failed")
        return "failed"
    _cache_battle_status(ctx, battle_id, summary.status)
    _publish_battle(ctx, summary.to_dict(), battle.model_version)
    try:
        invalidate_quality_report(ctx.backend)
    except Exception as exc:
        log.warning("quality report not invalidated: %s", first_line(exc))
    log.info("battle %s %s: %d rounds, evasion %.3f", battle_id, summary.status, summary.rounds,
             summary.evasion_rate, extra={"battle_id": battle_id})
    return summary.status


# ---------------------------------------------------------------------------------------- pipeline


def run_error(exc: BaseException) -> str:
    """The fixed, client-safe string recorded for a pipeline run that failed with ``exc``.

    Args:
        exc: what the run failed with.

    Returns:
        A battle_error string for outages and model loading, else RUN_FAILED.
    """
    reason = battle_error(exc)
    return RUN_FAILED if reason == ERROR_INTERNAL else f"the pipeline run failed: {reason}"


def queue_pipeline_run(ctx: ServiceContext, requested_by: str, cycles: int = 1,
                       until_pass: bool = False) -> tuple[str | None, str | None]:
    """Queue one pipeline run under the one-run rule.

    The training lock is taken first (owner = a new run id); the run is recorded only if the
    ``pipeline_runs`` table has no queued or running run (checked under a store lock), so the rule holds
    even after Redis lost the lock; then it is pushed to the queue.

    Args:
        ctx: the service context.
        requested_by: who asked (a token key, or ``alert:<name>``).
        cycles: loop iterations in this run (see content_arena.coevolution).
        until_pass: stop early once the gate passes twice in a row.

    Returns:
        ``(run_id, None)``, or ``(None, holder)`` naming the run in progress.
    """
    import uuid

    run_id = uuid.uuid4().hex
    lock = ctx.backend.training_lock
    if not lock.acquire(run_id, float(ctx.cfg.queue.training_lock_ttl_s)):
        return None, lock.holder()
    try:
        _, active = ctx.runs.create_if_idle(requested_by=requested_by, run_id=run_id)
        if active is not None:
            lock.release(run_id)
            return None, active.id
        job: dict[str, Any] = {"run_id": run_id}
        if cycles != 1 or until_pass:
            job.update(cycles=cycles, until_pass=until_pass)
        try:
            ctx.backend.retrain_queue.push(job)
        except Exception as exc:  # recorded, never queued: failed, so the table does not block triggers
            ctx.runs.mark_failed(run_id, run_error(exc), only_if=("queued",))
            raise
    except BaseException:
        try:
            lock.release(run_id)
        except Exception:  # the queue is what failed: its lock expires by its TTL
            log.warning("pipeline run %s: training lock not released", run_id)
        raise
    log.info("pipeline run %s queued", run_id, extra={"run_id": run_id})
    return run_id, None


def _publish_battle(ctx: ServiceContext, summary: dict[str, Any], model_version: str | None) -> None:
    """The ``battle_completed`` event and the detection-rate keys of a battle the API played (see
    content_arena.monitoring; a pipeline run's battles publish from the loop's steps)."""
    from content_arena.monitoring import StateKeys, safely

    safely(lambda: StateKeys(ctx.backend).battle_finished(summary, model_version,
                                                          champion_version=ctx.champion.version),
           "publish battle_completed")


def run_pipeline_job(ctx: ServiceContext, run_id: str, cycles: int = 1, until_pass: bool = False) -> str:
    """Run one queued pipeline run that holds the training lock; returns its final status."""
    lock = ctx.backend.training_lock
    ttl = float(ctx.cfg.queue.training_lock_ttl_s)
    # A lock that vanished (Redis restarted) is taken back; one held by another owner means it ran out.
    if lock.holder() != run_id and not lock.acquire(run_id, ttl):
        ctx.runs.mark_failed(run_id, "the training lock expired before the run started", only_if=ACTIVE_STATUSES)
        return "failed"
    if not ctx.runs.mark_running(run_id, ctx.worker_id):
        current = ctx.runs.get(run_id)
        if current is None or current.status not in ACTIVE_STATUSES:  # a duplicate of a finished run
            lock.release(run_id)
        return "skipped"
    keeper = LeaseKeeper(lock, run_id, ttl, give_up_when_lost=False).start()
    started = time.perf_counter()
    log.info("pipeline run %s started", run_id, extra={"run_id": run_id})
    try:
        # The run's battles and promotions publish the monitoring keys and events on this process's queue.
        with sharing(ctx.backend):
            summary = (execute_pipeline(ctx.cfg) if cycles == 1 and not until_pass
                       else execute_pipeline(ctx.cfg, cycles=cycles, until_pass=until_pass))
        decision = pipeline_decision(summary)
        ctx.runs.mark_completed(run_id, summary, decision)
        ctx.metrics.record_pipeline(summary, float(summary.get("seconds") or time.perf_counter() - started))
    except Exception as exc:
        log.exception("pipeline run %s failed", run_id, extra={"run_id": run_id})
        ctx.runs.mark_failed(run_id, run_error(exc))
        ctx.metrics.record_pipeline(None, time.perf_counter() - started)
        return "failed"
    finally:
        keeper.stop()
        try:
            lock.release(run_id)
            invalidate_quality_report(ctx.backend)
        except Exception as exc:  # the lock expires by its TTL; the store says the run ended
            log.warning("pipeline run %s: could not release the training lock: %s", run_id, first_line(exc))
    log.info("pipeline run %s completed: %s", run_id, decision, extra={"run_id": run_id})
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


_lockless_since: dict[str, float] = {}
_lockless_guard = threading.Lock()


def _lockless_for(run_id: str, now: float) -> float:
    """Seconds this process has seen ``run_id`` without its lock (0 on the first sighting)."""
    with _lockless_guard:
        return now - _lockless_since.setdefault(run_id, now)


def _is_transient(error: str | None) -> bool:
    return bool(error) and any(reason in error for reason in TRANSIENT_ERRORS)


def recover_orphans(
    ctx: ServiceContext, *, include_pending: bool, stale_after_s: float = 0.0, run_grace_s: float = 0.0,
) -> dict[str, list[str]]:
    """Requeue battles and pipeline runs that a dead worker or a lost queue left behind.

    * A ``running`` battle whose lease is free (and, with ``stale_after_s``, not updated for that long)
      is set back to ``pending`` with the reason and queued again.
    * ``include_pending`` (at start-up) requeues every ``pending`` battle without a lease, since an
      in-process queue loses its entries on restart; otherwise a pending battle without a lease that is
      missing from the queue and unchanged for PENDING_GRACE_S is queued again (Redis lost it).
    * A ``failed`` battle whose error is an outage (the database or the queue was unavailable),
      unchanged for ``stale_after_s``, is set back to ``pending`` and queued: it resumes once the fault
      has cleared.
    * A ``queued`` pipeline run whose lock is gone gets it back and is queued again; any other active
      run whose lock is not its own for ``run_grace_s`` (as seen by this process) is marked failed.

    Args:
        ctx: the service context.
        include_pending: requeue every pending battle without a lease (start-up).
        stale_after_s: how long a running or failed battle must be unchanged to be taken.
        run_grace_s: how long a running pipeline run may be seen without its lock.

    Returns:
        Battle and run ids by what was done: resumed, requeued, retried, failed, runs_requeued, runs_failed.
    """
    report: dict[str, list[str]] = {"resumed": [], "requeued": [], "retried": [], "failed": [],
                                    "runs_requeued": [], "runs_failed": []}
    now = datetime.now(timezone.utc)

    def leased(battle_id: str) -> bool:
        return ctx.backend.lock(battle_lease_key(battle_id)).holder() is not None

    for battle in _all_battles(ctx.store, "running"):
        if leased(battle.id):
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
    pending = [b for b in _all_battles(ctx.store, "pending") if b.id not in report["resumed"] and not leased(b.id)]
    if not include_pending and pending:
        queued = {str(job.get("battle_id")) for job in ctx.backend.battle_queue.snapshot()}
        grace = timedelta(seconds=PENDING_GRACE_S)
        pending = [b for b in pending if b.id not in queued and now - b.updated_at >= grace]
    for battle in pending:
        ctx.backend.battle_queue.push({"battle_id": battle.id})
        report["requeued"].append(battle.id)
    for battle in _all_battles(ctx.store, "failed"):
        if not _is_transient(battle.error) or leased(battle.id):
            continue
        if stale_after_s and now - battle.updated_at < timedelta(seconds=stale_after_s):
            continue
        ctx.store.update_battle(battle.id, status="pending", error=f"resuming after: {battle.error}", reopen=True)
        ctx.backend.battle_queue.push({"battle_id": battle.id})
        report["retried"].append(battle.id)

    lock = ctx.backend.training_lock
    holder = lock.holder()
    clock = time.monotonic()
    active = ctx.runs.active()
    with _lockless_guard:
        for run_id in set(_lockless_since) - {run.id for run in active}:
            del _lockless_since[run_id]
    ttl = float(ctx.cfg.queue.training_lock_ttl_s)
    for run in active:
        if run.id == holder:
            with _lockless_guard:
                _lockless_since.pop(run.id, None)
            continue
        if run.status == "queued" and holder is None and lock.acquire(run.id, ttl):
            holder = run.id
            ctx.backend.retrain_queue.push({"run_id": run.id})
            report["runs_requeued"].append(run.id)
            continue
        if _lockless_for(run.id, clock) >= run_grace_s and ctx.runs.mark_failed(
            run.id, WORKER_RESTARTED, only_if=ACTIVE_STATUSES
        ):
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
        maintenance_interval_s: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.battle_threads = battle_threads
        self.pipeline_threads = pipeline_threads
        self.watch_champion = watch_champion
        self.maintenance_interval_s = (
            maintenance_interval_s if maintenance_interval_s is not None else ctx.cfg.queue.recovery_interval_s
        )
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
        run_pipeline_job(self.ctx, str(job["run_id"]), int(job.get("cycles", 1)), bool(job.get("until_pass", False)))

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
                recover_orphans(self.ctx, include_pending=False, stale_after_s=2 * BATTLE_LEASE_TTL_S,
                                run_grace_s=LOCKLESS_RUN_GRACE_S)
                if self.watch_champion:
                    self.ctx.champion.refresh()
            except Exception as exc:
                log.warning("maintenance pass failed: %s", first_line(exc))
