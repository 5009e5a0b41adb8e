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
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException
from sqlalchemy import select

from engine import store
from engine.conductor import AttemptStatus, Next, RunStatus, after_attempt, after_deferral
from engine.errors import (
    PermanentStepError,
    RenderError,
    SpecError,
    StepDeferred,
    StepError,
    StepValidationError,
    TransientStepError,
)
from engine.http import CallLog
from engine.models import Event, Run, StepAttempt
from engine.operations import ConnectorContext, Operation
from engine.services import Services, current_services
from schemas.workflow import StepSpec, WorkflowSpec

log = logging.getLogger(__name__)


def run_step(run_id: str, step_id: str, attempt: int) -> None:
    """RQ entry point (see engine.queue.RUN_STEP)."""
    StepExecution(current_services(), run_id, step_id, attempt).execute()


@dataclass
class AttemptResult:
    status: AttemptStatus
    input: Any = None
    output: Any = None
    error: StepError | None = None
    reconciled: bool = False
    deferred: StepDeferred | None = None


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
                    "step job %s/%s#%d is stale or already claimed; skipping", self.run_id, self.step_id, self.attempt
                )
                return
            event = session.get(Event, run.event_id)
            history = store.attempts_of(session, self.run_id)
        spec = self.services.spec_for(run.workflow_hash, run.definition)
        step = spec.steps[run.step_index]
        started = time.perf_counter()
        try:
            result = self._attempt(spec, step, run, event, history)
        except StepDeferred as deferred:
            result = AttemptResult(AttemptStatus.DEFERRED, deferred=deferred)
        except JobTimeoutException:
            result = AttemptResult(
                AttemptStatus.FAILED, error=TransientStepError("step exceeded its job timeout", outcome_unknown=True)
            )
        except Exception as exc:
            # A bug in a handler or the engine: fail this run visibly, then let RQ record the traceback too.
            error = PermanentStepError(f"internal error: {type(exc).__name__}: {exc}")
            self._finish(spec, AttemptResult(AttemptStatus.FAILED, error=error), started)
            raise
        self._finish(spec, result, started)

    def _attempt(
        self, spec: WorkflowSpec, step: StepSpec, run: Run, event: Event, history: list[StepAttempt]
    ) -> AttemptResult:
        context = template_context(spec, run, event, history)
        renderer = self.services.renderer
        try:
            if not renderer.is_true(step.if_, context):
                return AttemptResult(AttemptStatus.SKIPPED)
            rendered = renderer.render(step.with_, context)
        except RenderError as exc:
            return AttemptResult(AttemptStatus.FAILED, error=StepValidationError(str(exc)))
        try:
            operation = self.services.operations.get(step.uses)
        except SpecError as exc:  # the pinned definition names an operation this version no longer has
            return AttemptResult(AttemptStatus.FAILED, error=PermanentStepError(str(exc)))
        try:
            inp = operation.input.model_validate(rendered)
        except ValidationError as exc:
            return AttemptResult(AttemptStatus.FAILED, _jsonable(rendered), error=_validation_error(exc))
        recorded = inp.model_dump(mode="json", exclude_none=True)
        try:
            output, reconciled = self._call(operation, inp, _outcome_unknown_before(history, step.id))
        except StepError as exc:
            return AttemptResult(AttemptStatus.FAILED, recorded, error=exc)
        return AttemptResult(AttemptStatus.SUCCEEDED, recorded, output, reconciled=reconciled)

    def _call(self, operation: Operation, inp: BaseModel, reconcile: bool) -> tuple[Any, bool]:
        services = self.services
        api = operation.connect(ConnectorContext(services.settings, services.http, self.calls, services.redis))
        if reconcile and operation.find_existing is not None:
            existing = operation.find_existing(api, inp)
            if existing is not None:
                log.info(
                    "run %s step %s: reconciled with an existing record instead of creating one",
                    self.run_id,
                    self.step_id,
                )
                return existing, True
        return operation.call(api, inp), False

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
                store.apply_next(run, nxt, now)
            session.commit()
        if nxt is not None:
            enqueue_next(self.services, self.run_id, nxt, run.due_at)

    def _next(self, spec: WorkflowSpec, run: Run, result: AttemptResult) -> Next:
        if result.deferred is not None:
            # Spread deferred steps out so they do not all come back at the same instant.
            delay = result.deferred.delay * (1 + random.random() / 2)
            return after_deferral(spec, run.step_index, self.attempt, run.budget_start, delay)
        policy = self.services.default_retry.merged_with(spec.steps[run.step_index].retry)
        return after_attempt(spec, run.step_index, self.attempt, run.budget_start, result.error, policy)


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
        "run": {"id": run.id, "workflow": run.workflow},
    }


def event_context(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "key": event.dedupe_key,
        "source": event.source,
        "type": event.type,
        "received_at": event.received_at.isoformat(),
        "data": event.data,
        "headers": event.headers,
        "query": event.query,
    }


def _outcome_unknown_before(history: list[StepAttempt], step_id: str) -> bool:
    return any(a.step_id == step_id and a.outcome_unknown for a in history)


def _validation_error(exc: ValidationError) -> StepValidationError:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "with"
        problems.append(f"with.{where}: {error['msg']}" if error["loc"] else f"with: {error['msg']}")
    return StepValidationError("invalid input: " + "; ".join(problems))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _record(attempt: StepAttempt, result: AttemptResult, calls: CallLog, now: datetime, started: float) -> None:
    attempt.status = result.status.value
    attempt.input = result.input
    attempt.output = _jsonable(result.output) if result.output is not None else None
    attempt.calls = _jsonable(calls.calls)
    attempt.reconciled = result.reconciled
    attempt.finished_at = now
    attempt.duration_ms = round((time.perf_counter() - started) * 1000, 2)
    if result.error is not None:
        attempt.error_class = result.error.kind
        attempt.error_message = result.error.message
        attempt.outcome_unknown = result.error.outcome_unknown
    if result.deferred is not None:
        attempt.error_message = f"deferred: {result.deferred.reason}"
