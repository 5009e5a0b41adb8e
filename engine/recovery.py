"""The reconciler: the ledger says which step job should exist; make Redis agree.

Redis may be flushed or restarted at any time, a web process may crash between
its commit and its enqueue, and a worker may be killed mid-step. In each case
the database still names the step a run is waiting for, so a periodic pass can
put back what is missing:

- an active run, idle for a grace period, whose step job is absent or dead in
  Redis gets that job enqueued again (at its due time);
- an attempt left `started` for longer than a step can possibly take was lost
  with its worker: it is recorded as failed with an unknown outcome (so a
  create reconciles by natural key) and the run moves on per its retry policy.

Enqueueing is idempotent (deterministic job ids, RQ's unique enqueue), so a
pass that races with a live worker does no harm.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine import store
from engine.conductor import ACTIVE_RUN, AttemptStatus, after_attempt
from engine.errors import TransientStepError
from engine.models import Run, StepAttempt
from engine.runner import failure_of
from engine.services import Services

log = logging.getLogger(__name__)
LOCK_KEY = "hookflow:reconciler:lock"
BATCH = 500
LOST_WORKER = "the worker running this attempt was lost (killed or crashed); outcome unknown"


@dataclass
class ReconcileReport:
    requeued: int = 0
    lost_attempts: int = 0
    promoted: int = 0


def reconcile(services: Services) -> ReconcileReport:
    """One full pass over idle active runs, in batches; returns what it repaired."""
    settings = services.settings
    now = store.utcnow()
    idle_since = now - timedelta(seconds=settings.reconcile_grace_seconds)
    # Past the job timeout RQ itself would have stopped the step, so a `started` attempt older than that
    # (plus the call's own timeout and the grace period) was lost with its worker.
    lost_after = settings.step_job_timeout_seconds + settings.http_timeout_seconds + settings.reconcile_grace_seconds
    lost_before = now - timedelta(seconds=lost_after)
    report = ReconcileReport(promoted=services.queue.promote_overdue(settings.reconcile_grace_seconds))
    after: tuple[datetime, str] | None = None
    while True:
        expected, after = _scan_batch(services, idle_since, lost_before, after, report)
        for key in services.queue.missing(expected):
            services.queue.enqueue(*key, at=expected[key])
            report.requeued += 1
            log.warning("reconciler: re-enqueued run %s step %s attempt %d (its job was missing from Redis)", *key)
        if after is None:
            return report


def _scan_batch(
    services: Services,
    idle_since: datetime,
    lost_before: datetime,
    after: tuple[datetime, str] | None,
    report: ReconcileReport,
) -> tuple[dict[tuple[str, str, int], datetime | None], tuple[datetime, str] | None]:
    """Expected step jobs of one batch of idle runs, and the keyset cursor for the next batch.

    The scan takes no locks (workers claiming steps must never wait on it); only
    a run whose attempt was lost is locked, and re-checked under the lock.
    """
    active = [s.value for s in ACTIVE_RUN]
    with services.db.session() as session:
        # A run waiting behind another in its lane has no job on purpose: the run ahead will wake it.
        query = select(Run).where(Run.status.in_(active), Run.updated_at < idle_since, ~store.blocked_in_lane())
        if after is not None:
            query = query.where((Run.updated_at > after[0]) | ((Run.updated_at == after[0]) & (Run.id > after[1])))
        runs = list(session.scalars(query.order_by(Run.updated_at, Run.id).limit(BATCH)))
        in_flight = _started_attempts(session, [run.id for run in runs])
    expected: dict[tuple[str, str, int], datetime | None] = {}
    for run in runs:
        attempt = in_flight.get((run.id, run.current_step, run.attempt))
        if attempt is not None:
            if attempt.started_at >= lost_before:
                continue  # still within what a live worker may take
            moved_on = _fail_lost_attempt(services, run.id, attempt.id)
            if moved_on is None:
                continue  # it finished while we looked
            report.lost_attempts += 1
            run = moved_on  # the run as it is after failing over
        # A run that changed since the scan at worst gets a job the runner discards as stale.
        if run.status in active and run.current_step:
            expected[(run.id, run.current_step, run.attempt)] = run.due_at
    cursor = (runs[-1].updated_at, runs[-1].id) if len(runs) == BATCH else None
    return expected, cursor


def _started_attempts(session: Session, run_ids: list[str]) -> dict[tuple[str, str, int], StepAttempt]:
    """The in-flight attempts of these runs, keyed (run, step, attempt), in one query."""
    if not run_ids:
        return {}
    rows = session.scalars(
        select(StepAttempt).where(StepAttempt.run_id.in_(run_ids), StepAttempt.status == AttemptStatus.STARTED.value)
    )
    return {(a.run_id, a.step_id, a.attempt): a for a in rows}


def _fail_lost_attempt(services: Services, run_id: str, attempt_id: int) -> Run | None:
    """Record a lost attempt as failed (outcome unknown) and move its run on; None if it finished meanwhile."""
    now = store.utcnow()
    with services.db.session() as session:
        run = session.get(Run, run_id, with_for_update=True)
        attempt = session.get(StepAttempt, attempt_id, with_for_update=True)
        if run is None or attempt is None or attempt.status != AttemptStatus.STARTED.value:
            return None
        error = TransientStepError(LOST_WORKER, outcome_unknown=True)
        attempt.status = AttemptStatus.FAILED.value
        attempt.error_class = error.kind
        attempt.error_message = error.message
        attempt.outcome_unknown = True
        attempt.finished_at = now
        spec = services.spec_for(run.workflow_hash, run.definition)
        policy = services.default_retry.merged_with(spec.all_steps[run.step_index].retry)
        nxt = after_attempt(
            spec, run.step_index, attempt.attempt, run.budget_start, error, policy, failure=failure_of(run)
        )
        store.apply_next(session, run, nxt, now)
        session.commit()
    log.warning(
        "reconciler: run %s step %s attempt %d was lost with its worker", run_id, attempt.step_id, attempt.attempt
    )
    return run


class ReconcilerThread(threading.Thread):
    """Runs `reconcile` every interval in a worker process; a Redis lock lets one worker at a time do it."""

    def __init__(self, services: Services) -> None:
        super().__init__(name="hookflow-reconciler", daemon=True)
        self.services = services
        self.stopping = threading.Event()

    def run(self) -> None:
        interval = self.services.settings.reconcile_interval_seconds
        while not self.stopping.wait(interval):
            try:
                if self.services.redis.set(LOCK_KEY, "1", nx=True, px=int(interval * 1000)):
                    report = reconcile(self.services)
                    if report.requeued or report.lost_attempts or report.promoted:
                        log.warning("reconciler: %s", report)
            except (RedisError, SQLAlchemyError):
                # Redis or the database is down: exactly the outage this thread exists for; try next interval.
                log.exception("reconciler pass failed; retrying in %.0fs", interval)
            except Exception:
                # A bug, here or in a library: a thread that died of it would leave every lost run in
                # this process waiting for a human, so say so loudly, with the traceback, and go on.
                log.exception("reconciler pass failed unexpectedly (a bug); retrying in %.0fs", interval)

    def stop(self) -> None:
        self.stopping.set()
