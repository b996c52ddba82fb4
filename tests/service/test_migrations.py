"""The Alembic migrations: they build the schema the ORM and the side tables expect (pipeline_runs, alerts,
live_samples), on SQLite and PostgreSQL, adopt a database open_store and the service already created,
and run from `arena db upgrade`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import MetaData, create_engine, inspect
from sqlalchemy.pool import NullPool

from content_arena.live_samples import LiveSampleStore
from content_arena.monitoring import ReviewCandidate
from content_arena.service.alerts import AlertIn, AlertStore
from content_arena.service.runs import PipelineRunStore
from content_arena.store import normalize_url, open_store
from content_arena.store.migrations import current_revision, upgrade
from support.backends import POSTGRES_URL

TABLES = {"alembic_version", "battles", "battle_rounds", "model_metadata", "training_data", "pipeline_runs", "alerts",
          "live_samples"}
HEAD = "0002"


def schema_differences(url: str, schema: str | None = None) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty = identical)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from content_arena.store.models import Base
    from content_arena.store.side_tables import metadata as side_metadata

    combined = MetaData()
    for table in (*Base.metadata.tables.values(), *side_metadata.tables.values()):
        table.to_metadata(combined)
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    engine = create_engine(normalize_url(url), poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, combined))
    finally:
        engine.dispose()


def exercise_store(url: str, schema: str | None = None) -> None:
    store = open_store(url, schema=schema)
    try:
        battle_id = store.create_battle(strategies=["spacing"], rounds=2)
        store.add_rounds(battle_id, [{"round_number": 0, "strategy": "spacing", "original_text": "a",
                                      "attacked_text": "a", "true_label": 1, "toxic_score": 0.2,
                                      "predicted_toxic": False, "evaded": True}])
        assert store.get_battle(battle_id).evaded_count == 1
        runs = PipelineRunStore(store)
        run_id = runs.create(requested_by="test")
        assert runs.mark_completed(run_id, {"promoted": False}, "pass")
        assert runs.get(run_id).summary == {"promoted": False}
        alerts = AlertStore(store)
        alerts.record(AlertIn(status="firing", labels={"alertname": "ArenaScoreDrift", "rollback": "true"}), "recorded",
                      None)
        assert alerts.list()[0]["alertname"] == "ArenaScoreDrift"
        samples = LiveSampleStore(store)
        assert samples.add([ReviewCandidate("검토할 문장", 0.49, 0.5, "1", "near_threshold", ["jamo"])]) == 1
        assert samples.list()[0].kinds == ["jamo"]
    finally:
        store.close()


def test_upgrade_builds_the_schema_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'arena.db'}"
    assert upgrade(url) == HEAD
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()
    assert schema_differences(url) == []
    assert upgrade(url) == HEAD  # idempotent
    exercise_store(url)


def test_upgrade_adopts_a_database_open_store_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    exercise_store(url)  # create_all and the side tables' start-up made the tables, with one row each
    assert current_revision(url) is None
    assert upgrade(url) == HEAD
    store = open_store(url)
    assert len(store.list_battles()) == 1
    store.close()
    assert schema_differences(url) == []


@pytest.mark.postgres
def test_upgrade_builds_the_schema_on_postgres(postgres_schema: str) -> None:
    assert upgrade(POSTGRES_URL, schema=postgres_schema) == HEAD
    assert current_revision(POSTGRES_URL, schema=postgres_schema) == HEAD
    engine = create_engine(normalize_url(POSTGRES_URL), poolclass=NullPool,
                           connect_args={"options": f"-csearch_path={postgres_schema}"})
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()
    assert schema_differences(POSTGRES_URL, postgres_schema) == []
    exercise_store(POSTGRES_URL, schema=postgres_schema)


def test_arena_db_upgrade_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from content_arena.cli import app

    for key in [k for k in os.environ if k.startswith("ARENA_") and not k.startswith("ARENA_TEST")]:
        monkeypatch.delenv(key)
    config = tmp_path / "arena.yaml"
    config.write_text(yaml.safe_dump({"home": str(tmp_path / ".arena")}))
    result = CliRunner().invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"database at revision {HEAD}" in result.output
    assert current_revision(f"sqlite:///{tmp_path / '.arena' / 'arena.db'}") == HEAD
    config.write_text(yaml.safe_dump({"home": str(tmp_path), "storage": {"url": "mysql://nope"}}))
    failed = CliRunner().invoke(app, ["db", "upgrade", "--config", str(config)])
    assert failed.exit_code == 2 and "error: database upgrade failed" in failed.output


def test_upgrade_from_the_baseline_adds_the_side_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    assert upgrade(url, revision="0001") == "0001"
    engine = create_engine(url)
    assert not {"alerts", "live_samples"} & set(inspect(engine).get_table_names())
    assert upgrade(url) == HEAD
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()
    assert schema_differences(url) == []
    exercise_store(url)
