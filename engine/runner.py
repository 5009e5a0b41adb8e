"""The step job: claim the attempt, render, call the operation, record, enqueue what is next.

`run_step` is what RQ executes, inside the worker's Flask app context. Its
guarantees:

- A step that succeeded is never executed again: the attempt row is claimed
  (unique per run/step/attempt) before any call, and a job for a run that has
  moved on is a no-op. Duplicate queue deliveries are therefore harmless.
- The ledger is written before the next job is enqueued; if enqueueing fails,
  the reconciler finds the run and enqueues it (nothing is lost).
- A create retried after an attempt whose outcome is unknown (5xx, read
  timeout, lost worker) first looks for what that attempt made, by natural key.
- A run that finishes hands its lane to the next run waiting with the same
  concurrency key.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException
from sqlalchemy import select

from engine import store
from engine.conductor import (
    FINISHED_RUN,
    AttemptStatus,
    Failure,
    Next,
    RunStatus,
    after_attempt,
    after_deferral,
)
from engine.errors import PermanentStepError, StepDeferred, TransientStepError
from engine.foreach import run_foreach
from engine.http import CallLog
from engine.invoke import AttemptResult, Invocation, jsonable, perform
from engine.models import Event, Run, StepAttempt
from engine.operations import ConnectorContext
from engine.services import Services, current_services
from schemas.workflow import WorkflowSpec

log = logging.getLogger(__name__)


def run_step(run_id: str, step_id: str, attempt: int) -> None:
    """RQ entry point (see engine.queue.RUN_STEP)."""
    StepExecution(current_services(), run_id, step_id, attempt).execute()


class StepExecution:
    def __init__(self, services: Services, run_id: str, step_id: str, attempt: int) -> None:
        self.services = services
        self.run_id = run_id
        self.step_id = step_id
        self.attempt = attempt
        self.calls = CallLog()

    def execute(self) -> None:
        with self.services.db.session() as session:
            run = store.claim_attempt(session, self.run_id, self.step_id, self.attempt)
            if run is None:
                log.info(
                    "step job %s/%s#%d is stale, claimed, or waiting in its lane; skipping",
                    self.run_id,
                    self.step_id,
                    self.attempt,
                )
                return
            event = session.get(Event, run.event_id)
            history = store.attempts_of(session, self.run_id)
        spec = self.services.spec_for(run.workflow_hash, run.definition)
        started = time.perf_counter()
        try:
            result = self._attempt(spec, run, event, history)
        except StepDeferred as deferred:
            result = AttemptResult(AttemptStatus.DEFERRED, deferred=deferred)
        except JobTimeoutException:
            error = TransientStepError("step exceeded its job timeout", outcome_unknown=True)
            result = AttemptResult(AttemptStatus.FAILED, error=error)
        except Exception as exc:
            # A bug in a handler or the engine: fail this run visibly, then let RQ record the traceback too.
            error = PermanentStepError(f"internal error: {type(exc).__name__}: {exc}")
            self._finish(spec, AttemptResult(AttemptStatus.FAILED, error=error), started)
            raise
        self._finish(spec, result, started)

    def _attempt(self, spec: WorkflowSpec, run: Run, event: Event, history: list[StepAttempt]) -> AttemptResult:
        step = spec.all_steps[run.step_index]
        mine = [a for a in history if a.step_id == step.id]
        services = self.services
        connector = ConnectorContext(
            settings=services.settings,
            http=services.http,
            calls=self.calls,
            redis=services.redis,
            db=services.db,
            run_id=run.id,
            step_id=step.id,
            step_started_at=min(a.started_at for a in mine),
            deadline=time.monotonic() + step.timeout if step.timeout else None,
        )
        invocation = Invocation(
            services,
            step,
            template_context(spec, run, event, history),
            connector,
            reconcile=any(a.outcome_unknown for a in mine),
        )
        if step.foreach is None:
            return perform(invocation)
        return run_foreach(invocation, self.attempt)

    def _finish(self, spec: WorkflowSpec, result: AttemptResult, started: float) -> None:
        now = store.utcnow()
        with self.services.db.session() as session:
            run = session.get(Run, self.run_id, with_for_update=True)
            attempt = session.scalars(
                select(StepAttempt).filter_by(run_id=self.run_id, step_id=self.step_id, attempt=self.attempt)
            ).one()
            _record(attempt, result, self.calls, now, started)
            nxt = None
            if run.status == RunStatus.RUNNING.value and run.current_step == self.step_id:
                nxt = self._next(spec, run, result)
                nxt = store.apply_next(session, run, nxt, now)
            session.commit()
        if nxt is not None:
            enqueue_next(self.services, self.run_id, nxt, run.due_at)
            if nxt.status in FINISHED_RUN and run.concurrency_key:
                wake_lane(self.services, run.concurrency_key)

    def _next(self, spec: WorkflowSpec, run: Run, result: AttemptResult) -> Next:
        failure = failure_of(run)
        if result.deferred is not None:
            delay = result.deferred.delay
            if result.deferred.jitter:  # spread throttled steps so they do not all come back at once
                delay *= 1 + random.random() / 2
            return after_deferral(spec, run.step_index, self.attempt, run.budget_start, delay, failure)
        policy = self.services.default_retry.merged_with(spec.all_steps[run.step_index].retry)
        return after_attempt(
            spec, run.step_index, self.attempt, run.budget_start, result.error, policy, failure=failure
        )


def failure_of(run: Run) -> Failure | None:
    """The failure a run's on_failure steps are handling, if any."""
    if run.failure is None or run.failed_step is None or run.failed_attempt is None:
        return None
    return Failure(run.failure, run.failed_step, run.failed_attempt)


def enqueue_next(services: Services, run_id: str, nxt: Next, due_at: datetime | None) -> None:
    """Enqueue the step job the run now waits for; a Redis failure is left to the reconciler."""
    if nxt.step_id is None or nxt.status not in (RunStatus.RUNNING, RunStatus.QUEUED):
        return
    try:
        services.queue.enqueue(run_id, nxt.step_id, nxt.attempt, at=due_at if nxt.delay else None)
    except RedisError as exc:
        log.warning(
            "run %s: could not enqueue step %s (%s); the reconciler will re-enqueue it", run_id, nxt.step_id, exc
        )


def wake_lane(services: Services, key: str) -> None:
    """Enqueue the oldest run waiting behind a run that just finished (the reconciler is the backstop)."""
    with services.db.session() as session:
        waiting = store.next_in_lane(session, key)
    if waiting is None or waiting.current_step is None:
        return
    try:
        services.queue.wake(waiting.id, waiting.current_step, waiting.attempt)
    except RedisError as exc:
        log.warning("could not wake run %s in its lane (%s); the reconciler will", waiting.id, exc)


def template_context(spec: WorkflowSpec, run: Run, event: Event, history: list[StepAttempt]) -> dict[str, Any]:
    """What `{{ … }}` may read in a step: event, steps.<id>.output/.status, vars, run."""
    steps: dict[str, dict[str, Any]] = {}
    for attempt in history:  # ordered by step, then attempt: the last one of each step wins
        if attempt.status not in (AttemptStatus.STARTED.value, AttemptStatus.DEFERRED.value):
            steps[attempt.step_id] = {"output": attempt.output, "status": attempt.status}
    return {
        "event": event_context(event),
        "steps": steps,
        "vars": spec.vars,
        "run": {"id": run.id, "workflow": run.workflow, "error": run.failure, "failed_step": run.failed_step},
    }


def event_context(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "key": event.dedupe_key,
        "source": event.source,
        "type": event.type,
        "received_at": event.received_at.isoformat(),
        "data": event.data,
        "raw": event.data if event.raw_data is None else event.raw_data,  # the sender's payload as sent (presets)
        "headers": event.headers,
        "query": event.query,
    }


def _record(attempt: StepAttempt, result: AttemptResult, calls: CallLog, now: datetime, started: float) -> None:
    attempt.status = result.status.value
    attempt.input = result.input
    attempt.output = jsonable(result.output) if result.output is not None else None
    attempt.calls = jsonable(calls.calls)
    attempt.reconciled = result.reconciled
    attempt.finished_at = now
    attempt.duration_ms = round((time.perf_counter() - started) * 1000, 2)
    if result.error is not None:
        attempt.error_class = result.error.kind
        attempt.error_message = result.error.message
        attempt.outcome_unknown = result.error.outcome_unknown
    if result.deferred is not None:
        attempt.error_message = f"deferred: {result.deferred.reason}"
