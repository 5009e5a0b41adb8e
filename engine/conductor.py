"""What happens next in a run: pure decisions, no I/O.

The runner reports how an attempt ended; the conductor answers with the run's
next state (which step, which attempt, how long to wait, or finished). Keeping
this free of the database and the queue makes every rule testable on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from engine.errors import StepError, TransientStepError
from engine.retry import RetryPolicy, compute_backoff
from schemas.workflow import WorkflowSpec


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
FINISHED_RUN = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

# Legal run transitions; anything else is a bug, not a state to persist.
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.FAILED: frozenset({RunStatus.QUEUED}),  # manual retry
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class AttemptStatus(str, Enum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"  # did not run (e.g. request budget spent); runs again later, no failure counted


class StepStatus(str, Enum):
    """A step's status as the API shows it, derived from its attempts."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


def check_transition(current: str, new: RunStatus) -> None:
    if new not in RUN_TRANSITIONS[RunStatus(current)]:
        raise ValueError(f"illegal run transition {current} -> {new.value}")


@dataclass(frozen=True)
class Failure:
    """Why and where a run failed, kept while its on_failure steps run."""

    message: str
    step_id: str
    attempt: int


@dataclass(frozen=True)
class Next:
    """The run's state after an attempt: the step job that should exist next, if any.

    A failed run's cursor rests on the step that failed (a manual retry resumes
    there); while on_failure steps run, `failure` remembers that step.
    """

    status: RunStatus
    step_id: str | None
    step_index: int
    attempt: int
    budget_start: int
    delay: float = 0.0
    error: str | None = None
    failure: Failure | None = None


def first_step(spec: WorkflowSpec) -> Next:
    return Next(RunStatus.QUEUED, spec.steps[0].id, 0, 1, 1)


def _go_to(spec: WorkflowSpec, index: int, failure: Failure | None) -> Next:
    """Run step `index` of the run's current phase, or finish the phase."""
    if failure is None and index >= len(spec.steps):
        return Next(RunStatus.SUCCEEDED, None, index, 1, 1)
    if failure is not None and index >= len(spec.all_steps):
        return _failed(spec, failure)
    return Next(RunStatus.RUNNING, spec.all_steps[index].id, index, 1, 1, failure=failure)


def _failed(spec: WorkflowSpec, failure: Failure) -> Next:
    index = spec.index_of(failure.step_id)
    return Next(RunStatus.FAILED, failure.step_id, index, failure.attempt, failure.attempt, error=failure.message)


def _fail(spec: WorkflowSpec, failure: Failure, ongoing: Failure | None) -> Next:
    """The run failed: run its on_failure steps first, unless it is already running them."""
    if ongoing is not None:  # an on_failure step failed too: finish, keeping both reasons
        return _failed(
            spec, Failure(f"{ongoing.message}; then on_failure {failure.message}", ongoing.step_id, ongoing.attempt)
        )
    if spec.on_failure:
        return _go_to(spec, len(spec.steps), failure)
    return _failed(spec, failure)


def is_retried(error: StepError, policy: RetryPolicy) -> bool:
    """Whether the policy retries this failure: `transient`, or one of the listed statuses."""
    if isinstance(error, TransientStepError) and "transient" in policy.on:
        return True
    return error.status is not None and error.status in policy.on


def after_attempt(
    spec: WorkflowSpec,
    step_index: int,
    attempt: int,
    budget_start: int,
    error: StepError | None,
    policy: RetryPolicy,
    rand: Callable[[], float] | None = None,
    failure: Failure | None = None,
) -> Next:
    """Decide the run's next state once an attempt has ended (error None: succeeded or skipped)."""
    if error is None:
        return _go_to(spec, step_index + 1, failure)
    step = spec.all_steps[step_index]
    failures = attempt - budget_start + 1
    if is_retried(error, policy) and failures < policy.max_attempts:
        kwargs = {"rand": rand} if rand else {}
        retry_after = error.retry_after if isinstance(error, TransientStepError) else None
        delay = compute_backoff(policy, failures, retry_after, **kwargs)
        return Next(RunStatus.RUNNING, step.id, step_index, attempt + 1, budget_start, delay, failure=failure)
    if step.on_error == "continue":
        return _go_to(spec, step_index + 1, failure)
    if step.goto is not None:
        return _go_to(spec, spec.index_of(step.goto), failure)
    message = error.message
    if is_retried(error, policy):
        message = f"gave up after {failures} attempts: {message}"
    return _fail(spec, Failure(f"step {step.id}: {message}", step.id, attempt), failure)


def after_deferral(
    spec: WorkflowSpec, step_index: int, attempt: int, budget_start: int, delay: float, failure: Failure | None = None
) -> Next:
    """The step runs again after `delay` as the next attempt; the deferral does not use up the retry budget."""
    step_id = spec.all_steps[step_index].id
    return Next(RunStatus.RUNNING, step_id, step_index, attempt + 1, budget_start + 1, delay, failure=failure)


def retry_failed(step_id: str, step_index: int, last_attempt: int) -> Next:
    """A manual retry: the same run resumes at its failed step with a fresh attempt budget."""
    return Next(RunStatus.QUEUED, step_id, step_index, last_attempt + 1, last_attempt + 1)
