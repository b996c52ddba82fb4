"""Pipeline runs started through the API: a ``pipeline_runs`` table on the store's database.

The table has its own SQLAlchemy metadata (the store's tables are not the service's to change) and is
created on the store's engine, so it lands in the same database and PostgreSQL schema. The Alembic
revision in ``content_arena/store/migrations`` creates the same table.

The one-run rule lives here, not only in the Redis training lock (which a Redis restart without
persistence forgets): :meth:`PipelineRunStore.create_if_idle` checks for a queued or running run and
inserts the new one in a single transaction under a store-wide lock.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, MetaData, String, Table, Text, select, text, update
from sqlalchemy.dialects.postgresql import JSONB

from content_arena.store import Store
from content_arena.store.models import UtcDateTime, utc_now
from content_arena.store.store import _WRITE_TRANSACTION

# PostgreSQL advisory lock (transaction scope) that serialises "is a run active? then insert one".
RUN_GATE_LOCK_ID = 0x4152454E41  # "ARENA"

RUN_STATUSES = ("queued", "running", "completed", "failed")
ACTIVE_STATUSES = ("queued", "running")

metadata = MetaData()

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("requested_by", String(64), nullable=False),
    Column("worker", String(128)),
    Column("decision", String(16)),
    Column("summary", JSON().with_variant(JSONB(), "postgresql")),
    Column("error", Text),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
)


@dataclass(frozen=True)
class PipelineRun:
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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def _record(row: Any) -> PipelineRun:
    mapping = row._mapping
    return PipelineRun(**{item.name: mapping[item.name] for item in fields(PipelineRun)})


class PipelineRunStore:
    """Create, update and read pipeline runs; every call is one transaction."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        # An in-memory SQLite store is one shared connection guarded by the store's lock.
        self._serial = getattr(store, "_memory_lock", None) or nullcontext()
        self._gate = threading.Lock()
        with self._transaction() as connection:
            metadata.create_all(connection, checkfirst=True)

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        with self._serial, self.engine.connect() as connection:
            if write:  # SQLite: BEGIN IMMEDIATE, the database's write lock from the start
                connection.execution_options(**{_WRITE_TRANSACTION: True})
            with connection.begin():
                yield connection

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
                return run_id, _record(row)
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
        return None if row is None else _record(row)

    def list(self, *, limit: int = 20, offset: int = 0, status: str | None = None) -> list[PipelineRun]:
        query = select(pipeline_runs).order_by(pipeline_runs.c.created_at.desc(), pipeline_runs.c.id)
        if status is not None:
            query = query.where(pipeline_runs.c.status == status)
        with self._transaction() as connection:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
        return [_record(row) for row in rows]

    def active(self) -> list[PipelineRun]:
        query = select(pipeline_runs).where(pipeline_runs.c.status.in_(ACTIVE_STATUSES))
        with self._transaction() as connection:
            return [_record(row) for row in connection.execute(query).all()]

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
