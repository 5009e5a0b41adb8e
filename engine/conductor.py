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
class Next:
    """The run's state after an attempt: the step job that should exist next, if any."""

    status: RunStatus
    step_id: str | None
    step_index: int
    attempt: int
    budget_start: int
    delay: float = 0.0
    error: str | None = None


def first_step(spec: WorkflowSpec) -> Next:
    return Next(RunStatus.QUEUED, spec.steps[0].id, 0, 1, 1)


def _advance(spec: WorkflowSpec, index: int) -> Next:
    if index >= len(spec.steps):
        return Next(RunStatus.SUCCEEDED, None, index, 1, 1)
    return Next(RunStatus.RUNNING, spec.steps[index].id, index, 1, 1)


def after_attempt(
    spec: WorkflowSpec,
    step_index: int,
    attempt: int,
    budget_start: int,
    error: StepError | None,
    policy: RetryPolicy,
    rand: Callable[[], float] | None = None,
) -> Next:
    """Decide the run's next state once an attempt has ended (error None: succeeded or skipped)."""
    if error is None:
        return _advance(spec, step_index + 1)
    step = spec.steps[step_index]
    failures = attempt - budget_start + 1
    if isinstance(error, TransientStepError) and failures < policy.max_attempts:
        kwargs = {"rand": rand} if rand else {}
        delay = compute_backoff(policy, failures, error.retry_after, **kwargs)
        return Next(RunStatus.RUNNING, step.id, step_index, attempt + 1, budget_start, delay)
    if step.on_error == "continue":
        return _advance(spec, step_index + 1)
    message = error.message
    if isinstance(error, TransientStepError):
        message = f"gave up after {failures} attempts: {message}"
    return Next(RunStatus.FAILED, step.id, step_index, attempt, budget_start, error=f"step {step.id}: {message}")


def after_deferral(spec: WorkflowSpec, step_index: int, attempt: int, budget_start: int, delay: float) -> Next:
    """The step runs again after `delay` as the next attempt; the deferral does not use up the retry budget."""
    return Next(RunStatus.RUNNING, spec.steps[step_index].id, step_index, attempt + 1, budget_start + 1, delay)


def retry_failed(step_id: str, step_index: int, last_attempt: int) -> Next:
    """A manual retry: the same run resumes at its failed step with a fresh attempt budget."""
    return Next(RunStatus.QUEUED, step_id, step_index, last_attempt + 1, last_attempt + 1)
