"""Ledger operations through the ORM: everything but the hot paths (those are in engine.ledger).

Callers own the session and the commit, so one unit of work (e.g. "a batch of
events and their runs") is always one transaction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session, aliased
from ulid import ULID

from engine.conductor import ACTIVE_RUN, Next, RunStatus, check_transition
from engine.models import Run, StepAttempt, StepItem


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    """Time-ordered, URL-safe ids (`evt_01J…`): sortable for keyset pagination, unguessable enough."""
    return f"{prefix}_{ULID()}"


class DuplicateEvent(Exception):
    """The source already delivered an event with this dedupe key; `event_id` is the original."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


def blocked_in_lane() -> ColumnElement[bool]:
    """True for a queued run that must wait: a run of its lane is running, or an older one is waiting.

    (created_at, id) orders a lane totally, so of two runs deciding at once only
    the older can pass; a failed run retried later waits for whichever run of
    its lane is running. Correlated on `Run`, for use in any query over runs.
    """
    ahead = aliased(Run)
    older = (ahead.created_at < Run.created_at) | ((ahead.created_at == Run.created_at) & (ahead.id < Run.id))
    return (Run.status == RunStatus.QUEUED.value) & exists().where(
        Run.concurrency_key.isnot(None),
        ahead.concurrency_key == Run.concurrency_key,
        ahead.id != Run.id,
        (ahead.status == RunStatus.RUNNING.value) | ((ahead.status == RunStatus.QUEUED.value) & older),
    )


def next_in_lane(session: Session, key: str) -> Run | None:
    """The oldest run waiting in a lane, if the lane has no running run."""
    if session.scalar(select(Run.id).where(Run.concurrency_key == key, Run.status == RunStatus.RUNNING.value).limit(1)):
        return None
    return session.scalar(
        select(Run)
        .where(Run.concurrency_key == key, Run.status == RunStatus.QUEUED.value)
        .order_by(Run.created_at, Run.id)
        .limit(1)
    )


def attempts_of(session: Session, run_id: str) -> list[StepAttempt]:
    return list(
        session.scalars(
            select(StepAttempt)
            .where(StepAttempt.run_id == run_id)
            .order_by(StepAttempt.step_index, StepAttempt.attempt)
        )
    )


def apply_next(session: Session, run: Run, nxt: Next, now: datetime) -> Next:
    """Move a run to the state the conductor decided; returns it as applied.

    A step entered afresh (attempt 1) that already has attempts, e.g. an
    on_failure step reached again after a manual retry failed once more,
    continues its numbering: each attempt row must be new for its claim to work.
    """
    if nxt.step_id is not None and nxt.attempt == 1:
        last = session.scalar(
            select(func.max(StepAttempt.attempt)).where(
                StepAttempt.run_id == run.id, StepAttempt.step_id == nxt.step_id
            )
        )
        if last is not None:
            nxt = replace(nxt, attempt=last + 1, budget_start=last + 1)
    check_transition(run.status, nxt.status)
    for column, value in run_values(nxt, now).items():
        setattr(run, column, value)
    return nxt


# The columns run_values sets: engine.ledger_pg binds each by name.
RUN_STATE_COLUMNS = (
    "status",
    "current_step",
    "step_index",
    "attempt",
    "budget_start",
    "updated_at",
    "error",
    "failure",
    "failed_step",
    "failed_attempt",
    "due_at",
    "finished_at",
)


def run_values(nxt: Next, now: datetime) -> dict[str, Any]:
    """A run's columns for the state the conductor decided (the ORM and the hot Core path both use it)."""
    failure = nxt.failure
    finished = nxt.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
    return {
        "status": nxt.status.value,
        "current_step": nxt.step_id,
        "step_index": nxt.step_index,
        "attempt": nxt.attempt,
        "budget_start": nxt.budget_start,
        "updated_at": now,
        "error": nxt.error,
        "failure": failure.message if failure else None,
        "failed_step": failure.step_id if failure else None,
        "failed_attempt": failure.attempt if failure else None,
        "due_at": None if finished else datetime.fromtimestamp(now.timestamp() + nxt.delay, timezone.utc),
        "finished_at": now if finished else None,
    }


def idle_active_runs(session: Session, idle_since: datetime, limit: int) -> list[Run]:
    """Active runs nobody has touched since `idle_since`, oldest first: candidates for a lost job."""
    return list(
        session.scalars(
            select(Run)
            .where(Run.status.in_([s.value for s in ACTIVE_RUN]), Run.updated_at < idle_since)
            .order_by(Run.updated_at)
            .limit(limit)
        )
    )


def items_of(session: Session, run_id: str) -> list[StepItem]:
    return list(session.scalars(select(StepItem).where(StepItem.run_id == run_id).order_by(StepItem.item_index)))
