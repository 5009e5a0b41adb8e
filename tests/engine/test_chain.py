"""When a step job goes straight on to the run's next step, and when it hands the run back to the queue."""

from __future__ import annotations

import time

from engine.conductor import Next, RunStatus
from engine.runner import Chain

NEXT_STEP = Next(RunStatus.RUNNING, "job", 1, 1, 1)


def chain(max_steps: int = 20, seconds_left: float = 100.0) -> Chain:
    return Chain(max_steps, time.monotonic() + seconds_left)


def test_a_next_step_due_now_is_run_by_the_same_job_and_counted() -> None:
    running = chain()
    assert running.goes_on("contact", NEXT_STEP) is True
    assert running.steps == 2


def test_retries_waits_and_finished_runs_go_back_to_the_queue() -> None:
    running = chain()
    assert running.goes_on("job", Next(RunStatus.RUNNING, "job", 1, 2, 1)) is False  # a retry of the same step
    assert running.goes_on("contact", Next(RunStatus.RUNNING, "job", 1, 1, 1, delay=30.0)) is False  # core.wait
    assert running.goes_on("schedule", Next(RunStatus.SUCCEEDED, None, 4, 1, 1)) is False
    assert running.goes_on("contact", Next(RunStatus.QUEUED, "job", 1, 1, 1)) is False  # a lane's turn
    assert running.steps == 1


def test_a_job_stops_going_on_after_max_steps_or_past_its_time() -> None:
    assert chain(max_steps=1).goes_on("contact", NEXT_STEP) is False  # CHAIN_STEPS_MAX=1: a job per step
    assert chain(seconds_left=-1.0).goes_on("contact", NEXT_STEP) is False  # a third of the job timeout spent
