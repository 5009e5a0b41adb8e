"""Language: concurrency lanes and on_failure context on runs; foreach items; xrefs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("concurrency_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("failure", sa.Text(), nullable=True))
        batch.add_column(sa.Column("failed_step", sa.String(100), nullable=True))
        batch.add_column(sa.Column("failed_attempt", sa.Integer(), nullable=True))
    op.create_index("ix_runs_lane", "runs", ["concurrency_key", "status", "created_at"])

    op.create_table(
        "step_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", _json(), nullable=True),
        sa.Column("calls", _json(), nullable=True),
        sa.Column("output", _json(), nullable=True),
        sa.Column("error_class", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False),
        sa.Column("reconciled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.UniqueConstraint("run_id", "step_id", "item_index", name="uq_step_items_run_step_item"),
    )

    op.create_table(
        "xrefs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("map", sa.String(100), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("map", "key", name="uq_xrefs_map_key"),
    )


def downgrade() -> None:
    op.drop_table("xrefs")
    op.drop_table("step_items")
    op.drop_index("ix_runs_lane", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("failed_attempt")
        batch.drop_column("failed_step")
        batch.drop_column("failure")
        batch.drop_column("concurrency_key")
