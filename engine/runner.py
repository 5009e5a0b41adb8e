"""The step job: claim the attempt, render, call the operation, record, go on or enqueue what is next.

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
- When a step ends and the run's next step is due at once, the same job goes
  on to it (see `Chain`): one transaction records the one and claims the
  other, and no queue round trip is paid.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException
from sqlalchemy.exc import OperationalError

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
T = TypeVar("T")
DB_PAUSE_FIRST = 0.5  # seconds; doubled per failed try
DB_PAUSE_MAX = 10.0


def run_step(run_id: str, step_id: str, attempt: int) -> None:
    """RQ entry point (see engine.queue.RUN_STEP): this step, then the run's next steps while they are due at once."""
    services = current_services()
    claimed = while_the_database_is_away(
        services, "claiming a step", lambda: ledger.claim(services.db, services.event_views, run_id, step_id, attempt)
    )
    if claimed is None:
        log.info("step job %s/%s#%d is stale, claimed, or waiting in its lane; skipping", run_id, step_id, attempt)
        return
    chain = Chain(services.settings.chain_steps_max, time.monotonic() + services.settings.step_job_timeout_seconds / 3)
    while claimed is not None:
        claimed = StepExecution(services, claimed, chain).execute()


def while_the_database_is_away(services: Services, doing: str, action: Callable[[], T]) -> T:
    """`action()`, tried again with a growing pause while the database does not answer (restart, failover, lock).

    The worker waits in place instead of failing the job: failing would empty the
    queue into RQ's failed registry within seconds of an outage (each job fails at
    once, the next is taken), and a failed record after the API call would leave
    the attempt's outcome unknown. Waiting is bounded by a third of the job
    timeout; past that the error goes to RQ and the reconciler takes over.
    """
    deadline = time.monotonic() + services.settings.step_job_timeout_seconds / 3
    pause = DB_PAUSE_FIRST
    while True:
        try:
            return action()
        except OperationalError as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("the database did not answer while %s (%s); trying again in %.1fs", doing, exc.orig, pause)
            time.sleep(pause)
            pause = min(pause * 2, DB_PAUSE_MAX)


@dataclass
class Chain:
    """How far one job goes on along its run before handing the next step to the queue.

    A queue round trip costs more CPU than a typical step (RQ makes some twenty
    Redis calls per job; docs/benchmarks.md), so when a step ends and the next
    one is due at once, the same job claims and runs it: the record of one step
    and the claim of the next are one transaction. Every step still has its own
    attempt rows, timeout and retries. Retries, deferrals and waits always go
    through the queue, and a job stops after `max_steps` steps or a third of
    the job timeout, so one long run cannot hold a worker or outlive its job.
    """

    max_steps: int
    deadline: float  # time.monotonic() after which no further step is started in this job
    steps: int = 1

    def goes_on(self, step_id: str, nxt: Next) -> bool:
        """Whether this job runs `nxt` itself, now that `step_id` has ended; counts it if so."""
        if (
            nxt.status is not RunStatus.RUNNING
            or nxt.step_id is None
            or nxt.step_id == step_id  # a retry of the same step: the queue schedules it
            or nxt.delay
            or self.steps >= self.max_steps
            or time.monotonic() >= self.deadline
        ):
            return False
        self.steps += 1
        return True


class StepExecution:
    """One claimed attempt of one step: run it, record it, and say what this job does next."""

    def __init__(self, services: Services, claimed: ledger.Claim, chain: Chain) -> None:
        self.services = services
        self.claimed = claimed
        self.chain = chain
        self.calls = CallLog()

    def execute(self) -> ledger.Claim | None:
        """Run the attempt; returns the claim of the run's next step when this job goes straight on to it."""
        services, claimed = self.services, self.claimed
        spec = services.spec_for(claimed.run.workflow_hash, lambda: ledger.definition_of(services.db, claimed.run.id))
        started = time.perf_counter()
        try:
            result = self._attempt(spec)
        except StepDeferred as deferred:
            result = AttemptResult(AttemptStatus.DEFERRED, deferred=deferred)
        except JobTimeoutException:
            error = TransientStepError("step exceeded its job timeout", outcome_unknown=True)
            self._finish(spec, AttemptResult(AttemptStatus.FAILED, error=error), started, may_go_on=False)
            return None
        except Exception as exc:
            # A bug in a handler or the engine: fail this run visibly, then let RQ record the traceback too.
            error = PermanentStepError(f"internal error: {type(exc).__name__}: {exc}")
            self._finish(spec, AttemptResult(AttemptStatus.FAILED, error=error), started, may_go_on=False)
            raise
        return self._finish(spec, result, started)

    def _attempt(self, spec: WorkflowSpec) -> AttemptResult:
        claimed = self.claimed
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
        return run_foreach(invocation, claimed.attempt)

    def _finish(
        self, spec: WorkflowSpec, result: AttemptResult, started: float, may_go_on: bool = True
    ) -> ledger.Claim | None:
        claimed, services = self.claimed, self.services
        seconds = time.perf_counter() - started
        nxt = ledger.numbered(self._next(spec, claimed.run, result), claimed.history)
        outcome = outcome_row(result, self.calls, seconds)
        if may_go_on and self.chain.goes_on(claimed.step_id, nxt):
            following = while_the_database_is_away(
                services, "recording a step", lambda: ledger.advance(services.db, claimed, outcome, nxt)
            )
            observe.publish(services.db.engine, _facts(spec, claimed, outcome, nxt if following else None))
            return following  # None: cancelled while this attempt ran; its result is recorded, nothing more
        moved = while_the_database_is_away(
            services, "recording a step", lambda: ledger.record(services.db, claimed, outcome, nxt)
        )
        observe.publish(services.db.engine, _facts(spec, claimed, outcome, nxt if moved else None))
        if not moved:
            return None  # cancelled (or otherwise moved) while this attempt ran: its result is recorded, nothing more
        enqueue_next(services, claimed.run.id, nxt, run_due_at(nxt))
        if nxt.status in FINISHED_RUN and claimed.run.concurrency_key:
            wake_lane(services, claimed.run.concurrency_key)
        return None

    def _next(self, spec: WorkflowSpec, run: ledger.ClaimedRun, result: AttemptResult) -> Next:
        attempt = self.claimed.attempt
        if result.deferred is not None:
            delay = result.deferred.delay
            if result.deferred.jitter:  # spread throttled steps so they do not all come back at once
                delay *= 1 + random.random() / 2
            return after_deferral(spec, run.step_index, attempt, run.budget_start, delay, run.failure)
        policy = self.services.default_retry.merged_with(spec.all_steps[run.step_index].retry)
        return after_attempt(spec, run.step_index, attempt, run.budget_start, result.error, policy, failure=run.failure)


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


def outcome_row(result: AttemptResult, calls: CallLog, seconds: float) -> dict[str, Any]:
    """The attempt row's columns for how it ended (engine.ledger_pg binds each of them by name)."""
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


def _facts(spec: WorkflowSpec, claimed: ledger.Claim, outcome: dict[str, Any], nxt: Next | None) -> list[observe.Fact]:
    """What metrics, logs and the failure notifier learn from this attempt (published after its commit)."""
    run, step_id, attempt = claimed.run, claimed.step_id, claimed.attempt
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
