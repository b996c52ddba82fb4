"""Tables beside the store's ORM models: ``pipeline_runs``, ``alerts`` and ``live_samples``.

The service and the monitoring own these tables (the ORM classes in :mod:`content_arena.store.models`
are the store's), yet they live in the same database and PostgreSQL schema as the store's tables:
:class:`SideTable` creates its table on the store's engine when it is opened (``checkfirst``, so a
database that ``arena db upgrade`` built is used as it is), and runs each call as one transaction of the
store, serialised on an in-memory SQLite store (one shared connection guarded by the store's lock).

:data:`metadata` holds all three; the Alembic revisions in ``content_arena/store/migrations`` create the
same tables, and a test checks the migrated schema against this metadata and the store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, Connection, Float, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from content_arena.store.models import UtcDateTime
from content_arena.store.store import Store

JSON_VALUE = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

#: Pipeline runs started through the API (:mod:`content_arena.service.runs`).
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("requested_by", String(64), nullable=False),
    Column("worker", String(128)),
    Column("decision", String(16)),
    Column("summary", JSON_VALUE),
    Column("error", Text),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
)

#: Alerts received on Alertmanager's webhook and what was done (:mod:`content_arena.service.alerts`).
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("fingerprint", String(64), index=True),
    Column("alertname", String(200), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("labels", JSON_VALUE, nullable=False),
    Column("annotations", JSON_VALUE, nullable=False),
    Column("starts_at", UtcDateTime),
    Column("ends_at", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("run_id", String(64)),
)

#: Live texts kept for a person to review (:mod:`content_arena.live_samples`).
live_samples = Table(
    "live_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False, unique=True),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("model_version", String(100)),
    Column("reason", String(32), nullable=False),
    Column("kinds", JSON_VALUE, nullable=False),
    Column("label", Integer),
    Column("labelled_by", String(64)),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    Column("labelled_at", UtcDateTime),
)


class SideTable:
    """One side table on a store's database: created when opened, one store transaction per call.

    Subclasses name their table in :attr:`table` and run their statements inside :meth:`_transaction`.
    """

    table: ClassVar[Table]

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        with self._transaction() as connection:
            self.table.create(connection, checkfirst=True)

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """A transaction of the store (``write=True``: SQLite's write lock from the start, BEGIN IMMEDIATE)."""
        with self.store._transaction(write=write) as connection:
            yield connection

    def _insert(self) -> Any:
        """An INSERT on :attr:`table` that supports ``on_conflict_do_nothing`` on both backends."""
        return (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(self.table)
