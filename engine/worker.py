"""A step worker that outlives its dependencies' bad moments.

RQ's work loop already retries a failed dequeue, but a Redis error anywhere
else in it (a heartbeat, the scheduler's lock, cleaning registries) ends
`work()`. A worker that quits whenever Redis restarts would leave runs waiting
for a human, so this loop starts a fresh RQ worker after a pause, and stops
only when it was asked to (SIGTERM/SIGINT) or in burst mode.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, has_app_context
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.utils import now as rq_now
from rq.worker_pool import WorkerPool

from engine.recovery import ReconcilerThread
from engine.services import Services, current_services

log = logging.getLogger(__name__)
MAX_PAUSE_SECONDS = 30.0
HEALTHY_SECONDS = 60.0
HEARTBEAT_EVERY_SECONDS = 1.0


class StepWorker(SimpleWorker):
    """RQ's non-forking worker that remembers being asked to stop, and beats its heart less often.

    RQ's own flag is set only when the signal arrives mid-job; when idle it just
    leaves the loop, which looks the same as leaving it because Redis failed.
    `handle_warm_shutdown_request` is the hook RQ calls on SIGTERM/SIGINT (its
    HerokuWorker overrides it too).
    """

    stop_asked = False

    def handle_warm_shutdown_request(self) -> None:
        self.stop_asked = True
        super().handle_warm_shutdown_request()

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat (the worker's key kept alive for worker_ttl + 60 s), at most once a second on its own.

        RQ sends it three times per job outside any pipeline, three commands each, each its own
        round trip: 9 of the 83 Redis commands and round trips a 4-step run cost. A
        beat skipped within HEARTBEAT_EVERY_SECONDS of the last leaves the key alive for minutes
        still; beats that carry a job's timeout, or ride in RQ's own pipeline, always go out, and
        a lone beat goes out as one pipelined round trip.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        last = self.last_heartbeat
        if timeout is None and last is not None and (rq_now() - last).total_seconds() < HEARTBEAT_EVERY_SECONDS:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()


class PooledStepWorker(StepWorker):
    """A step worker for one process of a pool: `flask worker --processes N`, or RQ's own `rq worker-pool`.

    RQ's WorkerPool forks its processes and calls `work()` on an instance of
    this class in each. Step jobs read Services from the Flask app context: a
    process forked by `flask worker` inherits that context (its inherited
    connections are dropped first); under `rq worker-pool` the app is built
    from the environment with `app_factory`. Each process runs the reconciler
    thread as `flask worker` does (a Redis lock lets one at a time do a pass).
    If Redis goes away, `work()` ends and the pool starts a fresh process.
    """

    app_factory: Callable[[], Flask] | None = None  # set by the entry point that knows the app
    with_reconciler: bool = True

    def work(self, *args: Any, **kwargs: Any) -> bool:
        if has_app_context():
            services = current_services()
            services.after_fork()
            return self._work_with(services, *args, **kwargs)
        if self.app_factory is None:
            raise RuntimeError("PooledStepWorker needs an app context or an app_factory")
        with self.app_factory().app_context():
            services = current_services()
            services.after_fork()
            return self._work_with(services, *args, **kwargs)

    def _work_with(self, services: Services, *args: Any, **kwargs: Any) -> bool:
        thread = ReconcilerThread(services) if self.with_reconciler else None
        if thread is not None:
            thread.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            if thread is not None:
                thread.stop()


def run_pool(services: Services, processes: int, *, burst: bool = False, reconciler: bool = True) -> None:
    """Fork `processes` step workers (RQ's WorkerPool) and keep that many alive until stopped."""
    PooledStepWorker.with_reconciler = reconciler
    services.prepare_to_fork()
    # Collect the parent's garbage (the YAML just parsed), then move what is left out of the collector's
    # reach: the children's collections never write to those objects' headers, so far fewer of the pages
    # they share with the parent get copied (reference counting still copies some). See gc.freeze's docs.
    gc.collect()
    gc.freeze()
    pool = WorkerPool(
        [services.queue.queue], connection=services.redis, num_workers=processes, worker_class=PooledStepWorker
    )
    pool.start(burst=burst, logging_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()))


def run_worker(services: Services, *, burst: bool = False, reconciler: bool = True) -> None:
    """Run step jobs (and delayed retries) until stopped, with the reconciler alongside."""
    thread = ReconcilerThread(services) if reconciler else None
    if thread is not None:
        thread.start()
    pause = 1.0
    try:
        while True:
            worker, started = None, time.monotonic()
            try:
                # RQ talks to Redis already while building a worker (CLIENT SETNAME), and in its own teardown.
                worker = StepWorker([services.queue.queue], connection=services.redis, maintenance_interval=60)
                worker.work(burst=burst, with_scheduler=True)
            except RedisError as exc:
                log.warning("the step worker lost Redis: %s", exc)
            if burst or (worker is not None and worker.stop_asked):
                return
            if time.monotonic() - started > HEALTHY_SECONDS:
                pause = 1.0  # it had been working: this is a fresh trouble, start the backoff over
            log.warning(
                "the step worker stopped without being asked to (Redis unreachable?); starting again in %.0fs", pause
            )
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
    finally:
        if thread is not None:
            thread.stop()
