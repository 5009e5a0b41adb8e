"""Prometheus metrics: what is counted, and how one scrape sees every process.

Two kinds of numbers:

- **Counted where they happen** (webhooks, ack latency, runs, steps, API
  responses, retries, rate-limit deferrals): counters and histograms updated in
  the process that saw the event. Webhooks are counted by the web process
  (web.metrics); everything about runs and steps is read from the ledger as it
  is committed (engine.observe), so the numbers cannot disagree with the ledger.
- **Read at scrape time** (queue depth, age of the oldest job, scheduled and
  failed jobs, active runs): `LiveCollector` asks Redis/RQ and the database.

Under gunicorn (several processes) and with separate worker processes, set
PROMETHEUS_MULTIPROC_DIR to one directory for all of them (`make run` does):
prometheus-client then keeps each process's values in files there and
`/metrics` sums them (`exposition`). Without it (tests, a single process) the
app's own registry is served.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from engine.conductor import ACTIVE_RUN
from engine.models import Run

if TYPE_CHECKING:
    from engine.observe import RunFinished, RunStarted, StepFinished
    from engine.services import Services

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def multiprocess_dir() -> str | None:
    """The shared directory, if this process runs in multiprocess mode (prometheus-client reads it itself)."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """One process's instruments. Names end in _total / _seconds as Prometheus conventions ask."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.webhooks_received = Counter(
            "hookflow_webhooks_received_total", "Webhook requests received", ["source"], registry=registry
        )
        self.webhooks_accepted = Counter(
            "hookflow_webhooks_accepted_total", "Webhooks stored as accepted events", ["source"], registry=registry
        )
        self.webhooks_duplicate = Counter(
            "hookflow_webhooks_duplicate_total", "Deliveries of an event already stored", ["source"], registry=registry
        )
        self.webhooks_rejected = Counter(
            "hookflow_webhooks_rejected_total", "Webhooks refused, by reason", ["source", "reason"], registry=registry
        )
        self.ack_seconds = Histogram(
            "hookflow_webhook_ack_seconds",
            "Time from request to answer on /hooks",
            ["source"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.runs_started = Counter("hookflow_runs_started_total", "Runs created", ["workflow"], registry=registry)
        self.runs_finished = Counter(
            "hookflow_runs_finished_total", "Runs finished, by outcome", ["workflow", "status"], registry=registry
        )
        self.step_seconds = Histogram(
            "hookflow_step_duration_seconds",
            "Step attempts (and foreach items), by operation and outcome",
            ["operation", "status"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "hookflow_step_retries_total",
            "Automatic retries scheduled after a failed attempt",
            ["operation"],
            registry=registry,
        )
        self.api_responses = Counter(
            "hookflow_api_responses_total",
            "External API responses by connector and HTTP status (`error`: no response)",
            ["connector", "status"],
            registry=registry,
        )
        self.rate_limit_deferrals = Counter(
            "hookflow_rate_limit_deferrals_total",
            "Steps deferred because a connector's shared request budget was spent",
            ["connector"],
            registry=registry,
        )
        self.rate_limit_waits = Histogram(
            "hookflow_rate_limit_wait_seconds",
            "Time calls waited in place for a connector's shared request budget",
            ["connector"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
            registry=registry,
        )

    # Observers for engine.observe: each takes one committed fact.

    def run_started(self, fact: RunStarted) -> None:
        self.runs_started.labels(fact.workflow).inc()

    def run_finished(self, fact: RunFinished) -> None:
        self.runs_finished.labels(fact.workflow, fact.status).inc()

    def step_finished(self, fact: StepFinished) -> None:
        if fact.duration_ms is not None:
            self.step_seconds.labels(fact.operation, fact.status).observe(fact.duration_ms / 1000)
        for status in fact.http_statuses:
            self.api_responses.labels(fact.connector, "error" if status is None else str(status)).inc()
        if fact.retry_scheduled:
            self.retries.labels(fact.operation).inc()
        if fact.status == "deferred":
            self.rate_limit_deferrals.labels(fact.connector).inc()
        for seconds in fact.budget_waits:
            self.rate_limit_waits.labels(fact.connector).observe(seconds)


class LiveCollector(Collector):
    """Numbers read at scrape time: the queue in Redis and the active runs in the ledger."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._queue()
        yield from self._active_runs()

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        queue = self.services.queue.queue
        try:
            depth = queue.count
            oldest = _oldest_age(queue.get_job_ids(0, 1), self.services)  # (offset, length): the head
            scheduled = ScheduledJobRegistry(queue=queue).count
            failed = FailedJobRegistry(queue=queue).count
        except RedisError as exc:
            log.warning("metrics: Redis did not answer (%s); queue metrics left out of this scrape", exc)
            return
        yield GaugeMetricFamily("hookflow_queue_depth", "Step jobs waiting to run now", value=depth)
        yield GaugeMetricFamily(
            "hookflow_queue_oldest_job_age_seconds",
            "How long the job at the head of the queue has waited",
            value=oldest,
        )
        yield GaugeMetricFamily(
            "hookflow_queue_scheduled_jobs", "Delayed retries and waits, not yet due", value=scheduled
        )
        yield GaugeMetricFamily(
            "hookflow_queue_failed_jobs", "Jobs that raised (engine bugs, not step failures)", value=failed
        )

    def _active_runs(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.services.db.session() as session:
                rows = session.execute(
                    select(Run.status, func.count())
                    .where(Run.status.in_([status.value for status in ACTIVE_RUN]))
                    .group_by(Run.status)
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer (%s); active runs left out of this scrape", exc)
            return
        family = GaugeMetricFamily("hookflow_runs_active", "Runs queued or running now", labels=["status"])
        counts = dict(rows)
        for status in sorted(s.value for s in ACTIVE_RUN):
            family.add_metric([status], counts.get(status, 0))
        yield family


def _oldest_age(job_ids: list[str], services: Services) -> float:
    """Seconds the job at the head of the queue has waited (0 when the queue is empty)."""
    if not job_ids:
        return 0.0
    try:
        job = Job.fetch(job_ids[0], connection=services.redis)
    except NoSuchJobError:  # taken by a worker between the two reads: the queue moved, call it fresh
        return 0.0
    if job.enqueued_at is None:
        return 0.0
    return max(0.0, time.time() - job.enqueued_at.timestamp())


def exposition(metrics: Metrics, live: Collector) -> bytes:
    """The text a scrape gets: every process's counted metrics plus the live ones."""
    directory = multiprocess_dir()
    if directory is None:
        registry = CollectorRegistry()
        registry.register(_Forward(metrics.registry))
    else:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    registry.register(live)
    return generate_latest(registry)


class _Forward(Collector):
    """Serves another registry's metrics inside this one (the app's, in single-process mode)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[object]:
        yield from self.source.collect()
