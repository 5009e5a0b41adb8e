"""The global failure notifier: every failed run is POSTed, as JSON, to FAILURE_WEBHOOK_URL.

Workflow-level `on_failure` steps handle failures the workflow's author
foresaw; this catches every failure of every workflow, so a person hears of it
(a Slack or Teams incoming webhook, a pager, an email gateway).

It never blocks or breaks the code that failed the run: the failure is seen
after its commit (engine.observe) and only a job is enqueued; a worker makes
the HTTP call, with RQ retrying it a few times. If Redis cannot take the job
the notification is logged and dropped; the failed run itself stays visible in
the console and in `hookflow_runs_finished_total{status="failed"}`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
from redis.exceptions import RedisError
from rq import Retry

from engine.observe import Fact, RunFinished
from engine.services import current_services

if TYPE_CHECKING:
    from engine.services import Services

log = logging.getLogger(__name__)

DELIVER = "engine.notify.deliver"
RETRY_DELAYS = [10, 60, 300]


class NotificationFailed(Exception):
    """The notification endpoint did not take the message; RQ retries the job."""


def summary(fact: RunFinished, public_url: str | None) -> dict[str, Any]:
    """The JSON body: fields for machines, `text` for chat webhooks (Slack and Teams read it)."""
    where = f" at step {fact.step}" if fact.step else ""
    link = f"{public_url.rstrip('/')}/runs/{fact.run_id}" if public_url else None
    text = f"Hookflow: run {fact.run_id} of workflow {fact.workflow} failed{where}: {fact.error or 'no reason given'}"
    return {
        "text": f"{text} {link}" if link else text,
        "run_id": fact.run_id,
        "workflow": fact.workflow,
        "event_id": fact.event_id,
        "status": fact.status,
        "step": fact.step,
        "error": fact.error,
        "url": link,
    }


class FailureNotifier:
    """A fact sink: enqueues one notification job per failed run."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, fact: Fact) -> None:
        settings = self.services.settings
        if not isinstance(fact, RunFinished) or fact.status != "failed" or not settings.failure_webhook_url:
            return
        body = summary(fact, settings.public_url)
        try:
            self.services.queue.queue.enqueue(
                DELIVER,
                body,
                retry=Retry(max=len(RETRY_DELAYS), interval=RETRY_DELAYS),
                job_timeout=60,
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
            )
        except RedisError as exc:
            log.error("run %s failed and its notification could not be queued (%s)", fact.run_id, exc, extra=body)


def deliver(body: dict[str, Any]) -> None:
    """RQ job: POST the summary.

    Raises:
        NotificationFailed: no answer, or not a 2xx (RQ retries).
    """
    services = current_services()
    url = services.settings.failure_webhook_url
    if not url:  # unset since the job was queued
        return
    try:
        response = services.http.post(url, json=body, timeout=services.settings.failure_webhook_timeout_seconds)
    except httpx.HTTPError as exc:
        raise NotificationFailed(f"failure notification for {body.get('run_id')}: {exc}") from exc
    if not response.is_success:
        raise NotificationFailed(f"failure notification for {body.get('run_id')}: HTTP {response.status_code}")
    log.info("failure notification sent", extra={"run_id": body.get("run_id"), "status": response.status_code})
