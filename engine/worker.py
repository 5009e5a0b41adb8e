"""Step workers that outlive their dependencies' bad moments, one or several per process.

RQ's work loop already retries a failed dequeue, but a Redis error anywhere
else in it (a heartbeat, the scheduler's lock, cleaning registries) ends
`work()`. A worker that quits whenever Redis restarts would leave runs waiting
for a human, so `keep_working` starts a fresh RQ worker after a pause, and
stops only when it was asked to (SIGTERM/SIGINT) or in burst mode.

A step spends most of its time waiting for an API, and every process costs
CPU on each run it serves (its caches go cold among many; docs/running.md), so
a process may run several step workers, one per thread (`Crew`): the main
thread's worker is RQ's as usual, the others stop when it is asked to.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from flask import Flask, current_app, has_app_context
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.utils import now as rq_now
from rq.worker.base import StopRequested
from rq.worker_pool import WorkerPool

from engine.recovery import ReconcilerThread
from engine.services import Services, current_services

log = logging.getLogger(__name__)
MAX_PAUSE_SECONDS = 30.0
HEALTHY_SECONDS = 60.0
HEARTBEAT_EVERY_SECONDS = 10.0  # the worker's key lives worker_ttl + 60 s (480 s) from each beat
JOIN_POLL_SECONDS = 0.2
IDLE_SLICE_SECONDS = 1  # how long a worker waits on an empty queue before looking for a stop request again
REDIS_RETRY_MAX_SECONDS = 2.0  # the longest a worker sleeps between tries while Redis does not answer


class StepWorker(SimpleWorker):
    """RQ's non-forking worker that remembers being asked to stop, and beats its heart less often.

    RQ's own flag is set only when the signal arrives mid-job; when idle it just
    leaves the loop, which looks the same as leaving it because Redis failed.
    `handle_warm_shutdown_request` is the hook RQ calls on SIGTERM/SIGINT (its
    HerokuWorker overrides it too); `on_stop` passes the request on to the
    process's other workers, if it has any.
    """

    stop_asked = False
    on_stop: Callable[[], None] | None = None
    on_cold_stop: Callable[[], None] | None = None
    # RQ retries a dequeue that lost Redis after 1, 2, 4 ... up to 60 s, sleeping without
    # looking at stop requests, so a worker asked to stop just after an outage could sleep on
    # for up to a minute (a crew thread, which gets no signal, always would). Capped, a stop is
    # seen within a couple of seconds of Redis answering again, and a returning Redis is used
    # as soon; the price is a retry, and its log line, every 2 s per step worker while Redis is down.
    max_connection_wait_time = REDIS_RETRY_MAX_SECONDS
    # RQ's "job ... result is kept for 1 seconds" after every job: always the same here (engine.queue's
    # FINISHED_JOB_TTL_SECONDS), and a line per run no one reads; RQ's own switch turns it off.
    log_result_lifespan = False

    def handle_warm_shutdown_request(self) -> None:
        self.stop_asked = True
        if self.on_stop is not None:
            self.on_stop()
        super().handle_warm_shutdown_request()

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """RQ's cold stop (a second SIGTERM/SIGINT), passed on: the process's other workers are not waited for.

        RQ raises SystemExit here, or ignores a repeat within a second of the first signal.
        """
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            if self.on_cold_stop is not None:
                self.on_cold_stop()
            raise

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's blocking dequeue, in slices of IDLE_SLICE_SECONDS while the queue is empty.

        RQ blocks on Redis for minutes (worker_ttl - 15 s), and a stop request may reach
        the worker only when that returns: Python runs signal handlers in the main
        thread between bytecodes, and the kernel may have interrupted another thread's
        system call instead (RQ's pubsub thread, the reconciler, a crew worker). In a
        bench run, idle pool workers told to stop lingered ~55 s, until jobs arrived,
        and each took one as it left (the job then waits in RQ's intermediate queue
        until RQ's cleanup fails it and the reconciler enqueues it again). Sliced, a
        worker sees the request within a second, between two dequeues; a crew worker,
        which gets no signal at all, needs this to stop while idle.
        """
        if timeout is None:  # burst mode: RQ does not block
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        idle_since = time.monotonic()
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(IDLE_SLICE_SECONDS, IDLE_SLICE_SECONDS)
            if result is not None:
                return result
            if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                return None
        raise StopRequested()

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat (the worker's key kept alive for worker_ttl + 60 s), at most every 10 s on its own.

        RQ sends it three times per job outside any pipeline, three commands each, each its own
        round trip: 9 of the 83 Redis commands and round trips a 4-step run cost; and twice per
        idle slice (see dequeue_job_and_maintain_ttl), which at one beat a second made an idle
        worker send 6.2 Redis commands a second. A beat skipped within HEARTBEAT_EVERY_SECONDS of
        the last leaves the key alive for minutes still; beats that carry a job's timeout, or ride
        in RQ's own pipeline, always go out, and a lone beat goes out as one pipelined round trip.
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


class ThreadedStepWorker(StepWorker):
    """A step worker in a thread of its own, beside the process's main one (see `Crew`).

    Python runs signal handlers in the main thread only, and only that thread may
    install them, so this worker neither installs handlers nor times its jobs out
    with SIGALRM (RQ's TimerDeathPenalty raises the timeout in this thread instead);
    it stops when `ask_to_stop` is called, after its current job, or within a
    second when idle.
    """

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        """Nothing to install: the main thread's worker receives the signals and passes stop requests on."""

    def ask_to_stop(self) -> None:
        self.stop_asked = True
        self._stop_requested = True  # RQ's own flag, read by work() between jobs and by the sliced dequeue


class Crew:
    """`size` step workers, each in a thread of this process, each restarted as `keep_working` does.

    Threads, not more processes, to have more steps waiting on APIs at once:
    they share one interpreter's code, caches and connection pools, where each
    process beyond a few costs CPU per run (docs/running.md, "Workers"). The
    process's main thread runs its own worker and calls `stop` when that one is
    asked to stop; each crew worker then finishes its current job. On a cold stop
    (`abandon`) nobody waits for them: their steps are left to the reconciler, as a
    killed worker's are, and their daemon threads end with the process.
    """

    def __init__(self, services: Services, size: int, *, burst: bool = False) -> None:
        self._services = services
        self._app = current_app._get_current_object()  # type: ignore[attr-defined]  # each thread pushes its context
        self._burst = burst
        self._stopping = threading.Event()
        self._abandoned = threading.Event()
        self._lock = threading.Lock()
        self._workers: set[ThreadedStepWorker] = set()
        self._threads = [
            threading.Thread(target=self._work, name=f"step-worker-{n + 1}", daemon=True) for n in range(size)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Ask every worker of the crew to stop after its current job (returns at once)."""
        self._stopping.set()
        with self._lock:
            for worker in self._workers:
                worker.ask_to_stop()

    def abandon(self) -> None:
        """Stop, and let `join` return without waiting for the steps in hand."""
        self._abandoned.set()
        self.stop()

    def join(self) -> None:
        """Wait until every crew worker has left, or the crew is abandoned."""
        for thread in self._threads:
            while thread.is_alive() and not self._abandoned.is_set():
                thread.join(JOIN_POLL_SECONDS)

    def _work(self) -> None:
        with self._app.app_context():
            keep_working(self._new_worker, burst=self._burst, stopping=self._stopping)

    def _new_worker(self) -> ThreadedStepWorker:
        worker = ThreadedStepWorker(
            [self._services.queue.queue], connection=self._services.redis, maintenance_interval=60
        )
        with self._lock:
            self._workers = {w for w in self._workers if not w.stop_asked}
            self._workers.add(worker)
            if self._stopping.is_set():
                worker.ask_to_stop()
        return worker


def keep_working(
    new_worker: Callable[[], StepWorker],
    *,
    burst: bool = False,
    with_scheduler: bool = False,
    stopping: threading.Event | None = None,
) -> None:
    """Run a fresh worker from `new_worker` whenever the last one left its loop unasked, pausing longer each time."""
    stopping = stopping or threading.Event()
    pause = 1.0
    while True:
        worker, started = None, time.monotonic()
        try:
            # RQ talks to Redis already while building a worker (CLIENT SETNAME), and in its own teardown.
            worker = new_worker()
            worker.work(burst=burst, with_scheduler=with_scheduler)
        except RedisError as exc:
            log.warning("the step worker lost Redis: %s", exc)
        if burst or (worker is not None and worker.stop_asked) or stopping.is_set():
            return
        if time.monotonic() - started > HEALTHY_SECONDS:
            pause = 1.0  # it had been working: this is a fresh trouble, start the backoff over
        log.warning(
            "the step worker stopped without being asked to (Redis unreachable?); starting again in %.0fs", pause
        )
        if stopping.wait(pause):  # interruptible: a signal's handler still runs meanwhile
            return
        pause = min(pause * 2, MAX_PAUSE_SECONDS)


class PooledStepWorker(StepWorker):
    """A step worker for one process of a pool: `flask worker --processes N`, or RQ's own `rq worker-pool`.

    RQ's WorkerPool forks its processes and calls `work()` on an instance of
    this class in each. Step jobs read Services from the Flask app context: a
    process forked by `flask worker` inherits that context (its inherited
    connections are dropped first); under `rq worker-pool` the app is built
    from the environment with `app_factory`. Each process runs the reconciler
    thread as `flask worker` does (a Redis lock lets one at a time do a pass),
    and `threads - 1` more step workers in a `Crew`. If Redis goes away,
    `work()` ends and the pool starts a fresh process.
    """

    app_factory: Callable[[], Flask] | None = None  # set by the entry point that knows the app
    with_reconciler: bool = True
    threads: int = 1  # step workers per process, this one included

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
        crew = Crew(services, self.threads - 1, burst=kwargs.get("burst", False))
        self.on_stop, self.on_cold_stop = crew.stop, crew.abandon
        if thread is not None:
            thread.start()
        crew.start()
        try:
            worked = super().work(*args, **kwargs)
        finally:
            crew.stop()  # after a cold stop (RQ's SystemExit) the crew's daemon threads end with the process
            if thread is not None:
                thread.stop()
        crew.join()  # a warm stop: the crew finishes its steps in hand too
        return worked


def run_pool(
    services: Services, processes: int, *, threads: int = 1, burst: bool = False, reconciler: bool = True
) -> None:
    """Fork `processes` processes of `threads` step workers each (RQ's WorkerPool); keep them alive until stopped."""
    PooledStepWorker.with_reconciler = reconciler
    PooledStepWorker.threads = threads
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


def run_worker(services: Services, *, threads: int = 1, burst: bool = False, reconciler: bool = True) -> None:
    """Run step jobs (and delayed retries) in `threads` step workers until stopped, with the reconciler alongside."""
    thread = ReconcilerThread(services) if reconciler else None
    crew = Crew(services, threads - 1, burst=burst)
    if thread is not None:
        thread.start()
    crew.start()

    def main_worker() -> StepWorker:
        worker = StepWorker([services.queue.queue], connection=services.redis, maintenance_interval=60)
        worker.on_stop, worker.on_cold_stop = crew.stop, crew.abandon
        return worker

    try:
        keep_working(main_worker, burst=burst, with_scheduler=True)
    finally:
        crew.stop()  # after a cold stop (RQ's SystemExit) the crew's daemon threads end with the process
        if thread is not None:
            thread.stop()
    crew.join()  # a warm stop: the crew finishes its steps in hand too
