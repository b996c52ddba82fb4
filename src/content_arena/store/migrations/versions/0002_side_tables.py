"""Side tables of the monitoring and the alert webhook: alerts and live_samples.

``pipeline_runs``, the third side table (:mod:`content_arena.store.side_tables`), is in the baseline.
Each table is created only when it is missing, so a database where the service already created it
(``checkfirst`` at start-up) is adopted as-is and then stamped at this revision.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON_VALUE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("alerts"):
        op.create_table(
            "alerts",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("fingerprint", sa.String(64)),
            sa.Column("alertname", sa.String(200), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("labels", JSON_VALUE, nullable=False),
            sa.Column("annotations", JSON_VALUE, nullable=False),
            sa.Column("starts_at", TIMESTAMP),
            sa.Column("ends_at", TIMESTAMP),
            sa.Column("received_at", TIMESTAMP, nullable=False),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("run_id", sa.String(64)),
        )
        op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
        op.create_index("ix_alerts_alertname", "alerts", ["alertname"])
        op.create_index("ix_alerts_received_at", "alerts", ["received_at"])

    if _missing("live_samples"):
        op.create_table(
            "live_samples",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("text_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("score", sa.Float, nullable=False),
            sa.Column("threshold", sa.Float, nullable=False),
            sa.Column("model_version", sa.String(100)),
            sa.Column("reason", sa.String(32), nullable=False),
            sa.Column("kinds", JSON_VALUE, nullable=False),
            sa.Column("label", sa.Integer),
            sa.Column("labelled_by", sa.String(64)),
            sa.Column("created_at", TIMESTAMP, nullable=False),
            sa.Column("labelled_at", TIMESTAMP),
        )
        op.create_index("ix_live_samples_created_at", "live_samples", ["created_at"])


def downgrade() -> None:
    for table in ("live_samples", "alerts"):
        op.drop_table(table)
