"""Several step workers in one process, one per thread (engine.worker.Crew): concurrent, stoppable, timed out."""

from __future__ import annotations

import json
import threading
import time

from flask import Flask
from redis.exceptions import RedisError
from rq import Worker, get_current_job
from rq.job import Job, JobStatus

from engine.services import Services
from engine.worker import IDLE_SLICE_SECONDS, Crew, ThreadedStepWorker, keep_working
from tests.engine.test_worker import wait_for

JOBS = "tests.engine.test_worker_threads"


def nap(seconds: float) -> None:
    """A job that records which thread ran it and when, then sleeps like a step waiting on an API."""
    job = get_current_job()
    started = time.monotonic()
    time.sleep(seconds)
    record = {"thread": threading.get_ident(), "started": started, "ended": time.monotonic()}
    job.connection.rpush("test:naps", json.dumps(record))


def busy_for(seconds: float) -> None:
    """A job that never returns to RQ in time: Python code running on, as a step stuck in a loop would."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


def naps(services: Services) -> list[dict[str, float]]:
    return [json.loads(item) for item in services.redis.lrange("test:naps", 0, -1)]


def registered(services: Services) -> int:
    return Worker.count(connection=services.redis)


def test_a_crew_runs_its_jobs_at_the_same_time_each_in_a_thread_of_its_own(app: Flask, services: Services) -> None:
    for _ in range(3):
        services.queue.queue.enqueue(f"{JOBS}.nap", 1.0)
    with app.app_context():
        crew = Crew(services, 3, burst=True)
    crew.start()
    crew.join()

    done = naps(services)
    assert len(done) == 3
    assert len({record["thread"] for record in done}) == 3
    # The three naps overlapped: the last to start began before the first to end had ended
    assert max(record["started"] for record in done) < min(record["ended"] for record in done)
    assert registered(services) == 0  # each worker unregistered as it left


def test_an_idle_crew_stops_within_a_slice_of_being_asked(app: Flask, services: Services) -> None:
    with app.app_context():
        crew = Crew(services, 2)
    crew.start()
    try:
        assert wait_for(lambda: registered(services) == 2, 10), "the crew's workers never registered"
    finally:
        asked = time.monotonic()
        crew.stop()
        crew.join()
    assert time.monotonic() - asked < IDLE_SLICE_SECONDS + 2
    assert registered(services) == 0


def test_a_busy_crew_worker_finishes_its_job_before_it_stops(app: Flask, services: Services) -> None:
    job = services.queue.queue.enqueue(f"{JOBS}.nap", 1.5)
    with app.app_context():
        crew = Crew(services, 1)
    crew.start()
    assert wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, 10), "the job never started"
    crew.stop()
    crew.join()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert len(naps(services)) == 1
    assert services.queue.queue.count == 0


def test_a_crew_worker_times_its_job_out_in_its_own_thread(app: Flask, services: Services) -> None:
    # SIGALRM, RQ's usual timeout, reaches only the main thread; a crew worker's job is timed out all the same
    job = services.queue.queue.enqueue(f"{JOBS}.busy_for", 30, job_timeout=1, failure_ttl=60)
    with app.app_context():
        crew = Crew(services, 1, burst=True)
    started = time.monotonic()
    crew.start()
    crew.join()
    assert time.monotonic() - started < 10
    failed = Job.fetch(job.id, connection=services.redis)
    assert failed.get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in (failed.latest_result().exc_string or "")


def test_a_crew_worker_installs_no_signal_handlers(services: Services) -> None:
    # signal.signal() raises ValueError outside the main thread; RQ's work() would call it first thing
    errors: list[BaseException] = []

    def work() -> None:
        try:
            ThreadedStepWorker([services.queue.queue], connection=services.redis).work(burst=True)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive() and errors == []


def test_a_crew_worker_asked_to_stop_before_it_starts_does_not_take_a_job(app: Flask, services: Services) -> None:
    with app.app_context():
        crew = Crew(services, 1)
    crew.stop()
    services.queue.queue.enqueue(f"{JOBS}.nap", 0.1)
    crew.start()
    crew.join()
    assert naps(services) == [] and services.queue.queue.count == 1


class FlakyWorker:
    """Stands in for RQ's worker in keep_working: its first run loses Redis, its second ends as asked."""

    def __init__(self, runs: list[str]) -> None:
        self.runs = runs
        self.stop_asked = False

    def work(self, burst: bool = False, with_scheduler: bool = False) -> bool:
        self.runs.append("work")
        if len(self.runs) == 1:
            raise RedisError("Connection refused")
        self.stop_asked = True
        return True


def test_a_worker_that_lost_redis_is_started_afresh_after_a_pause() -> None:
    runs: list[str] = []
    started = time.monotonic()
    keep_working(lambda: FlakyWorker(runs))
    assert runs == ["work", "work"]  # a second worker, not the end of the thread
    assert time.monotonic() - started >= 1.0  # after the first pause of the backoff


def test_a_stop_during_the_pause_starts_no_other_worker() -> None:
    runs: list[str] = []
    stopping = threading.Event()
    threading.Timer(0.2, stopping.set).start()
    keep_working(lambda: FlakyWorker(runs), stopping=stopping)
    assert runs == ["work"]
