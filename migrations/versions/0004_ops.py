"""Operations: duplicate-delivery counts on events; indexes for the console's keyset pages and search.

Additive only. On PostgreSQL the event search (`data` as text, ILIKE) gets a
trigram index when the pg_trgm extension can be created; without it search
still works, scanning. SQLite always scans (see docs/operations.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TRGM_INDEX = "ix_events_data_trgm"


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("last_duplicate_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_events_source_id", "events", ["source", "id"])
    op.create_index("ix_events_status_id", "events", ["status", "id"])
    op.create_index("ix_runs_status_id", "runs", ["status", "id"])
    op.create_index("ix_runs_workflow_status_id", "runs", ["workflow", "status", "id"])
    if op.get_bind().dialect.name == "postgresql":
        _trigram_index()


def _trigram_index() -> None:
    """Create the search index if pg_trgm is (or can be) installed; a missing privilege is not fatal."""
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
    if not available:
        return
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.ProgrammingError:  # e.g. insufficient_privilege: search works without the index, slower
        savepoint.rollback()
        return
    savepoint.commit()
    op.execute(f"CREATE INDEX {TRGM_INDEX} ON events USING gin ((data::text) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")
    op.drop_index("ix_runs_workflow_status_id", "runs")
    op.drop_index("ix_runs_status_id", "runs")
    op.drop_index("ix_events_status_id", "events")
    op.drop_index("ix_events_source_id", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("last_duplicate_at")
        batch.drop_column("duplicates")
