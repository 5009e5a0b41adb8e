"""Ledger operations: every read and write of events, runs and attempts goes through here.

Callers own the session and the commit, so one unit of work (e.g. "the event
and its runs") is always one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from ulid import ULID

from engine.conductor import ACTIVE_RUN, AttemptStatus, Next, RunStatus, check_transition
from engine.models import Event, Run, StepAttempt, StepItem


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


def insert_event(session: Session, event: Event, runs: Sequence[Run]) -> None:
    """Commit an event with its runs atomically.

    The unique (source, dedupe_key) constraint decides duplicates, so concurrent
    deliveries of one event race safely: exactly one insert wins.

    Raises:
        DuplicateEvent: the key was already taken.
    """
    session.add(event)
    session.add_all(runs)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        original = session.scalar(
            select(Event.id).where(Event.source == event.source, Event.dedupe_key == event.dedupe_key)
        )
        if original is None:  # the constraint that failed was not the dedupe key
            raise
        raise DuplicateEvent(original) from None


def claim_attempt(session: Session, run_id: str, step_id: str, attempt: int) -> Run | None:
    """Record that this attempt has started, if it is the one the run is waiting for.

    Returns the run, or None when the job is stale or a duplicate delivery (the
    run moved on, finished, or another worker already claimed this attempt).
    """
    run = session.get(Run, run_id, with_for_update=True)
    if run is None or run.status not in ACTIVE_RUN or run.current_step != step_id or run.attempt != attempt:
        session.rollback()
        return None
    if run.status == RunStatus.QUEUED.value and run.concurrency_key and not _lane_is_free(session, run):
        session.rollback()  # it waits in its lane; the run ahead enqueues it when it finishes
        return None
    now = utcnow()
    check_transition(run.status, RunStatus.RUNNING)
    run.status = RunStatus.RUNNING.value
    run.started_at = run.started_at or now
    run.updated_at = now
    session.add(
        StepAttempt(
            run_id=run_id,
            step_id=step_id,
            step_index=run.step_index,
            attempt=attempt,
            status=AttemptStatus.STARTED.value,
            started_at=now,
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return run


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


def _lane_is_free(session: Session, run: Run) -> bool:
    return session.scalar(select(Run.id).where(Run.id == run.id, blocked_in_lane())) is None


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
    run.status = nxt.status.value
    run.current_step = nxt.step_id
    run.step_index = nxt.step_index
    run.attempt = nxt.attempt
    run.budget_start = nxt.budget_start
    run.updated_at = now
    run.error = nxt.error
    failure = nxt.failure
    run.failure, run.failed_step, run.failed_attempt = (
        (failure.message, failure.step_id, failure.attempt) if failure else (None, None, None)
    )
    if nxt.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        run.due_at = None
        run.finished_at = now
    else:
        run.finished_at = None
        run.due_at = datetime.fromtimestamp(now.timestamp() + nxt.delay, timezone.utc)
    return nxt


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
