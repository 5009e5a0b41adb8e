"""Operator actions on runs (API, console and CLI share these): retry, bulk retry, cancel."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from engine import queries, store
from engine.conductor import ACTIVE_RUN, RunStatus, check_transition, retry_failed
from engine.models import Run, StepAttempt
from engine.runner import enqueue_next, wake_lane
from engine.services import Services
from schemas.api import BulkRetryIn, RunFilter


class RunNotFound(LookupError):
    pass


class RunConflict(Exception):
    """The action does not apply to the run in its current state; the message says why."""


def retry_run(services: Services, run_id: str) -> Run:
    """Resume a failed run at its failed step (same run id); succeeded steps are not run again.

    Raises:
        RunNotFound: no such run.
        RunConflict: the run is not failed, or failed before any step ran.
    """
    with services.db.session() as session:
        run = session.get(Run, run_id, with_for_update=True)
        if run is None:
            raise RunNotFound(run_id)
        if run.status != RunStatus.FAILED.value:
            raise RunConflict(f"run {run_id} is {run.status}; only failed runs can be retried")
        last = session.scalar(
            select(StepAttempt)
            .where(StepAttempt.run_id == run_id, StepAttempt.step_id == run.current_step)
            .order_by(StepAttempt.attempt.desc())
            .limit(1)
        )
        if last is None:
            raise RunConflict(
                f"run {run_id} failed before its first step ({run.error}); fix the workflow and "
                "replay the event instead"
            )
        nxt = retry_failed(run.current_step, run.step_index, last.attempt)
        nxt = store.apply_next(session, run, nxt, store.utcnow())
        session.commit()
    enqueue_next(services, run.id, nxt, None)
    return run


def cancel_run(services: Services, run_id: str, reason: str = "cancelled by an operator") -> Run:
    """Stop a queued or running run for good; it never runs another step.

    A step already executing finishes its call (it cannot be taken back) and is
    recorded, but the run does not move on: the runner only advances runs that
    are still running. A cancelled run that held its concurrency lane hands it
    to the next run waiting there; runs waiting in any lane are left as they are.

    Raises:
        RunNotFound: no such run.
        RunConflict: the run has already finished.
    """
    with services.db.session() as session:
        run = session.get(Run, run_id, with_for_update=True)
        if run is None:
            raise RunNotFound(run_id)
        if run.status not in {status.value for status in ACTIVE_RUN}:
            raise RunConflict(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")
        check_transition(run.status, RunStatus.CANCELLED)
        now = store.utcnow()
        run.status = RunStatus.CANCELLED.value
        run.error = reason
        run.due_at = None
        run.finished_at = now
        run.updated_at = now
        session.commit()
    if run.concurrency_key:
        wake_lane(services, run.concurrency_key)
    return run


@dataclass
class BulkRetry:
    matched: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def retry_runs(services: Services, wanted: BulkRetryIn) -> BulkRetry:
    """Retry every failed run matching the filter, oldest first, up to `wanted.limit`.

    Each run is retried in its own transaction, so one that changed meanwhile
    (retried by someone else) is skipped with the reason and the rest go on.
    """
    criteria = RunFilter.model_validate({**wanted.model_dump(exclude={"limit", "dry_run"}), "status": "failed"})
    with services.db.session() as session:
        ids = queries.matching_run_ids(session, criteria, wanted.limit)
    outcome = BulkRetry(matched=ids)
    if wanted.dry_run:
        outcome.retried = list(ids)
        return outcome
    for run_id in ids:
        try:
            retry_run(services, run_id)
        except (RunNotFound, RunConflict) as exc:
            outcome.skipped[run_id] = str(exc) if isinstance(exc, RunConflict) else f"run {run_id} no longer exists"
            continue
        outcome.retried.append(run_id)
    return outcome
