"""Baseline: battles, battle_rounds, model_metadata, training_data and pipeline_runs.

Creates each table (with its indexes and constraints) only when it is missing, so a database that
``open_store`` already created with ``create_all`` is adopted as-is and then stamped at this revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_VALUE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("battles"):
        op.create_table(
            "battles",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("model_name", sa.String(200), nullable=False),
            sa.Column("model_version", sa.String(100)),
            sa.Column("strategies", JSON_VALUE, nullable=False),
            sa.Column("rounds_planned", sa.Integer, nullable=False),
            sa.Column("rounds_completed", sa.Integer, nullable=False),
            sa.Column("evaded_count", sa.Integer, nullable=False),
            sa.Column("seed", sa.Integer, nullable=False),
            sa.Column("source", sa.String(100), nullable=False),
            sa.Column("params", JSON_VALUE, nullable=False),
            sa.Column("error", sa.Text),
            sa.Column("created_at", TIMESTAMP, nullable=False),
            sa.Column("updated_at", TIMESTAMP, nullable=False),
            sa.Column("started_at", TIMESTAMP),
            sa.Column("finished_at", TIMESTAMP),
        )
        op.create_index("ix_battles_status", "battles", ["status"])
        op.create_index("ix_battles_created_at", "battles", ["created_at"])

    if _missing("battle_rounds"):
        op.create_table(
            "battle_rounds",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("battle_id", sa.String(64), sa.ForeignKey("battles.id", ondelete="CASCADE"), nullable=False),
            sa.Column("round_number", sa.Integer, nullable=False),
            sa.Column("strategy", sa.String(100), nullable=False),
            sa.Column("original_text", sa.Text, nullable=False),
            sa.Column("attacked_text", sa.Text, nullable=False),
            sa.Column("true_label", sa.Integer, nullable=False),
            sa.Column("toxic_score", sa.Float, nullable=False),
            sa.Column("predicted_toxic", sa.Boolean, nullable=False),
            sa.Column("evaded", sa.Boolean, nullable=False),
            sa.Column("created_at", TIMESTAMP, nullable=False),
            sa.UniqueConstraint("battle_id", "round_number", name="uq_battle_rounds_battle_round"),
        )
        op.create_index("ix_battle_rounds_battle_id", "battle_rounds", ["battle_id"])

    if _missing("model_metadata"):
        op.create_table(
            "model_metadata",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("alias", sa.String(100)),
            sa.Column("run_id", sa.String(100)),
            sa.Column("uri", sa.Text, nullable=False),
            sa.Column("sha256", sa.String(64)),
            sa.Column("metrics", JSON_VALUE, nullable=False),
            sa.Column("params", JSON_VALUE, nullable=False),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("created_at", TIMESTAMP, nullable=False),
            sa.Column("updated_at", TIMESTAMP, nullable=False),
            sa.UniqueConstraint("name", "version", name="uq_model_metadata_name_version"),
            sa.UniqueConstraint("name", "alias", name="uq_model_metadata_name_alias"),
        )

    if _missing("training_data"):
        op.create_table(
            "training_data",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("label", sa.Integer, nullable=False),
            sa.Column("source", sa.String(16), nullable=False),
            sa.Column("battle_id", sa.String(64)),
            sa.Column("strategy", sa.String(100)),
            sa.Column("text_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("created_at", TIMESTAMP, nullable=False),
        )
        op.create_index("ix_training_data_source", "training_data", ["source"])
        op.create_index("ix_training_data_battle_id", "training_data", ["battle_id"])

    if _missing("pipeline_runs"):
        op.create_table(
            "pipeline_runs",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("requested_by", sa.String(64), nullable=False),
            sa.Column("worker", sa.String(128)),
            sa.Column("decision", sa.String(16)),
            sa.Column("summary", JSON_VALUE),
            sa.Column("error", sa.Text),
            sa.Column("created_at", TIMESTAMP, nullable=False),
            sa.Column("started_at", TIMESTAMP),
            sa.Column("finished_at", TIMESTAMP),
        )
        op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"])
        op.create_index("ix_pipeline_runs_created_at", "pipeline_runs", ["created_at"])


def downgrade() -> None:
    for table in ("pipeline_runs", "battle_rounds", "training_data", "model_metadata", "battles"):
        op.drop_table(table)
