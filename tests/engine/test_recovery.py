"""The reconciler on its own: it repairs only what is missing, and reaches every run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from rq.job import Job

from engine import recovery
from engine.models import StepAttempt
from engine.services import Services
from tests.conftest import SECRETS, claim, post_hook

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "web-enquiry.json").read_text())


def submit(client: FlaskClient, n: int) -> list[str]:
    runs = []
    for i in range(n):
        body = json.dumps({**EXAMPLE, "submission_id": f"sub-{i}"}).encode()
        runs += post_hook(client, "webform", body, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}).get_json()["runs"]
    return runs


def run_reconciler_until_requeued(services: Services, run_id: str) -> recovery.ReconcilerThread:
    """Run a worker's reconciler thread until the run's first step job is back in Redis (10 s at most), then stop it."""
    thread = recovery.ReconcilerThread(services)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while services.queue.queue.job_ids != [f"{run_id}-contact-1"] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        thread.stop()
        thread.join(timeout=5)
    return thread


def test_every_lost_run_is_found_across_batches(
    client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "BATCH", 2)  # 5 runs, batches of 2: the keyset cursor must carry on
    runs = submit(client, 5)
    services.redis.flushdb()
    assert recovery.reconcile(services).requeued == 5
    assert sorted(services.queue.queue.job_ids) == sorted(f"{run}-contact-1" for run in runs)


def test_an_attempt_still_within_its_time_is_left_alone(client: FlaskClient, services: Services) -> None:
    # Given a worker is (apparently) busy with the first step right now
    (run_id,) = submit(client, 1)
    services.redis.flushdb()
    assert claim(services, run_id, "contact") is not None
    # When the reconciler passes
    report = recovery.reconcile(services)
    # Then it neither fails the attempt nor enqueues a second copy of the step
    assert (report.lost_attempts, report.requeued) == (0, 0)
    with services.db.session() as session:
        (attempt,) = session.scalars(sa.select(StepAttempt)).all()
    assert attempt.status == "started"


def test_a_dead_job_in_redis_is_replaced(client: FlaskClient, services: Services) -> None:
    # Given the step job exists in Redis but RQ marked it failed (e.g. the database was down when it ran)
    (run_id,) = submit(client, 1)
    job = Job.fetch(f"{run_id}-contact-1", connection=services.redis)
    services.queue.queue.remove(job)
    job.set_status("failed")
    # When the reconciler passes, the step is enqueued again under the same id
    assert recovery.reconcile(services).requeued == 1
    assert services.queue.queue.job_ids == [f"{run_id}-contact-1"]


def test_a_finished_job_of_a_run_still_waiting_for_its_step_is_replaced(
    client: FlaskClient, services: Services
) -> None:
    # Given the step's job ran and finished without moving the run (it found the run's lane busy), and RQ
    # keeps a finished job for a moment (engine.queue.FINISHED_JOB_TTL_SECONDS), holding its id
    (run_id,) = submit(client, 1)
    job = Job.fetch(f"{run_id}-contact-1", connection=services.redis)
    services.queue.queue.remove(job)
    job.set_status("finished")
    assert services.queue.enqueue(run_id, "contact", 1) is False  # the id is taken while the job lives
    # When the reconciler passes, the step is enqueued again under the same id
    assert recovery.reconcile(services).requeued == 1
    assert services.queue.queue.job_ids == [f"{run_id}-contact-1"]


def test_a_dead_job_whose_execution_record_expired_is_replaced_too(client: FlaskClient, services: Services) -> None:
    # Given a step job a killed worker left behind: RQ marked it abandoned (failed), and the hash of its
    # execution has expired while the job still lists it (RQ's own Job.delete() raises on that)
    (run_id,) = submit(client, 1)
    job = Job.fetch(f"{run_id}-contact-1", connection=services.redis)
    services.queue.queue.remove(job)
    job.set_status("failed")
    services.redis.zadd(job.execution_registry.key, {"expired-execution": time.time() + 3600})
    with pytest.raises(ValueError, match="not found in Redis"):
        Job.fetch(job.id, connection=services.redis).delete()  # the library's behaviour this works around

    # When the reconciler passes, the step is enqueued again under the same id
    assert recovery.reconcile(services).requeued == 1
    assert services.queue.queue.job_ids == [f"{run_id}-contact-1"]


def test_the_reconciler_thread_survives_an_unexpected_error_and_keeps_repairing(
    client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a reconciler whose first pass fails with a bug (no Redis or database error)
    services.settings = services.settings.model_copy(update={"reconcile_interval_seconds": 0.05})
    (run_id,) = submit(client, 1)
    services.redis.flushdb()
    passes = []
    real = recovery.reconcile

    def first_pass_fails(services: Services) -> recovery.ReconcileReport:
        passes.append(1)
        if len(passes) == 1:
            raise ValueError("a bug")
        return real(services)

    monkeypatch.setattr(recovery, "reconcile", first_pass_fails)
    run_reconciler_until_requeued(services, run_id)
    # Then the error was logged with its traceback, and a later pass still repaired the lost step
    assert "reconciler pass failed unexpectedly" in caplog.text and "ValueError: a bug" in caplog.text
    assert services.queue.queue.job_ids == [f"{run_id}-contact-1"]


def test_the_worker_thread_repairs_a_flush_by_itself(client: FlaskClient, services: Services) -> None:
    # Given a worker's reconciler thread running every 50 ms
    services.settings = services.settings.model_copy(update={"reconcile_interval_seconds": 0.05})
    (run_id,) = submit(client, 1)
    services.redis.flushdb()
    # Then, without anyone calling it, the lost step job comes back
    thread = run_reconciler_until_requeued(services, run_id)
    assert services.queue.queue.job_ids == [f"{run_id}-contact-1"]
    assert not thread.is_alive()


def test_only_one_worker_reconciles_at_a_time(client: FlaskClient, services: Services) -> None:
    # Given another worker holds the reconciler lock
    services.settings = services.settings.model_copy(update={"reconcile_interval_seconds": 0.05})
    submit(client, 1)
    services.redis.flushdb()
    services.redis.set(recovery.LOCK_KEY, "other-worker", px=60_000)
    thread = recovery.ReconcilerThread(services)
    thread.start()
    time.sleep(0.3)  # several intervals
    thread.stop()
    thread.join(timeout=5)
    # Then this one left the repair to it
    assert services.queue.queue.count == 0


def test_an_overdue_scheduled_retry_is_moved_to_the_queue_when_no_scheduler_does(
    client: FlaskClient, services: Services
) -> None:
    # Given a step job scheduled for a time already passed, and no RQ scheduler running (its worker died)
    from datetime import datetime, timedelta, timezone

    (run_id,) = submit(client, 1)
    services.redis.flushdb()
    services.queue.enqueue(run_id, "contact", 1, at=datetime.now(timezone.utc) + timedelta(seconds=1))
    assert services.queue.queue.count == 0
    from rq.registry import ScheduledJobRegistry

    due = ScheduledJobRegistry(queue=services.queue.queue).get_scheduled_time(f"{run_id}-contact-1")
    time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + 0.2)  # until it is overdue
    # When the reconciler passes
    report = recovery.reconcile(services)
    # Then the job is on the queue, under its own id, not duplicated
    assert report.promoted == 1 and report.requeued == 0
    assert services.queue.queue.job_ids == [f"{run_id}-contact-1"]
