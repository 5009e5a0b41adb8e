"""/metrics: inbound counters from the answers, run and step metrics from the ledger, live queue gauges,
and one sum across processes in multiprocess mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from rq import SimpleWorker
from rq.job import Job
from rq.utils import utcformat

from engine.services import Services
from schemas.settings import PROJECT_ROOT, Settings
from tests.conftest import ADMIN_TOKEN, SECRETS, Drain, Sandbox, post_hook

EXAMPLE = (PROJECT_ROOT / "examples" / "web-enquiry.json").read_text()
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def submit(client: FlaskClient, submission: str = "s-1") -> Any:
    body = json.loads(EXAMPLE) | {"submission_id": submission}
    return post_hook(client, "webform", json.dumps(body).encode(), **TOKEN)


def test_webhooks_are_counted_by_source_and_reason(client: FlaskClient) -> None:
    # Given one accepted delivery, its duplicate, and refusals of several kinds
    assert submit(client).status_code == 202
    assert submit(client).status_code == 200
    assert post_hook(client, "webform", b"{broken", **TOKEN).status_code == 400
    assert post_hook(client, "webform", b"{}", **{"X-Hook-Token": "wrong"}).status_code == 401
    assert post_hook(client, "no-such-source-x1", b"{}").status_code == 404

    samples = scrape(client)

    assert value(samples, "hookflow_webhooks_received_total", source="webform") == 4
    assert value(samples, "hookflow_webhooks_accepted_total", source="webform") == 1
    assert value(samples, "hookflow_webhooks_duplicate_total", source="webform") == 1
    assert value(samples, "hookflow_webhooks_rejected_total", source="webform", reason="unparseable") == 1
    assert value(samples, "hookflow_webhooks_rejected_total", source="webform", reason="verification") == 1
    # An unknown source is never a label value of its own: anyone could mint those
    assert value(samples, "hookflow_webhooks_rejected_total", source="unknown", reason="unknown_source") == 1
    assert not any("no-such-source" in str(key) for key in samples)
    assert value(samples, "hookflow_webhook_ack_seconds_count", source="webform") == 4


def test_runs_steps_retries_and_api_responses_come_from_the_ledger(
    client: FlaskClient, drain: Drain, sandbox: Sandbox
) -> None:
    # Given a run whose contact create fails once with a 500, then succeeds
    sandbox.fault("/contacts/create", status=500, times=1)
    submit(client)
    drain()

    samples = scrape(client)

    assert value(samples, "hookflow_runs_started_total", workflow="web-enquiry") == 1
    assert value(samples, "hookflow_runs_finished_total", workflow="web-enquiry", status="succeeded") == 1
    assert value(samples, "hookflow_step_retries_total", operation="bigchange.contacts.create") == 1
    assert value(samples, "hookflow_api_responses_total", connector="bigchange", status="500") == 1
    ok = sum(
        v
        for (name, labels), v in samples.items()
        if name == "hookflow_api_responses_total" and dict(labels)["status"].startswith("2")
    )
    assert ok >= 4  # contact (after a reconciling lookup), job, constraint, schedule
    count = "hookflow_step_duration_seconds_count"
    assert value(samples, count, operation="bigchange.contacts.create", status="failed") == 1
    assert value(samples, count, operation="bigchange.contacts.create", status="succeeded") == 1
    assert value(samples, count, operation="bigchange.jobs.create", status="succeeded") == 1
    assert value(samples, "hookflow_queue_depth") == 0 and value(samples, "hookflow_runs_active", status="queued") == 0


def test_queue_depth_and_the_oldest_jobs_age_are_read_at_scrape_time(client: FlaskClient, services: Services) -> None:
    # Given two queued step jobs, the one at the head enqueued two minutes ago
    submit(client, "s-1")
    submit(client, "s-2")
    head = Job.fetch(services.queue.queue.get_job_ids()[0], connection=services.redis)
    services.redis.hset(head.key, "enqueued_at", utcformat(datetime.now(timezone.utc) - timedelta(seconds=120)))

    samples = scrape(client)

    assert value(samples, "hookflow_queue_depth") == 2
    # Its age, read now: at least the two minutes it has waited (and not minutes more: a scrape is quick)
    assert 120 <= value(samples, "hookflow_queue_oldest_job_age_seconds") < 120 + 600
    assert value(samples, "hookflow_runs_active", status="queued") == 2
    assert value(samples, "hookflow_queue_failed_jobs") == 0


def test_an_empty_queue_has_no_oldest_job(client: FlaskClient) -> None:
    samples = scrape(client)
    assert value(samples, "hookflow_queue_depth") == 0
    assert ("hookflow_queue_oldest_job_age_seconds", ()) in samples
    assert value(samples, "hookflow_queue_oldest_job_age_seconds") == 0


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


@pytest.mark.parametrize(
    "settings_overrides",
    [{"bigchange_requests_per_second": 0.2, "bigchange_burst": 1, "rate_limit_max_wait_seconds": 0}],
    indirect=True,
)
def test_a_spent_request_budget_counts_as_a_rate_limit_deferral(
    app: Flask, client: FlaskClient, services: Services, sandbox: Sandbox
) -> None:
    submit(client)
    with app.app_context():  # the contact takes the only token; the job step finds the budget spent
        SimpleWorker([services.queue.queue], connection=services.redis).work(burst=True, with_scheduler=False)
    samples = scrape(client)
    assert value(samples, "hookflow_rate_limit_deferrals_total", connector="bigchange") == 1
    assert value(samples, "hookflow_queue_scheduled_jobs") == 1


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": SecretStr("scrape-me")}], indirect=True)
def test_metrics_can_require_a_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert "hookflow_queue_depth" in str(scrape(client, Authorization="Bearer scrape-me"))


COUNT_IN_A_PROCESS = """
from prometheus_client import CollectorRegistry
from engine.metrics import Metrics
metrics = Metrics(CollectorRegistry())
for _ in range(3):
    metrics.webhooks_received.labels("webform").inc()
metrics.ack_seconds.labels("webform").observe(0.01)
"""

SCRAPE_ALL = """
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector
from engine.metrics import Metrics, exposition

class Nothing(Collector):
    def collect(self):
        return iter(())

print(exposition(Metrics(CollectorRegistry()), Nothing()).decode())
"""


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    # Given two processes (two gunicorn workers, or a web and a worker) sharing PROMETHEUS_MULTIPROC_DIR
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", textwrap.dedent(COUNT_IN_A_PROCESS)], env=env, check=True)

    # When a third one serves /metrics
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRAPE_ALL)], env=env, check=True, capture_output=True, text=True
    ).stdout

    # Then it reports the sum of both, even though both have exited
    samples = parse(out)
    assert value(samples, "hookflow_webhooks_received_total", source="webform") == 6
    assert value(samples, "hookflow_webhook_ack_seconds_count", source="webform") == 2


def process_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment a separate process needs to be this test's app: its settings as env vars, the secrets."""
    env = {key: value for key, value in os.environ.items() if key.lower() not in Settings.model_fields}
    for name in settings.model_fields_set:
        setting = getattr(settings, name)
        if isinstance(setting, SecretStr):
            setting = setting.get_secret_value()
        secret = SecretStr.get_secret_value
        env[name.upper()] = json.dumps(setting, default=secret) if isinstance(setting, dict | list) else str(setting)
    return {**env, **SECRETS, "PYTHONPATH": str(PROJECT_ROOT), **more}


def test_run_and_step_metrics_of_a_separate_worker_process_reach_the_web_apps_metrics(
    client: FlaskClient, settings: Settings, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run whose steps a real `flask worker` process runs, sharing PROMETHEUS_MULTIPROC_DIR with web
    shared = tmp_path / "prometheus"
    run_id = submit(client).get_json()["runs"][0]
    worker = [str(Path(sys.executable).parent / "flask"), "--app", "app", "worker", "--burst", "--no-reconciler"]
    env = process_env(settings, PROMETHEUS_MULTIPROC_DIR=str(shared))
    subprocess.run(worker, env=env, cwd=PROJECT_ROOT, check=True, timeout=120, capture_output=True)
    assert client.get(f"/api/runs/{run_id}", headers=ADMIN).get_json()["status"] == "succeeded"

    # When the web app serves /metrics in multiprocess mode
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    samples = scrape(client)

    # Then the worker's run and step figures are in it, though that process has exited
    assert value(samples, "hookflow_runs_finished_total", workflow="web-enquiry", status="succeeded") == 1
    count = "hookflow_step_duration_seconds_count"
    for operation in ("bigchange.contacts.create", "bigchange.jobs.create", "bigchange.jobs.constraints.create"):
        assert value(samples, count, operation=operation, status="succeeded") == 1, operation
    answers = [v for (name, labels), v in samples.items() if name == "hookflow_api_responses_total"]
    assert sum(answers) >= 3


def test_in_place_waits_for_the_request_budget_are_observed_from_the_calls() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from engine.metrics import Metrics
    from engine.observe import StepFinished

    registry = CollectorRegistry()
    fact = StepFinished("r", "e", "w", "s", "lightening.contacts.get", 1, "succeeded", 5.0, None, [200], [0.25, 0.5])
    Metrics(registry).step_finished(fact)
    samples = parse(generate_latest(registry).decode())
    assert value(samples, "hookflow_rate_limit_wait_seconds_count", connector="lightening") == 2
    assert value(samples, "hookflow_rate_limit_wait_seconds_sum", connector="lightening") == 0.75
