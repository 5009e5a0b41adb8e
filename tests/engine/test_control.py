"""Operator actions: cancel (and what it does to concurrency lanes), bulk retry."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from engine import control
from engine.models import Run, StepAttempt
from engine.services import Services
from schemas.api import BulkRetryIn
from tests.conftest import SECRETS, SHIPPED_WORKFLOWS, Drain, Sandbox, post_hook

TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}
LANE = """\
name: w
on: {source: webform}
concurrency: "{{ event.data.email }}"
steps:
  - id: first
    uses: core.log
    with: {message: "a"}
"""


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    directory.mkdir()
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", directory)
    (directory / "w.yaml").write_text(textwrap.dedent(LANE))
    return directory


def send(client: FlaskClient, submission: str, email: str) -> str:
    body = json.dumps({"submission_id": submission, "name": "Jane", "email": email}).encode()
    response = post_hook(client, "webform", body, **TOKEN)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["runs"][0]


def statuses(services: Services, *run_ids: str) -> list[str]:
    with services.db.session() as session:
        return [session.get(Run, run_id).status for run_id in run_ids]


def mark_running(services: Services, run_id: str) -> None:
    with services.db.session() as session:
        session.get(Run, run_id).status = "running"
        session.commit()


def test_cancelling_the_run_holding_a_lane_hands_the_lane_on(
    client: FlaskClient, services: Services, drain: Drain
) -> None:
    # Given a lane with a running run and two waiting behind it, and a run in another lane
    holder, second, third = (send(client, f"s-{i}", "jane@example.com") for i in range(3))
    other = send(client, "s-other", "bob@example.com")
    mark_running(services, holder)

    # When the holder is cancelled
    control.cancel_run(services, holder)

    # Then the next run of its lane runs, then the one after it; the other lane is untouched
    drain()
    assert statuses(services, holder, second, third, other) == ["cancelled", "succeeded", "succeeded", "succeeded"]


def test_cancelling_a_waiting_run_drops_nothing_else_in_its_lane(
    client: FlaskClient, services: Services, drain: Drain
) -> None:
    holder, waiting, behind = (send(client, f"s-{i}", "jane@example.com") for i in range(3))
    mark_running(services, holder)

    control.cancel_run(services, waiting)
    assert statuses(services, holder, waiting, behind) == ["running", "cancelled", "queued"]

    # The holder finishes (its job was queued at intake) and wakes the run behind the cancelled one
    drain()
    assert statuses(services, holder, waiting, behind) == ["succeeded", "cancelled", "succeeded"]


@pytest.fixture
def shipped(workflows_dir: Path) -> Path:
    shutil.copy(SHIPPED_WORKFLOWS / "web-enquiry.yaml", workflows_dir)
    (workflows_dir / "w.yaml").unlink()
    return workflows_dir


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retry_initial_seconds": 60, "retry_max_delay_seconds": 60}  # the retry waits until we run it


def test_a_run_waiting_for_its_retry_is_cancelled_and_the_retry_never_calls(
    shipped: Path, app: Flask, client: FlaskClient, services: Services, sandbox: Sandbox
) -> None:
    # Given a run whose first attempt failed with a transient error (its retry is scheduled)
    sandbox.fault("/contacts/create", status=503, times=10)
    body = (SHIPPED_WORKFLOWS.parent / "examples" / "web-enquiry.json").read_text()
    (run_id,) = post_hook(client, "webform", body.encode(), **TOKEN).get_json()["runs"]
    with app.app_context():
        SimpleWorker([services.queue.queue], connection=services.redis).work(burst=True, with_scheduler=False)
    calls = len(sandbox.calls("/contacts/create"))
    (retry_id,) = ScheduledJobRegistry(queue=services.queue.queue).get_job_ids()

    # When it is cancelled, and then its scheduled retry comes due and runs
    cancelled = control.cancel_run(services, run_id)
    retry = Job.fetch(retry_id, connection=services.redis)
    with app.app_context():
        retry.func(*retry.args)

    # Then no further call was made and the run stays cancelled
    assert cancelled.status == "cancelled"
    assert len(sandbox.calls("/contacts/create")) == calls
    with services.db.session() as session:
        assert session.get(Run, run_id).status == "cancelled"
        assert session.query(StepAttempt).filter_by(run_id=run_id).count() == 1


def test_cancel_refuses_unknown_and_finished_runs(client: FlaskClient, services: Services, drain: Drain) -> None:
    with pytest.raises(control.RunNotFound):
        control.cancel_run(services, "run_nope")
    run_id = send(client, "s-1", "jane@example.com")
    drain()
    with pytest.raises(control.RunConflict, match="is succeeded"):
        control.cancel_run(services, run_id)


def test_bulk_retry_skips_a_run_that_cannot_be_retried_and_goes_on(
    client: FlaskClient, services: Services, workflows_dir: Path, drain: Drain
) -> None:
    # Given a failed run that failed before any step ran (its trigger could not be evaluated)
    (workflows_dir / "w.yaml").write_text(LANE.replace("event.data.email", "event.data.missing.deeper"))
    run_id = send(client, "s-1", "jane@example.com")
    assert statuses(services, run_id) == ["failed"]

    outcome = control.retry_runs(services, BulkRetryIn())

    assert outcome.matched == [run_id] and outcome.retried == []
    assert "failed before its first step" in outcome.skipped[run_id]
