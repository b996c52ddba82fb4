"""Pipeline runs started through the API: a ``pipeline_runs`` table on the store's database.

The table is a side table of the store (:mod:`content_arena.store.side_tables`): created on the store's
engine, so it lands in the same database and PostgreSQL schema; the Alembic revisions create it too.

The one-run rule lives here, not only in the Redis training lock (which a Redis restart without
persistence forgets): :meth:`PipelineRunStore.create_if_idle` checks for a queued or running run and
inserts the new one in a single transaction under a store-wide lock.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update

from content_arena.store import Store
from content_arena.store.models import utc_now
from content_arena.store.records import Record
from content_arena.store.side_tables import SideTable, pipeline_runs

# PostgreSQL advisory lock (transaction scope) that serialises "is a run active? then insert one".
RUN_GATE_LOCK_ID = 0x4152454E41  # "ARENA"

RUN_STATUSES = ("queued", "running", "completed", "failed")
ACTIVE_STATUSES = ("queued", "running")

@dataclass(frozen=True)
class PipelineRun(Record):
    id: str
    status: str
    requested_by: str
    worker: str | None
    decision: str | None
    summary: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class PipelineRunStore(SideTable):
    """Create, update and read pipeline runs; every call is one transaction."""

    table = pipeline_runs

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._gate = threading.Lock()

    def create_if_idle(self, *, requested_by: str, run_id: str | None = None) -> tuple[str, PipelineRun | None]:
        """Record a queued run unless a run is queued or running.

        The check and the insert are one transaction under a lock every replica shares: a PostgreSQL
        transaction-level advisory lock, or SQLite's write lock (BEGIN IMMEDIATE) plus this process's
        lock. So concurrent triggers record at most one active run, whatever Redis remembers.

        Args:
            requested_by: who asked (a token key).
            run_id: the new run's id (a fresh uuid4 hex when None).

        Returns:
            (the new run's id, None) when recorded; (run_id, the active run) when refused.
        """
        run_id = run_id or uuid.uuid4().hex
        with self._gate, self._transaction(write=True) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RUN_GATE_LOCK_ID})
            row = connection.execute(
                select(pipeline_runs).where(pipeline_runs.c.status.in_(ACTIVE_STATUSES)).limit(1)
            ).first()
            if row is not None:
                return run_id, PipelineRun.from_row(row)
            connection.execute(
                pipeline_runs.insert().values(id=run_id, status="queued", requested_by=requested_by, created_at=utc_now())
            )
        return run_id, None

    def create(self, *, requested_by: str, run_id: str | None = None) -> str:
        run_id = run_id or uuid.uuid4().hex
        with self._transaction() as connection:
            connection.execute(
                pipeline_runs.insert().values(
                    id=run_id, status="queued", requested_by=requested_by, created_at=utc_now()
                )
            )
        return run_id

    def get(self, run_id: str) -> PipelineRun | None:
        with self._transaction() as connection:
            row = connection.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id)).first()
        return None if row is None else PipelineRun.from_row(row)

    def list(self, *, limit: int = 20, offset: int = 0, status: str | None = None) -> list[PipelineRun]:
        query = select(pipeline_runs).order_by(pipeline_runs.c.created_at.desc(), pipeline_runs.c.id)
        if status is not None:
            query = query.where(pipeline_runs.c.status == status)
        with self._transaction() as connection:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
        return [PipelineRun.from_row(row) for row in rows]

    def active(self) -> list[PipelineRun]:
        query = select(pipeline_runs).where(pipeline_runs.c.status.in_(ACTIVE_STATUSES))
        with self._transaction() as connection:
            return [PipelineRun.from_row(row) for row in connection.execute(query).all()]

    def _set(self, run_id: str, *, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        statement = update(pipeline_runs).where(pipeline_runs.c.id == run_id)
        if only_if is not None:
            statement = statement.where(pipeline_runs.c.status.in_(only_if))
        with self._transaction() as connection:
            return connection.execute(statement.values(**values)).rowcount > 0

    def mark_running(self, run_id: str, worker: str) -> bool:
        return self._set(run_id, only_if=("queued",), status="running", worker=worker, started_at=utc_now())

    def mark_completed(self, run_id: str, summary: dict[str, Any], decision: str) -> bool:
        return self._set(run_id, status="completed", summary=summary, decision=decision, finished_at=utc_now())

    def mark_failed(self, run_id: str, error: str, *, only_if: tuple[str, ...] | None = None) -> bool:
        return self._set(
            run_id, only_if=only_if, status="failed", decision="failed", error=error[:2000], finished_at=utc_now()
        )
