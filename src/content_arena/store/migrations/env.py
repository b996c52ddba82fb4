"""Alembic environment: runs on the connection :func:`content_arena.store.migrations.upgrade` passes in,
or (alembic CLI) on ``sqlalchemy.url`` / the configured ``storage.url``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine
from sqlalchemy.pool import NullPool

from content_arena.store.models import Base
from content_arena.store.side_tables import metadata as side_metadata
from content_arena.store.store import normalize_url

config = context.config


def target_metadata() -> MetaData:
    """The store's tables and the side tables (pipeline_runs, alerts, live_samples): what autogenerate
    compares against."""
    combined = MetaData()
    for table in (*Base.metadata.tables.values(), *side_metadata.tables.values()):
        table.to_metadata(combined)
    return combined


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from content_arena.config import load_config

    return load_config().storage_url


def run_offline() -> None:
    context.configure(url=str(normalize_url(_url())), target_metadata=target_metadata(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(normalize_url(_url()), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata())
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
