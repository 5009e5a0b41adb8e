"""The ledger's tables: events, runs, step attempts.

The database is the source of truth; Redis only carries "run this step now".
Every state a run can be in is derivable from these rows, which is what lets
the reconciler rebuild the queue after Redis loses it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JsonColumn = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use datetime.now(timezone.utc)")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Event(Base):
    """One inbound request as received; rejected ones are kept for inspection."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    # The source's dedupe key; NULL for rejected events so they never collide.
    dedupe_key: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # accepted | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    content_type: Mapped[str | None] = mapped_column(String(200))
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    headers: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    query: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    # Later deliveries of the same (source, dedupe key), answered 200 duplicate and counted here (web.metrics).
    duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_duplicate_at: Mapped[datetime | None]
    # The sender's payload as sent, when a preset normalised it into `data` (else NULL: `data` is the original).
    raw_data: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    # For an event re-ingested from a rejected one by a replay: that rejected event's id.
    replay_of: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        UniqueConstraint("source", "dedupe_key", name="uq_events_source_dedupe_key"),
        Index("ix_events_received_at", "received_at"),
        # Keyset pages of the console and /api/events, newest first, per source or status.
        Index("ix_events_source_id", "source", "id"),
        Index("ix_events_status_id", "status", "id"),
        # Search across event data (engine.queries): trigram ILIKE on PostgreSQL; SQLite scans.
        Index("ix_events_data_trgm", text("(data::text) gin_trgm_ops"), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
        # Finding what a rejected event was replayed as (engine.replay).
        Index("ix_events_replay_of", "replay_of"),
    )


class Run(Base):
    """One workflow execution for one event, pinned to the definition it started with.

    `current_step`/`attempt` name the next step job that should exist; `due_at`
    is when it should run. Together they let the reconciler find a run whose job
    Redis lost.
    """

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(200))
    workflow_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    status: Mapped[str] = mapped_column(String(16))  # queued|running|succeeded|failed|cancelled
    current_step: Mapped[str | None] = mapped_column(String(100))
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # First attempt number of the current retry budget; a manual retry starts a new budget.
    budget_start: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The run's lane: runs with the same key run one at a time, oldest first.
    concurrency_key: Mapped[str | None] = mapped_column(String(255))
    # While on_failure steps run: why and where the run failed (see conductor.Failure).
    failure: Mapped[str | None] = mapped_column(Text)
    failed_step: Mapped[str | None] = mapped_column(String(100))
    failed_attempt: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_runs_status_updated_at", "status", "updated_at"),
        Index("ix_runs_workflow_created_at", "workflow", "created_at"),
        Index("ix_runs_event_id", "event_id"),
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_lane", "concurrency_key", "status", "created_at"),
        # Keyset pages (newest id first) filtered by status, or by workflow and status: engine.queries.
        Index("ix_runs_status_id", "status", "id"),
        Index("ix_runs_workflow_status_id", "workflow", "status", "id"),
    )


class StepAttempt(Base):
    """One try of one step: what was sent, what came back, how it ended.

    The unique (run_id, step_id, attempt) row is the claim that makes a
    duplicate queue delivery of the same step job a no-op.
    """

    __tablename__ = "step_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    step_id: Mapped[str] = mapped_column(String(100))
    step_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # started|succeeded|failed|skipped|deferred
    input: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    calls: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    output: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("run_id", "step_id", "attempt", name="uq_step_attempts_run_step_attempt"),
        Index("ix_step_attempts_status_started_at", "status", "started_at"),
    )


class StepItem(Base):
    """One item of a `foreach` step: its latest state, written as soon as it changes.

    Committing each item as it starts and ends is what lets a retried or
    recovered step skip the items that already succeeded and reconcile the
    one that was in flight.
    """

    __tablename__ = "step_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    step_id: Mapped[str] = mapped_column(String(100))
    item_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # started|succeeded|failed|skipped
    input: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    calls: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    output: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]
    duration_ms: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("run_id", "step_id", "item_index", name="uq_step_items_run_step_item"),)


class Xref(Base):
    """A stored mapping between an external system's id and a target id, e.g. account ref -> contactId."""

    __tablename__ = "xrefs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    map: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[Any] = mapped_column(JsonColumn)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("map", "key", name="uq_xrefs_map_key"),)
