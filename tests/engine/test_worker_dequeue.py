"""A step worker waits on an empty queue in short slices, so a stop request is seen while it is idle."""

from __future__ import annotations

import threading
import time

import pytest
from redis import Redis
from rq import Queue
from rq.worker.base import StopRequested

from bootstrap.embedded_redis import EmbeddedRedis
from engine.services import Services
from engine.worker import IDLE_SLICE_SECONDS, StepWorker

RQ_DEQUEUE_TIMEOUT = 405  # what RQ's work loop asks for: worker_ttl (420 s) - 15 s


def worker_for(services: Services) -> StepWorker:
    return StepWorker([services.queue.queue], connection=services.redis)


def test_a_stop_asked_while_idle_ends_the_wait_within_a_slice(services: Services) -> None:
    worker = worker_for(services)
    threading.Timer(0.3, lambda: setattr(worker, "_stop_requested", True)).start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        worker.dequeue_job_and_maintain_ttl(RQ_DEQUEUE_TIMEOUT)
    assert time.monotonic() - started < 0.3 + IDLE_SLICE_SECONDS + 2  # not RQ's minutes


def test_a_job_that_arrives_after_some_idle_slices_is_dequeued(services: Services) -> None:
    worker = worker_for(services)
    queued = threading.Timer(
        IDLE_SLICE_SECONDS * 2.5, lambda: services.queue.queue.enqueue("engine.worker.keep_working", job_id="late")
    )
    queued.start()
    result = worker.dequeue_job_and_maintain_ttl(RQ_DEQUEUE_TIMEOUT)
    assert result is not None and result[0].id == "late"


def test_an_idle_limit_still_ends_the_wait_with_nothing(services: Services) -> None:
    worker = worker_for(services)
    assert worker.dequeue_job_and_maintain_ttl(RQ_DEQUEUE_TIMEOUT, max_idle_time=2) is None


def test_burst_mode_does_not_wait(services: Services) -> None:
    started = time.monotonic()
    assert worker_for(services).dequeue_job_and_maintain_ttl(None) is None
    assert time.monotonic() - started < IDLE_SLICE_SECONDS


def test_after_a_redis_outage_a_stop_is_seen_within_seconds_not_after_rq_s_backoff() -> None:
    """RQ would back off to 8 s sleeps within this 8 s outage; the cap keeps its sleeps short."""
    redis = EmbeddedRedis().start()
    worker = StepWorker([Queue("outage", connection=Redis.from_url(redis.url))], connection=Redis.from_url(redis.url))
    ended: list[float] = []

    def wait_for_work() -> None:
        with pytest.raises(StopRequested):
            worker.dequeue_job_and_maintain_ttl(RQ_DEQUEUE_TIMEOUT)
        ended.append(time.monotonic())

    waiting = threading.Thread(target=wait_for_work, daemon=True)
    waiting.start()
    time.sleep(IDLE_SLICE_SECONDS / 2)
    port = redis.port
    redis.stop()
    time.sleep(8)
    restarted = EmbeddedRedis(port).start()
    try:
        asked = time.monotonic()
        worker._stop_requested = True  # what a warm stop sets (RQ's flag)
        waiting.join(30)
        assert ended, "the worker did not stop within 30 s of Redis coming back"
        assert ended[0] - asked < 5.0  # seconds; RQ's own backoff sleeps 8 s here
    finally:
        restarted.stop()
