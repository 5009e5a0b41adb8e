"""Ledger: events, runs, step attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=True),
        sa.Column("type", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _when("received_at", False),
        sa.Column("content_type", sa.String(200), nullable=True),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("data", _json(), nullable=True),
        sa.Column("headers", _json(), nullable=False),
        sa.Column("query", _json(), nullable=False),
        sa.UniqueConstraint("source", "dedupe_key", name="uq_events_source_dedupe_key"),
    )
    op.create_index("ix_events_received_at", "events", ["received_at"])

    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("workflow_hash", sa.String(64), nullable=False),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("event_id", sa.String(40), sa.ForeignKey("events.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_step", sa.String(100), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("budget_start", sa.Integer(), nullable=False),
        _when("due_at", True),
        sa.Column("error", sa.Text(), nullable=True),
        _when("created_at", False),
        _when("updated_at", False),
        _when("started_at", True),
        _when("finished_at", True),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_event_id", "runs", ["event_id"])
    op.create_index("ix_runs_status_updated_at", "runs", ["status", "updated_at"])
    op.create_index("ix_runs_workflow_created_at", "runs", ["workflow", "created_at"])

    op.create_table(
        "step_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", _json(), nullable=True),
        sa.Column("calls", _json(), nullable=True),
        sa.Column("output", _json(), nullable=True),
        sa.Column("error_class", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False),
        sa.Column("reconciled", sa.Boolean(), nullable=False),
        _when("started_at", False),
        _when("finished_at", True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.UniqueConstraint("run_id", "step_id", "attempt", name="uq_step_attempts_run_step_attempt"),
    )
    op.create_index("ix_step_attempts_status_started_at", "step_attempts", ["status", "started_at"])


def downgrade() -> None:
    op.drop_table("step_attempts")
    op.drop_table("runs")
    op.drop_table("events")
