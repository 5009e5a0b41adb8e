"""The conductor's decisions, given how an attempt ended (no database, no queue)."""

from __future__ import annotations

import pytest

from engine.conductor import (
    Failure,
    RunStatus,
    after_attempt,
    check_transition,
    first_step,
    is_retried,
    retry_failed,
)
from engine.errors import PermanentStepError, StepValidationError, TransientStepError
from engine.retry import RetryPolicy
from schemas.workflow import WorkflowSpec

SPEC = WorkflowSpec.model_validate(
    {
        "name": "w",
        "on": {"source": "s"},
        "steps": [
            {"id": "a", "uses": "x.a"},
            {"id": "b", "uses": "x.b", "on_error": "continue"},
            {"id": "c", "uses": "x.c"},
        ],
    }
)
POLICY = RetryPolicy(max_attempts=3, initial=1.0, max_delay=60.0)


def decide(index: int, attempt: int, error: Exception | None, budget_start: int = 1):
    return after_attempt(SPEC, index, attempt, budget_start, error, POLICY, rand=lambda: 1.0)


def test_a_run_starts_queued_at_its_first_step() -> None:
    nxt = first_step(SPEC)
    assert (nxt.status, nxt.step_id, nxt.attempt) == (RunStatus.QUEUED, "a", 1)


def test_success_moves_to_the_next_step_with_a_fresh_attempt_count() -> None:
    nxt = decide(0, 2, None)
    assert (nxt.status, nxt.step_id, nxt.step_index, nxt.attempt, nxt.delay) == (RunStatus.RUNNING, "b", 1, 1, 0)


def test_success_of_the_last_step_finishes_the_run() -> None:
    nxt = decide(2, 1, None)
    assert (nxt.status, nxt.step_id) == (RunStatus.SUCCEEDED, None)


def test_a_transient_error_retries_the_same_step_after_a_backoff() -> None:
    nxt = decide(0, 1, TransientStepError("HTTP 503"))
    assert (nxt.status, nxt.step_id, nxt.attempt, nxt.delay) == (RunStatus.RUNNING, "a", 2, 1.0)
    assert decide(0, 2, TransientStepError("HTTP 503")).delay == 2.0


def test_retry_after_from_the_server_is_honoured() -> None:
    assert decide(0, 1, TransientStepError("HTTP 429", retry_after=9.0)).delay == 9.0


def test_transient_errors_give_up_after_max_attempts() -> None:
    nxt = decide(0, 3, TransientStepError("HTTP 503"))
    assert nxt.status == RunStatus.FAILED
    assert nxt.error == "step a: gave up after 3 attempts: HTTP 503"


@pytest.mark.parametrize("error", [PermanentStepError("HTTP 400: bad"), StepValidationError("invalid input")])
def test_a_permanent_error_fails_the_run_at_once(error: Exception) -> None:
    nxt = decide(0, 1, error)
    assert (nxt.status, nxt.step_id, nxt.attempt) == (RunStatus.FAILED, "a", 1)
    assert nxt.error.startswith("step a: ")


def test_on_error_continue_moves_on_after_a_permanent_failure() -> None:
    nxt = decide(1, 1, PermanentStepError("HTTP 404"))
    assert (nxt.status, nxt.step_id) == (RunStatus.RUNNING, "c")


def test_a_manual_retry_starts_a_fresh_budget_on_the_same_step() -> None:
    nxt = retry_failed("a", 0, last_attempt=3)
    assert (nxt.status, nxt.step_id, nxt.attempt, nxt.budget_start) == (RunStatus.QUEUED, "a", 4, 4)
    # and that budget allows max_attempts more tries
    assert decide(0, 5, TransientStepError("503"), budget_start=4).status == RunStatus.RUNNING
    assert decide(0, 6, TransientStepError("503"), budget_start=4).status == RunStatus.FAILED


@pytest.mark.parametrize(
    ("current", "new", "legal"),
    [
        ("queued", RunStatus.RUNNING, True),
        ("running", RunStatus.SUCCEEDED, True),
        ("failed", RunStatus.QUEUED, True),
        ("succeeded", RunStatus.RUNNING, False),
        ("cancelled", RunStatus.QUEUED, False),
        ("failed", RunStatus.RUNNING, False),
    ],
)
def test_run_transitions(current: str, new: RunStatus, legal: bool) -> None:
    if legal:
        check_transition(current, new)
    else:
        with pytest.raises(ValueError, match="illegal run transition"):
            check_transition(current, new)


FLOW = WorkflowSpec.model_validate(
    {
        "name": "flow",
        "on": {"source": "s"},
        "steps": [
            {"id": "a", "uses": "x.a", "on_error": "goto c"},
            {"id": "b", "uses": "x.b"},
            {"id": "c", "uses": "x.c"},
        ],
        "on_failure": [{"id": "tell", "uses": "core.log"}, {"id": "page", "uses": "core.log"}],
    }
)


def test_goto_jumps_to_the_named_step() -> None:
    nxt = after_attempt(FLOW, 0, 1, 1, PermanentStepError("HTTP 404"), POLICY)
    assert (nxt.status, nxt.step_id, nxt.step_index) == (RunStatus.RUNNING, "c", 2)


def test_a_failure_runs_on_failure_steps_remembering_where_it_failed() -> None:
    nxt = after_attempt(FLOW, 2, 3, 1, PermanentStepError("HTTP 400: bad"), POLICY)
    assert (nxt.status, nxt.step_id) == (RunStatus.RUNNING, "tell")
    assert nxt.failure == Failure("step c: HTTP 400: bad", "c", 3)


def test_after_on_failure_the_run_fails_at_its_failed_step_so_retry_resumes_there() -> None:
    failure = Failure("step c: HTTP 400: bad", "c", 3)
    tell_done = after_attempt(FLOW, 3, 1, 1, None, POLICY, failure=failure)
    assert (tell_done.step_id, tell_done.failure) == ("page", failure)
    done = after_attempt(FLOW, 4, 1, 1, None, POLICY, failure=failure)
    assert (done.status, done.step_id, done.step_index, done.attempt) == (RunStatus.FAILED, "c", 2, 3)
    assert done.error == "step c: HTTP 400: bad" and done.failure is None


def test_an_on_failure_step_that_fails_too_keeps_both_reasons() -> None:
    failure = Failure("step c: HTTP 400: bad", "c", 3)
    nxt = after_attempt(FLOW, 3, 1, 1, PermanentStepError("HTTP 500 from Slack"), POLICY, failure=failure)
    assert nxt.status == RunStatus.FAILED
    assert nxt.error == "step c: HTTP 400: bad; then on_failure step tell: HTTP 500 from Slack"


@pytest.mark.parametrize(
    ("on", "error", "retried"),
    [
        (("transient",), TransientStepError("503", status=503), True),
        (("transient",), PermanentStepError("409", status=409), False),
        (("transient", 409), PermanentStepError("409", status=409), True),
        ((409,), TransientStepError("503", status=503), False),
        ((503,), TransientStepError("503", status=503), True),
        ((409,), TransientStepError("read timeout"), False),
    ],
)
def test_retry_on_chooses_what_is_retried(on: tuple, error: Exception, retried: bool) -> None:
    assert is_retried(error, RetryPolicy(on=on)) is retried
