"""Operator actions on runs (API and CLI share these)."""

from __future__ import annotations

from sqlalchemy import select

from engine import store
from engine.conductor import RunStatus, retry_failed
from engine.models import Run, StepAttempt
from engine.runner import enqueue_next
from engine.services import Services


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
