"""What a step worker spends per job beside the job: its heartbeat (RQ's worker key kept alive, without three
round trips per job) and its log lines."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from engine.queue import FINISHED_JOB_TTL_SECONDS
from engine.services import Services
from engine.worker import HEARTBEAT_EVERY_SECONDS, StepWorker


def beat_of(worker: StepWorker) -> bytes | None:
    return worker.connection.hget(worker.key, "last_heartbeat")


def test_a_beat_goes_out_then_repeats_within_the_interval_are_skipped(services: Services) -> None:
    worker = StepWorker([services.queue.queue], connection=services.redis)
    worker.heartbeat()
    first = beat_of(worker)
    assert first is not None
    assert worker.connection.ttl(worker.key) > worker.worker_ttl  # worker_ttl + 60, as RQ sets it

    worker.heartbeat()
    assert beat_of(worker) == first  # skipped: the key still lives for minutes

    worker.last_heartbeat -= timedelta(seconds=HEARTBEAT_EVERY_SECONDS)
    worker.heartbeat()
    assert beat_of(worker) != first  # an interval later the beat goes out again


def test_a_beat_that_carries_a_timeout_or_rides_a_pipeline_always_goes_out(services: Services) -> None:
    worker = StepWorker([services.queue.queue], connection=services.redis)
    worker.heartbeat()
    worker.heartbeat(timeout=5000)  # e.g. a job's timeout: the key must outlive the job
    assert 4000 < worker.connection.ttl(worker.key) <= 5000

    first = beat_of(worker)
    worker.last_heartbeat -= timedelta(milliseconds=1)  # so the field visibly changes
    with services.redis.pipeline() as pipe:
        worker.heartbeat(pipeline=pipe)
        pipe.execute()
    assert beat_of(worker) != first


def test_a_job_logs_its_start_and_end_but_not_rq_s_fixed_result_lifespan(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.queue.queue.enqueue("os.getpid", result_ttl=FINISHED_JOB_TTL_SECONDS)  # as step jobs are (engine.queue)
    caplog.set_level(logging.INFO, logger="rq.worker")
    StepWorker([services.queue.queue], connection=services.redis).work(burst=True, with_scheduler=False)
    lines = [record.getMessage() for record in caplog.records if record.name == "rq.worker"]
    assert any("Job OK" in line for line in lines)
    assert not [line for line in lines if "result is kept" in line]
