"""RQ as a transport only: "run step S of run R, attempt N, at time T".

Each step job has a deterministic id (`<run>-<step>-<attempt>`) and is enqueued
with RQ's atomic `unique=True`, so the reconciler and the runner can both try
to enqueue the same step without creating two jobs. Delayed retries go through
RQ's scheduler (`schedule_job`), which the worker runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

log = logging.getLogger(__name__)

RUN_STEP = "engine.runner.run_step"
# How long RQ keeps a finished step job (its hash and its result; the ledger holds the step's real outcome).
# Not 0: with result_ttl=0 RQ deletes the job at once, and its delete reads the job's status and, twice, its
# executions, six more round trips per job. A job that lives on for a second is written in the pipeline RQ
# sends anyway: 1.5 ms of worker CPU per job instead of 2.0, and 0.38 ms of Redis's instead of 0.54
# (no-op jobs, 4 x 1,000 each way, 2026-12-07). A finished job holds its id meanwhile: see `missing`.
FINISHED_JOB_TTL_SECONDS = 1
# Job states after which RQ will never run the job again: the step must be re-enqueued.
_DEAD = {JobStatus.FINISHED.value, JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value}


def job_id(run_id: str, step_id: str, attempt: int) -> str:
    return f"{run_id}-{step_id}-{attempt}"


def _not_before(at: datetime) -> datetime:
    """`at` rounded up to a whole second.

    RQ's ScheduledJobRegistry stores whole seconds, truncating (calendar.timegm),
    which would run a retry up to a second before a server's Retry-After allows.
    """
    if at.microsecond:
        return at.replace(microsecond=0) + timedelta(seconds=1)
    return at


class StepQueue:
    """The queue of step jobs."""

    def __init__(self, redis: Redis, name: str, job_timeout: int) -> None:
        self.redis = redis
        self.queue = Queue(name, connection=redis)
        self._job_timeout = job_timeout

    def enqueue(self, run_id: str, step_id: str, attempt: int, at: datetime | None = None) -> bool:
        """Put the step job on the queue (or schedule it for `at`). False if it already exists."""
        options = {
            "job_id": job_id(run_id, step_id, attempt),
            "job_timeout": self._job_timeout,
            "result_ttl": FINISHED_JOB_TTL_SECONDS,
            "failure_ttl": 7 * 24 * 3600,
            "unique": True,
        }
        args = (run_id, step_id, attempt)
        try:
            if at is not None and at > datetime.now(timezone.utc):
                self.queue.enqueue_at(_not_before(at), RUN_STEP, *args, **options)
            else:
                self.queue.enqueue(RUN_STEP, *args, **options)
        except DuplicateJobError:
            log.debug("step job %s already queued", options["job_id"])
            return False
        return True

    def wake(self, run_id: str, step_id: str, attempt: int) -> None:
        """Run a step that was waiting in its concurrency lane, now that the lane is free.

        A one-off job id, not the step's usual one: the waiting run's own job may
        still be finishing its "not yet" under that id, and a unique enqueue would
        then be refused and the wake-up lost. Two jobs for one step are harmless:
        the attempt claim lets only one of them run it.
        """
        self.queue.enqueue(
            RUN_STEP,
            run_id,
            step_id,
            attempt,
            job_id=f"{job_id(run_id, step_id, attempt)}-wake-{uuid.uuid4().hex[:12]}",
            job_timeout=self._job_timeout,
            result_ttl=FINISHED_JOB_TTL_SECONDS,
            failure_ttl=7 * 24 * 3600,
        )

    def missing(self, keys: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
        """The (run, step, attempt) keys with no live job in Redis: absent, or dead for good.

        A dead job (finished, failed, stopped, cancelled) is deleted so the step can be enqueued
        again under the same id. A finished job is dead too: a run still waiting for its step after
        the job ended (its lane was busy) needs another job, and a finished job's id would otherwise
        refuse the unique enqueue until it expires.
        """
        keys = list(keys)
        if not keys:
            return []
        pipe = self.redis.pipeline()
        for run_id, step_id, attempt in keys:
            pipe.hget(Job.key_for(job_id(run_id, step_id, attempt)), "status")
        statuses = pipe.execute()
        lost = []
        for key, status in zip(keys, statuses, strict=True):
            text = status.decode() if isinstance(status, bytes) else status
            if text is None:
                lost.append(key)
            elif text in _DEAD:
                self._delete_dead(job_id(*key))
                lost.append(key)
        return lost

    def _delete_dead(self, dead_id: str) -> None:
        """Delete a job RQ will never run again, so its step can be enqueued under the same id.

        RQ 3.0's Job.delete() fetches each execution the job lists and raises ValueError when
        one's hash has already expired while its id is still listed. That happens to jobs left
        behind by killed workers, which RQ later marks abandoned: exactly the jobs this is for
        (the `make drills` restart drill had two runs of 10,000 waiting forever behind it).
        Ids that point at nothing are dropped first.
        """
        try:
            job = Job.fetch(dead_id, connection=self.redis)
        except NoSuchJobError:
            return  # gone meanwhile: nothing to delete
        registry = job.execution_registry
        for execution_id in registry.get_execution_ids():
            if not self.redis.exists(Execution(execution_id, dead_id, self.redis).key):
                self.redis.zrem(registry.key, execution_id)
        job.delete()

    def promote_overdue(self, older_than: float) -> int:
        """Move scheduled step jobs overdue by `older_than` seconds onto the queue; returns how many.

        RQ's scheduler runs in one worker at a time, holding a lock that outlives
        a killed worker by a minute or more; until another worker takes it over,
        delayed retries would wait. This backstop (run by the reconciler) moves
        them. Should the scheduler move one too, the attempt claim makes the
        second delivery a no-op.
        """
        registry = ScheduledJobRegistry(queue=self.queue)
        overdue = registry.get_jobs_to_schedule(int(time.time() - older_than))
        promoted = 0
        for job in Job.fetch_many(overdue, connection=self.redis):
            if job is None:
                continue
            registry.remove(job)
            self.queue.enqueue_job(job)
            promoted += 1
        return promoted

    def depth(self) -> int:
        return self.queue.count
