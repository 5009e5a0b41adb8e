"""The shipped example workflows for site access hours, stock and job groups, end to end.

Each posts the payload from examples/ to /hooks/accounts (HMAC-signed, as the back
office would), lets real RQ workers run the steps against the sandbox over HTTP,
and checks what BigChange ended up holding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from engine.services import Services
from engine.verify import sign_hmac
from tests.conftest import SECRETS, Drain, Sandbox, post_hook
from tests.test_pipeline import get_run, step

EXAMPLES = Path(__file__).parents[1] / "examples"


def send(client: FlaskClient, services: Services, example: str, **changes: Any) -> str:
    """POST an example as the accounts source signs it; return the one run it started."""
    body = json.loads((EXAMPLES / example).read_text()) | changes
    raw = json.dumps(body).encode()
    accounts = services.catalog.current().sources["accounts"].verify
    response = post_hook(
        client, "accounts", raw, **{"X-Signature": sign_hmac(accounts, raw, SECRETS["ACCOUNTS_SECRET"])}
    )
    assert response.status_code == 202, response.get_json()
    (run_id,) = response.get_json()["runs"]
    return run_id


def seed(sandbox: Sandbox, services: Services, path: str, body: dict[str, Any]) -> int:
    key = {"X-API-Key": services.settings.bigchange_api_key.get_secret_value()}
    response = sandbox.control.post(path, json=body, headers=key)
    response.raise_for_status()
    return response.json()["id"]


def test_site_hours_changed_replaces_the_contacts_access_hours(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given the customer's contact in BigChange
    contact = seed(sandbox, services, "/contacts/create", {"name": "Acme Ltd", "reference": "ACME-01"})
    # When the back office sends the site's opening hours
    run_id = send(client, services, "site-hours-changed.json")
    drain()
    # Then the contact has exactly those hours, in week order, and the run shows them
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded", run.get("error")
    held = sandbox.state()["siteAccessHours"][str(contact)]
    assert [(h["dayOfWeek"], h["startTime"], h["endTime"]) for h in held] == [
        ("monday", "08:00", "12:30"),
        ("monday", "13:30", "17:00"),
        ("wednesday", "08:00", "17:00"),
        ("friday", "08:00", "15:00"),
    ]
    assert step(run, "current")["output"]["pageItemCount"] == 4


def test_bad_opening_hours_fail_the_run_before_bigchange_is_called(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    seed(sandbox, services, "/contacts/create", {"name": "Acme Ltd", "reference": "ACME-01"})
    hours = [{"dayOfWeek": "monday", "startTime": "8am", "endTime": "17:00"}]

    run_id = send(client, services, "site-hours-changed.json", opening_hours=hours)
    drain()

    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert "with.body.0.startTime" in run["error"] and "'8am' is not a 24-hour HH:MM time" in run["error"]
    assert sandbox.calls("/contacts/site_access_hours_update") == []


def test_parts_allocated_become_stock_lines_on_the_job(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a job (the example names job 5001, the sandbox's first)
    contact = seed(sandbox, services, "/contacts/create", {"name": "Acme Ltd", "reference": "ACME-01"})
    assert seed(sandbox, services, "/jobs/create", {"typeId": 42, "contactId": contact}) == 5001
    # When the back office allocates two parts to it
    run_id = send(client, services, "parts-allocated.json")
    drain()
    # Then the job carries one stock line per part
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded", run.get("error")
    (job,) = sandbox.state()["jobs"]
    assert [(line["stockDetailsId"], line["quantityPlanned"]) for line in job["stock"]] == [(10, 2), (11, 1)]
    assert [line["id"] for line in step(run, "lines")["output"]["items"]] == [line["id"] for line in job["stock"]]


def test_parts_for_a_job_that_does_not_exist_fail_naming_it(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    run_id = send(client, services, "parts-allocated.json", job_id=4242)
    drain()

    run = get_run(client, admin, run_id)
    assert run["status"] == "failed" and "HTTP 404: Job 4242 was not found" in run["error"]
    assert sandbox.calls("/jobs/stock/create") == []


def test_a_project_becomes_a_job_group_with_its_jobs_and_a_later_one_joins_it(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given the customer's contact
    contact = seed(sandbox, services, "/contacts/create", {"name": "Acme Ltd", "reference": "ACME-01"})
    # When the project is created
    first = send(client, services, "project-created.json")
    drain()
    # Then a group holds a survey and a works job for that contact
    run = get_run(client, admin, first)
    assert run["status"] == "succeeded", run.get("error")
    (group,) = sandbox.state()["jobGroups"]
    assert group["name"] == "Acme head office refurb, phase 1" and step(run, "group")["output"]["created"] is True
    jobs = sandbox.state()["jobs"]
    assert [(j["typeId"], j["reference"], j["contactId"]) for j in jobs] == [
        (7, "PRJ-0042-SURVEY", contact),
        (42, "PRJ-0042-WORKS", contact),
    ]
    assert step(run, "programme")["output"]["jobIds"] == [j["id"] for j in jobs]
    # When another order for the same project arrives, its jobs join the same group
    second = send(client, services, "project-created.json", id="project-20261122-0004", project_ref="PRJ-0043")
    drain()
    run = get_run(client, admin, second)
    assert run["status"] == "succeeded" and step(run, "group")["output"]["created"] is False
    (group,) = sandbox.state()["jobGroups"]
    assert len(group["jobIds"]) == 4
