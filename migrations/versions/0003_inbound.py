"""Inbound: the sender's original payload beside the normalised data; replays of rejected events.

Additive only: two nullable columns on events. It revises 0004 (issue 7's
operations migration, which already revises 0002) to keep one linear history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("raw_data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True))
        batch.add_column(sa.Column("replay_of", sa.String(40), nullable=True))
    op.create_index("ix_events_replay_of", "events", ["replay_of"])


def downgrade() -> None:
    op.drop_index("ix_events_replay_of", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("replay_of")
        batch.drop_column("raw_data")
