"""Alembic migrations of the store's database, run by ``arena db upgrade``.

:func:`upgrade` takes a store URL (and optionally a PostgreSQL schema) and brings the database to a
revision; the alembic CLI works too with ``src/content_arena/store/alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from content_arena.store.store import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config():  # -> alembic.config.Config
    """An Alembic config pointing at these migrations, with no ini file needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _engine(url: str, schema: str | None):
    parsed = normalize_url(url)
    connect_args: dict = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
        if schema is not None:
            connect_args["options"] = f"-csearch_path={schema}"
    elif parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(parsed, poolclass=NullPool, connect_args=connect_args)


def upgrade(url: str, *, schema: str | None = None, revision: str = "head") -> str | None:
    """Upgrade the database at ``url`` to ``revision``; returns the revision it is at afterwards."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = _engine(url, schema)
    try:
        with engine.begin() as connection:
            if schema is not None and engine.dialect.name == "postgresql":
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def current_revision(url: str, *, schema: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = _engine(url, schema)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
