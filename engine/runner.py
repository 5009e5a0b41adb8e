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
from datetime import datetime, timezone
from typing import Any

from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException

from engine import ledger, observe, store
from engine.conductor import FINISHED_RUN, AttemptStatus, Failure, Next, RunStatus, after_attempt, after_deferral
from engine.errors import PermanentStepError, StepDeferred, TransientStepError
from engine.foreach import run_foreach
from engine.http import CallLog
from engine.invoke import AttemptResult, Invocation, jsonable, perform
from engine.models import Run
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
        services = self.services
        claimed = ledger.claim(services.db, services.event_views, self.run_id, self.step_id, self.attempt)
        if claimed is None:
            log.info(
                "step job %s/%s#%d is stale, claimed, or waiting in its lane; skipping",
                self.run_id,
                self.step_id,
                self.attempt,
            )
            return
        spec = services.spec_for(claimed.run.workflow_hash, lambda: ledger.definition_of(services.db, self.run_id))
        started = time.perf_counter()
        try:
            result = self._attempt(spec, claimed)
        except StepDeferred as deferred:
            result = AttemptResult(AttemptStatus.DEFERRED, deferred=deferred)
        except JobTimeoutException:
            error = TransientStepError("step exceeded its job timeout", outcome_unknown=True)
            result = AttemptResult(AttemptStatus.FAILED, error=error)
        except Exception as exc:
            # A bug in a handler or the engine: fail this run visibly, then let RQ record the traceback too.
            error = PermanentStepError(f"internal error: {type(exc).__name__}: {exc}")
            self._finish(spec, claimed, AttemptResult(AttemptStatus.FAILED, error=error), started)
            raise
        self._finish(spec, claimed, result, started)

    def _attempt(self, spec: WorkflowSpec, claimed: ledger.Claim) -> AttemptResult:
        step = spec.all_steps[claimed.run.step_index]
        mine = [past for past in claimed.history if past.step_id == step.id]
        services = self.services
        connector = ConnectorContext(
            settings=services.settings,
            http=services.http,
            calls=self.calls,
            redis=services.redis,
            db=services.db,
            run_id=claimed.run.id,
            step_id=step.id,
            step_started_at=min(past.started_at for past in mine),
            deadline=time.monotonic() + step.timeout if step.timeout else None,
        )
        invocation = Invocation(
            services,
            step,
            template_context(spec, claimed),
            connector,
            reconcile=any(past.outcome_unknown for past in mine),
        )
        if step.foreach is None:
            return perform(invocation)
        return run_foreach(invocation, self.attempt)

    def _finish(self, spec: WorkflowSpec, claimed: ledger.Claim, result: AttemptResult, started: float) -> None:
        seconds = time.perf_counter() - started
        nxt = ledger.numbered(self._next(spec, claimed.run, result), claimed.history)
        outcome = _outcome(result, self.calls, seconds)
        moved = ledger.record(self.services.db, claimed, self.step_id, self.attempt, outcome, nxt)
        observe.publish(
            self.services.db.engine, _facts(spec, claimed, self.step_id, self.attempt, outcome, nxt if moved else None)
        )
        if not moved:
            return  # cancelled (or otherwise moved) while this attempt ran: its result is recorded, nothing more
        due_at = run_due_at(nxt)
        enqueue_next(self.services, self.run_id, nxt, due_at)
        if nxt.status in FINISHED_RUN and claimed.run.concurrency_key:
            wake_lane(self.services, claimed.run.concurrency_key)

    def _next(self, spec: WorkflowSpec, run: ledger.ClaimedRun, result: AttemptResult) -> Next:
        if result.deferred is not None:
            delay = result.deferred.delay
            if result.deferred.jitter:  # spread throttled steps so they do not all come back at once
                delay *= 1 + random.random() / 2
            return after_deferral(spec, run.step_index, self.attempt, run.budget_start, delay, run.failure)
        policy = self.services.default_retry.merged_with(spec.all_steps[run.step_index].retry)
        return after_attempt(
            spec, run.step_index, self.attempt, run.budget_start, result.error, policy, failure=run.failure
        )


def run_due_at(nxt: Next) -> datetime | None:
    """When the next step job is due (None: at once)."""
    return datetime.fromtimestamp(time.time() + nxt.delay, timezone.utc) if nxt.delay else None


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


def template_context(spec: WorkflowSpec, claimed: ledger.Claim) -> dict[str, Any]:
    """What `{{ … }}` may read in a step: event, steps.<id>.output/.status, vars, run."""
    steps: dict[str, dict[str, Any]] = {}
    for past in claimed.history:  # ordered by step, then attempt: the last one of each step wins
        if past.status not in (AttemptStatus.STARTED.value, AttemptStatus.DEFERRED.value):
            steps[past.step_id] = {"output": past.output, "status": past.status}
    run = claimed.run
    return {
        "event": claimed.event,
        "steps": steps,
        "vars": spec.vars,
        "run": {
            "id": run.id,
            "workflow": run.workflow,
            "error": run.failure.message if run.failure else None,
            "failed_step": run.failure.step_id if run.failure else None,
        },
    }


def _outcome(result: AttemptResult, calls: CallLog, seconds: float) -> dict[str, Any]:
    """The attempt row's columns for how it ended."""
    error, deferred = result.error, result.deferred
    message = error.message if error else (f"deferred: {deferred.reason}" if deferred else None)
    return {
        "status": result.status.value,
        "input": result.input,
        "output": jsonable(result.output) if result.output is not None else None,
        "calls": jsonable(calls.calls),
        "reconciled": result.reconciled,
        "duration_ms": round(seconds * 1000, 2),
        "error_class": error.kind if error else None,
        "error_message": message,
        "outcome_unknown": bool(error and error.outcome_unknown),
    }


def _facts(
    spec: WorkflowSpec, claimed: ledger.Claim, step_id: str, attempt: int, outcome: dict[str, Any], nxt: Next | None
) -> list[observe.Fact]:
    """What metrics, logs and the failure notifier learn from this attempt (published after its commit)."""
    run = claimed.run
    calls = outcome["calls"] or []
    facts: list[observe.Fact] = [
        observe.StepFinished(
            run_id=run.id,
            event_id=run.event_id,
            workflow=run.workflow,
            step=step_id,
            operation=spec.all_steps[run.step_index].uses,
            attempt=attempt,
            status=outcome["status"],
            duration_ms=outcome["duration_ms"],
            error=outcome["error_message"],
            http_statuses=[call.get("status") for call in calls],
            budget_waits=[call["waited_ms"] / 1000 for call in calls if call.get("waited_ms")],
            retry_scheduled=nxt is not None and nxt.step_id == step_id and outcome["status"] == "failed",
        )
    ]
    if nxt is not None and nxt.status in FINISHED_RUN:
        failed_step = nxt.step_id if nxt.status == RunStatus.FAILED else None
        duration = round((store.utcnow() - run.started_at).total_seconds() * 1000, 1)
        facts.append(
            observe.RunFinished(run.id, run.event_id, run.workflow, nxt.status.value, nxt.error, failed_step, duration)
        )
    return facts
