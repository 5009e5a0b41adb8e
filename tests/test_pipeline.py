"""The whole path: webhook -> ledger -> RQ step jobs -> BigChange sandbox over HTTP.

Real Redis, real RQ SimpleWorkers (the `drain` fixture), real HTTP to the
simulator. Each test states a guarantee from DESIGN.md and checks it against
what BigChange actually received.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from engine.models import Run, StepAttempt
from engine.recovery import reconcile
from engine.runner import run_step
from engine.services import Services
from engine.verify import sign_hmac
from tests.conftest import SECRETS, Drain, Sandbox, claim, post_hook

EXAMPLES = Path(__file__).parents[1] / "examples"
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def enquiry(**changes: Any) -> bytes:
    data = json.loads((EXAMPLES / "web-enquiry.json").read_text())
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def submit(client: FlaskClient, body: bytes | None = None) -> dict[str, Any]:
    response = post_hook(client, "webform", body or enquiry(), **TOKEN)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def get_run(client: FlaskClient, admin: dict[str, str], run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/runs/{run_id}", headers=admin)
    assert response.status_code == 200
    return response.get_json()


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


def api_paths(sandbox: Sandbox) -> list[str]:
    return [f"{c['method']} {c['path']}" for c in sandbox.calls()]


def test_the_tour_a_web_enquiry_becomes_a_scheduled_job(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given the example enquiry from the README
    accepted = submit(client, (EXAMPLES / "web-enquiry.json").read_bytes())
    # When the workers have run
    drain()
    run = get_run(client, admin, accepted["runs"][0])
    # Then the run succeeded through the four steps, in order
    assert run["status"] == "succeeded" and run["event_id"] == accepted["event_id"]
    assert [(s["id"], s["uses"], s["status"]) for s in run["steps"]] == [
        ("contact", "bigchange.contacts.create", "succeeded"),
        ("job", "bigchange.jobs.create", "succeeded"),
        ("constraint", "bigchange.jobs.constraints.create", "succeeded"),
        ("schedule", "bigchange.jobs.scheduling", "succeeded"),
    ]
    assert api_paths(sandbox) == [
        "POST /contacts/create",
        "POST /jobs/create",
        "POST /jobs/constraints/create",
        "POST /jobs/scheduling",
    ]
    # And the ids chain from step to step, as BigChange received them
    contact_id = step(run, "contact")["output"]["id"]
    job_id = step(run, "job")["output"]["id"]
    create_contact, create_job, constrain, schedule = (c["json"] for c in sandbox.calls())
    assert create_contact == {
        "name": "Mrs Jane Jones",
        "reference": f"WEB-{accepted['event_id']}",
        "postalCode": "SW1A 1AA",
        "extraInformation": "Email: jane.jones@example.com / Phone: +44 7700 900123",
    }
    assert create_job["contactId"] == contact_id and create_job["typeId"] == 42
    assert constrain == {"jobId": job_id, "type": "jobMustStartInAvailableHours"}
    assert schedule == {"jobId": job_id, "resourceId": 100, "plannedStartAt": "2026-12-01T09:00:00Z"}
    # And each attempt shows the rendered request and the API's response
    attempt = step(run, "job")["attempts"][0]
    assert attempt["input"] == create_job
    (call,) = attempt["calls"]
    assert (call["method"], call["status"], call["body"], call["response"]) == ("POST", 201, create_job, {"id": job_id})
    (job,) = sandbox.state()["jobs"]
    assert (job["id"], job["contactId"], job["status"], job["resourceId"]) == (job_id, contact_id, "scheduled", 100)


def test_an_enquiry_without_a_preferred_date_skips_scheduling(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    accepted = submit(client, enquiry(preferred_date=None))
    drain()
    run = get_run(client, admin, accepted["runs"][0])
    assert run["status"] == "succeeded"
    assert step(run, "schedule")["status"] == "skipped"
    assert "POST /jobs/scheduling" not in api_paths(sandbox)


def test_the_same_event_twice_makes_one_contact_and_one_job(
    client: FlaskClient, drain: Drain, sandbox: Sandbox
) -> None:
    first = submit(client)
    drain()
    again = post_hook(client, "webform", enquiry(), **TOKEN)
    drain()
    assert again.status_code == 200 and again.get_json()["event_id"] == first["event_id"]
    state = sandbox.state()
    assert (len(state["contacts"]), len(state["jobs"])) == (1, 1)


def test_five_concurrent_deliveries_make_one_contact_and_one_job(app: Flask, drain: Drain, sandbox: Sandbox) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(5)

    def deliver() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(post_hook(client, "webform", enquiry(), **TOKEN).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain()
    assert sorted(statuses) == [200, 200, 200, 200, 202]
    state = sandbox.state()
    assert (len(state["contacts"]), len(state["jobs"])) == (1, 1)


def test_contacts_create_failing_twice_with_500_still_makes_exactly_one_contact(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    sandbox.fault("/contacts/create", status=500, times=2)
    accepted = submit(client)
    drain()
    run = get_run(client, admin, accepted["runs"][0])
    assert run["status"] == "succeeded"
    attempts = step(run, "contact")["attempts"]
    assert [(a["status"], a["error_class"]) for a in attempts] == [
        ("failed", "transient"),
        ("failed", "transient"),
        ("succeeded", None),
    ]
    assert "HTTP 500: Injected fault" in attempts[0]["error"]
    assert len(sandbox.state()["contacts"]) == 1


def test_a_create_whose_response_was_lost_is_reconciled_not_repeated(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given BigChange creates the contact but the 500 hides that from us
    sandbox.fault("/contacts/create", status=500, times=1, when="after")
    accepted = submit(client)
    drain()
    run = get_run(client, admin, accepted["runs"][0])
    # Then the retry finds the contact by its reference instead of creating a second one
    assert run["status"] == "succeeded"
    first, second = step(run, "contact")["attempts"]
    assert first["outcome_unknown"] is True
    assert second["reconciled"] is True
    assert [c["url"].rsplit("/", 2)[-2:] for c in second["calls"]] == [["contacts", "list"]]
    (contact,) = sandbox.state()["contacts"]
    assert step(run, "contact")["output"]["id"] == contact["id"]
    assert step(run, "job")["attempts"][0]["input"]["contactId"] == contact["id"]


def test_a_permanent_400_fails_the_run_and_a_retry_resumes_at_the_failed_step(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given jobs/create refuses the request
    sandbox.fault(
        "/jobs/create", status=400, body={"code": "ERROR_CODE_INPUT_ERROR", "message": "Job type is archived"}
    )
    run_id = submit(client)["runs"][0]
    drain()
    failed = get_run(client, admin, run_id)
    # Then the run failed at that step with the API's own words, after one attempt
    assert failed["status"] == "failed" and failed["current_step"] == "job"
    assert failed["error"] == "step job: HTTP 400: Job type is archived"
    assert [a["error_class"] for a in step(failed, "job")["attempts"]] == ["permanent"]
    assert step(failed, "job")["status"] == "failed" and step(failed, "constraint")["status"] == "pending"
    # When the cause is fixed and the run retried
    sandbox.clear_faults()
    retried = client.post(f"/api/runs/{run_id}/retry", headers=admin)
    assert retried.status_code == 202 and retried.get_json()["id"] == run_id
    drain()
    done = get_run(client, admin, run_id)
    # Then the same run completes, the contact step was not run again
    assert done["status"] == "succeeded"
    assert len(step(done, "contact")["attempts"]) == 1
    assert [a["status"] for a in step(done, "job")["attempts"]] == ["failed", "succeeded"]
    state = sandbox.state()
    assert (len(state["contacts"]), len(state["jobs"])) == (1, 1)


def test_a_429_is_retried_after_the_servers_retry_after(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    sandbox.fault("/jobs/constraints/create", status=429, times=1, retry_after=1)
    run_id = submit(client)["runs"][0]
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    first, second = step(run, "constraint")["attempts"]
    assert first["error_class"] == "transient" and first["outcome_unknown"] is False
    started_gap = (_parse(second["started_at"]) - _parse(first["finished_at"])).total_seconds()
    assert started_gap >= 1.0  # scheduled no earlier than Retry-After, by RQ's scheduler


def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("settings_overrides", [{"retry_max_attempts": 3}])
def test_transient_failures_give_up_after_the_attempt_budget(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a default budget of 3 attempts (RETRY_MAX_ATTEMPTS; the shipped step sets none of its own)
    sandbox.fault("/contacts/create", status=503, times=10)
    run_id = submit(client)["runs"][0]
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert run["error"].startswith("step contact: gave up after 3 attempts: HTTP 503")
    assert len(step(run, "contact")["attempts"]) == 3
    assert sandbox.state()["contacts"] == []


@pytest.mark.parametrize(
    "field_value",
    ["{{ 7*7 }}", "{% for x in range(3) %}boom{% endfor %}", "{{ ''.__class__.__mro__ }}"],
)
def test_template_syntax_in_form_fields_reaches_bigchange_as_literal_text(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, field_value: str
) -> None:
    submit(client, enquiry(name=field_value, message=f"Please {field_value}"))
    drain()
    (create_contact,) = sandbox.calls("/contacts/create")
    (create_job,) = sandbox.calls("/jobs/create")
    assert create_contact["json"]["name"] == field_value
    assert create_job["json"]["description"] == f"Please {field_value}"


@pytest.mark.parametrize("settings_overrides", [{"chain_steps_max": 2}])
def test_a_flushed_redis_loses_no_run(
    app: Flask, client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given three runs in flight, two of their four steps done (a job goes on for at most two steps here)
    run_ids = [submit(client, enquiry(submission_id=f"sub-{i}"))["runs"][0] for i in range(3)]
    from rq import SimpleWorker

    with app.app_context():
        SimpleWorker([services.queue.queue], connection=services.redis).work(
            burst=True, max_jobs=3, logging_level="WARNING"
        )
    assert [get_run(client, admin, r)["current_step"] for r in run_ids] == ["constraint"] * 3
    # When Redis loses everything
    services.redis.flushdb()
    assert services.queue.queue.count == 0
    # Then a reconciler pass puts back each run's next step and they all complete
    report = reconcile(services)
    assert report.requeued == 3
    drain()
    assert {get_run(client, admin, r)["status"] for r in run_ids} == {"succeeded"}
    state = sandbox.state()
    assert (len(state["contacts"]), len(state["jobs"])) == (3, 3)


def test_a_job_goes_on_to_the_next_step_due_at_once_and_each_step_keeps_its_own_record(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    run_id = submit(client)["runs"][0]
    assert drain() == 1  # contact -> job -> constraint -> schedule without a queue round trip
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert [(s["id"], s["status"], len(s["attempts"])) for s in run["steps"]] == [
        ("contact", "succeeded", 1),
        ("job", "succeeded", 1),
        ("constraint", "succeeded", 1),
        ("schedule", "succeeded", 1),
    ]


@pytest.mark.parametrize("settings_overrides", [{"chain_steps_max": 2}])
def test_a_job_hands_the_run_back_to_the_queue_after_chain_steps_max_steps(
    client: FlaskClient, drain: Drain, admin: dict[str, str]
) -> None:
    run_id = submit(client)["runs"][0]
    assert drain() == 2  # contact + job, then constraint + schedule
    assert get_run(client, admin, run_id)["status"] == "succeeded"


def test_a_retry_goes_through_the_queue_not_the_running_job(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    sandbox.fault("/jobs/create", status=503, times=1)
    run_id = submit(client)["runs"][0]
    # contact -> job (fails): the retry is scheduled; its job then goes on to constraint and schedule
    assert drain() == 2
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert [a["status"] for a in step(run, "job")["attempts"]] == ["failed", "succeeded"]


def test_the_reconciler_leaves_queued_jobs_alone(client: FlaskClient, services: Services) -> None:
    submit(client)
    assert reconcile(services).requeued == 0
    assert services.queue.queue.count == 1


def test_a_worker_lost_mid_create_is_recovered_by_natural_key(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a worker claimed the contact step, made the API call, and died before recording it
    accepted = submit(client)
    run_id = accepted["runs"][0]
    services.redis.flushdb()
    assert claim(services, run_id, "contact") is not None
    sandbox.control.post(
        "/contacts/create",
        json={"name": "Mrs Jane Jones", "reference": f"WEB-{accepted['event_id']}"},
        headers={"X-API-Key": services.settings.bigchange_api_key.get_secret_value()},
    ).raise_for_status()
    with services.db.session() as session:
        attempt = session.scalars(sa.select(StepAttempt).filter_by(run_id=run_id)).one()
        attempt.started_at -= timedelta(hours=1)
        session.commit()
    # When the reconciler runs
    report = reconcile(services)
    assert (report.lost_attempts, report.requeued) == (1, 1)
    drain()
    # Then the run completes against the contact the dead worker made: still one contact
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    lost, recovered = step(run, "contact")["attempts"]
    assert lost["status"] == "failed" and lost["outcome_unknown"] and "worker" in lost["error"]
    assert recovered["reconciled"] is True
    assert len(sandbox.state()["contacts"]) == 1


def test_a_duplicate_delivery_of_a_finished_step_job_calls_nothing(
    app: Flask, client: FlaskClient, drain: Drain, sandbox: Sandbox
) -> None:
    run_id = submit(client)["runs"][0]
    drain()
    calls_before = len(sandbox.calls())
    with app.app_context():
        run_step(run_id, "contact", 1)  # as if RQ delivered the first job again
        run_step(run_id, "job", 1)
    assert len(sandbox.calls()) == calls_before


def test_a_wrong_api_key_fails_permanently_and_says_which_setting(
    client: FlaskClient, services: Services, drain: Drain, admin: dict[str, str]
) -> None:
    from pydantic import SecretStr

    services.settings = services.settings.model_copy(update={"bigchange_api_key": SecretStr("wrong-key")})
    run_id = submit(client)["runs"][0]
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert "HTTP 401" in run["error"] and "check BIGCHANGE_API_KEY" in run["error"]
    assert "wrong-key" not in json.dumps(run)


def test_credit_hold_then_release(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a BigChange contact that carries the account reference
    created = sandbox.control.post(
        "/contacts/create",
        json={"name": "Acme Ltd", "reference": "ACME-01"},
        headers={"X-API-Key": services.settings.bigchange_api_key.get_secret_value()},
    ).json()
    accounts = services.catalog.current().sources["accounts"].verify

    def alert(event: str, alert_id: str) -> dict[str, Any]:
        body = json.loads((EXAMPLES / f"{event.replace('_', '-').replace('.', '-')}.json").read_text())
        body.update(id=alert_id)
        raw = json.dumps(body).encode()
        response = post_hook(
            client, "accounts", raw, **{"X-Signature": sign_hmac(accounts, raw, SECRETS["ACCOUNTS_SECRET"])}
        )
        assert response.status_code == 202, response.get_json()
        return response.get_json()

    # When the accounts system says the limit is exceeded
    hold = alert("credit_limit.exceeded", "alert-1")
    drain()
    assert get_run(client, admin, hold["runs"][0])["status"] == "succeeded"
    (contact,) = sandbox.state()["contacts"]
    assert contact["id"] == created["id"] and contact["status"] == "creditLimitOnStop"
    assert contact["stopReason"] == "Credit limit exceeded: balance GBP 12500.0 against a limit of GBP 10000"
    # When it is cleared
    release = alert("credit_limit.cleared", "alert-2")
    drain()
    assert get_run(client, admin, release["runs"][0])["status"] == "succeeded"
    assert sandbox.state()["contacts"][0]["status"] == "normal"


def test_an_alert_for_an_unknown_account_fails_with_a_readable_error(
    client: FlaskClient, services: Services, drain: Drain, admin: dict[str, str]
) -> None:
    raw = (EXAMPLES / "credit-limit-exceeded.json").read_bytes()
    accounts = services.catalog.current().sources["accounts"].verify
    response = post_hook(
        client, "accounts", raw, **{"X-Signature": sign_hmac(accounts, raw, SECRETS["ACCOUNTS_SECRET"])}
    )
    drain()
    run = get_run(client, admin, response.get_json()["runs"][0])
    assert run["status"] == "failed"
    assert run["error"] == "step unknown: no BigChange contact for account ACME-01: sync the customer first"
    assert step(run, "stop")["status"] == "pending"


def test_runs_keep_the_definition_they_started_with(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Given a run accepted under the shipped web-enquiry
    run_id = submit(client)["runs"][0]
    # When the workflow changes before the run executes (here: the loaded catalog no longer has it at all)
    services.catalog._catalog = services.catalog._catalog.__class__(
        sources=services.catalog._catalog.sources, workflows={}
    )
    drain()
    # Then the run still completes on its pinned definition
    with services.db.session() as session:
        assert session.get(Run, run_id).status == "succeeded"


CONTINUE_WORKFLOW = """\
name: tolerant
on: {source: webform}
steps:
  - id: lookup
    uses: bigchange.contacts.contact
    with: {contactId: 424242}
    on_error: continue
  - id: contact
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}", reference: "T-{{ event.id }}"}
"""


def test_on_error_continue_records_the_failure_and_carries_on(
    app: Flask, client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, tmp_path: Path
) -> None:
    import shutil

    shutil.copy(EXAMPLES.parent / "workflows" / "sources.yaml", tmp_path)
    (tmp_path / "tolerant.yaml").write_text(CONTINUE_WORKFLOW)
    services.catalog._directory = tmp_path
    run_id = submit(client)["runs"][0]
    drain()
    run = get_run(client, {"Authorization": "Bearer test-admin-token"}, run_id)
    assert run["status"] == "succeeded"
    assert step(run, "lookup")["status"] == "failed" and "Contact 424242 was not found" in step(run, "lookup")["error"]
    assert step(run, "contact")["status"] == "succeeded"
    assert len(sandbox.state()["contacts"]) == 1


def test_no_bigchange_key_fails_the_step_with_what_to_set(
    client: FlaskClient, services: Services, drain: Drain, admin: dict[str, str]
) -> None:
    services.settings = services.settings.model_copy(update={"bigchange_api_key": None})
    run_id = submit(client)["runs"][0]
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed" and "BIGCHANGE_API_KEY is not set" in run["error"]


def test_a_spent_request_budget_defers_steps_without_failing_them(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a budget of two requests at once, then five per second, and no waiting in place
    services.settings = services.settings.model_copy(
        update={"bigchange_requests_per_second": 5.0, "bigchange_burst": 2, "rate_limit_max_wait_seconds": 0}
    )
    first = submit(client, enquiry(submission_id="a"))["runs"][0]
    second = submit(client, enquiry(submission_id="b"))["runs"][0]
    drain(timeout=60)
    runs = [get_run(client, admin, run_id) for run_id in (first, second)]
    # Then both complete, some steps were deferred, and no deferral counted as a failure
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
    attempts = [a for run in runs for s in run["steps"] for a in s["attempts"]]
    deferred = [a for a in attempts if a["status"] == "deferred"]
    assert deferred and all(a["error"].startswith("deferred: request budget") for a in deferred)
    assert not [a for a in attempts if a["status"] == "failed"]
    assert len(sandbox.state()["contacts"]) == 2


def test_a_synced_customer_is_found_through_its_mapping(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    accounts = services.catalog.current().sources["accounts"].verify

    def deliver(example: str) -> str:
        raw = (EXAMPLES / example).read_bytes()
        signature = sign_hmac(accounts, raw, SECRETS["ACCOUNTS_SECRET"])
        response = post_hook(client, "accounts", raw, **{"X-Signature": signature})
        assert response.status_code == 202, response.get_json()
        drain()
        return response.get_json()["runs"][0]

    # Given the accounts system told us about the customer
    synced = get_run(client, admin, deliver("customer-created.json"))
    contact_id = step(synced, "contact")["output"]["id"]
    assert step(synced, "remember")["output"]["value"] == contact_id
    sandbox.control.delete("/__sandbox__/calls")
    # When it goes over its limit
    hold = get_run(client, admin, deliver("credit-limit-exceeded.json"))
    # Then the contact is stopped without searching BigChange for it
    assert hold["status"] == "succeeded" and step(hold, "by_reference")["status"] == "skipped"
    assert api_paths(sandbox) == ["POST /contacts/on_stop"]
    assert sandbox.calls("/contacts/on_stop")[0]["json"]["contactId"] == contact_id


@pytest.mark.parametrize("settings_overrides", [{"sqlite_busy_timeout_ms": 100}])
def test_a_worker_waits_for_a_database_that_does_not_answer_instead_of_failing_its_jobs(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    import sqlite3

    if not services.db.is_sqlite:
        pytest.skip("stages the outage with SQLite's write lock; the PostgreSQL restart is `make drills`")
    run_id = submit(client)["runs"][0]
    # Given another process holds the database's write lock for longer than the busy timeout ...
    holder = sqlite3.connect(services.db.engine.url.database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.5, lambda: (holder.execute("ROLLBACK"), holder.close()))
    release.start()
    try:
        # ... the worker waits it out: no job fails, every step runs once
        drain(timeout=60)
    finally:
        release.join()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert [len(s["attempts"]) for s in run["steps"]] == [1, 1, 1, 1]
    assert services.queue.queue.failed_job_registry.count == 0
    assert len(sandbox.state()["contacts"]) == 1
