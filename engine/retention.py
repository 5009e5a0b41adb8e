"""Pruning old history: finished runs (with their attempts and items) and events nothing refers to any more.

What is kept, whatever its age:
- runs in flight (queued or running), and the events they started from;
- an event while any run of it remains.

A run is old when it finished (its last change, `updated_at`) before the
cutoff; an event when it was received before it. Failed runs count as
finished: retry them before they age out, or raise RETENTION_DAYS.

It deletes in batches, each its own short transaction, so a large backlog
never holds a long lock (SQLite has one writer at a time) and an interrupted
prune simply resumes on the next call. Rows are re-checked inside each batch's
transaction (locked on PostgreSQL), so a run retried meanwhile is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.orm import Session

from engine import store
from engine.conductor import FINISHED_RUN
from engine.db import Database
from engine.models import Event, Run, StepAttempt, StepItem

log = logging.getLogger(__name__)
_FINISHED = [status.value for status in FINISHED_RUN]


@dataclass
class PruneReport:
    cutoff: datetime
    runs: int = 0
    events: int = 0
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return f"{verb} {self.runs} run(s) and {self.events} event(s) older than {self.cutoff.isoformat()}"


def _old_run_conditions(cutoff: datetime) -> list[ColumnElement[bool]]:
    return [Run.status.in_(_FINISHED), Run.updated_at < cutoff]


def _old_runs(session: Session, cutoff: datetime, limit: int, lock: bool) -> list[str]:
    query = select(Run.id).where(*_old_run_conditions(cutoff)).order_by(Run.updated_at)
    if lock:
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query.limit(limit)))


def _orphan_events(session: Session, cutoff: datetime, limit: int, lock: bool) -> list[str]:
    query = (
        select(Event.id)
        .where(Event.received_at < cutoff, ~exists().where(Run.event_id == Event.id))
        .order_by(Event.received_at)
    )
    if lock:
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query.limit(limit)))


def prune(
    db: Database, days: int, batch_size: int = 500, dry_run: bool = False, max_batches: int | None = None
) -> PruneReport:
    """Delete history older than `days`; return what was (or, dry, would be) deleted.

    Args:
        max_batches: stop after this many batches of each kind (None: until nothing is left).
    """
    cutoff = store.utcnow() - timedelta(days=days)
    report = PruneReport(cutoff=cutoff, dry_run=dry_run)
    lock = not db.is_sqlite  # SQLite's BEGIN IMMEDIATE already makes each batch the only writer
    if dry_run:
        with db.session() as session:
            report.runs = session.scalar(select(func.count()).where(*_old_run_conditions(cutoff)))
            # Events that are orphans now, plus those whose last runs the real prune would delete first.
            report.events = session.scalar(
                select(func.count()).where(
                    Event.received_at < cutoff,
                    ~exists().where(Run.event_id == Event.id, ~and_(*_old_run_conditions(cutoff))),
                )
            )
        return report
    batches = 0
    while max_batches is None or batches < max_batches:
        with db.session() as session:
            ids = _old_runs(session, cutoff, batch_size, lock)
            if not ids:
                break
            for model in (StepItem, StepAttempt):
                session.execute(delete(model).where(model.run_id.in_(ids)))
            session.execute(delete(Run).where(Run.id.in_(ids)))
            session.commit()
        report.runs += len(ids)
        batches += 1
        log.info("retention: deleted a batch of runs", extra={"count": len(ids), "cutoff": cutoff.isoformat()})
    batches = 0
    while max_batches is None or batches < max_batches:
        with db.session() as session:
            ids = _orphan_events(session, cutoff, batch_size, lock)
            if not ids:
                break
            session.execute(delete(Event).where(Event.id.in_(ids)))
            session.commit()
        report.events += len(ids)
        batches += 1
    if db.is_sqlite:
        refresh_sqlite_statistics(db)
    return report


def refresh_sqlite_statistics(db: Database) -> None:
    """Give SQLite's planner fresh row counts (PostgreSQL's autovacuum does this by itself).

    Without them SQLite can pick an index that turns a 10 ms page of runs into
    seconds (bench/ops_queries.py); the nightly prune is the natural moment.
    `analysis_limit` keeps it approximate and quick on a large ledger.
    """
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
