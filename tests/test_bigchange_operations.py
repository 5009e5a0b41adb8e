"""Every BigChange operation, called through the connector against the sandbox over real HTTP.

Where test_pipeline.py follows events through the whole service, these tests call
operations the way the runner does (connect, validate, call) so that each one is
seen working against a simulator that holds state and enforces the docs' rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis import Redis

from engine.errors import PermanentStepError
from engine.http import CallLog
from engine.operations import ConnectorContext
from engine.services import Services
from handlers.bigchange import OPERATIONS
from sandbox.bigchange import create_app
from sandbox.server import serve_in_thread
from schemas.settings import Settings
from tests.conftest import Sandbox


class Connector:
    """Runs one operation as the runner would (connect, validate, call) and remembers which were used."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.used: set[str] = set()

    def __call__(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.used.add(name)
        op = self.services.operations.get(name)
        services = self.services
        api = op.connect(ConnectorContext(services.settings, services.http, CallLog(), services.redis))
        return op.call(api, op.input.model_validate(payload))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"bigchange_requests_per_second": 0}  # pacing has its own test (test_bigchange_rate_limit.py)


@pytest.fixture
def bc(services: Services, sandbox: Sandbox) -> Connector:
    return Connector(services)


def test_every_operation_works_against_the_sandbox(bc: Connector, sandbox: Sandbox) -> None:
    # Contact groups and contacts
    group = bc("bigchange.contact_groups.create", {"name": "Retail"})
    assert group["created"] is True
    assert bc("bigchange.contact_groups.update", {"contactGroupId": group["id"], "name": "Retail UK"}) == {}
    assert bc("bigchange.contact_groups.contact_group", {"contactGroupId": group["id"]})["name"] == "Retail UK"
    assert len(bc("bigchange.contact_groups.list", {"paginate": "all"})["items"]) == 2
    contact = bc("bigchange.contacts.create", {"name": "Acme", "reference": "ACME-01", "groupId": group["id"]})["id"]
    bc("bigchange.contacts.edit", {"contactId": contact, "town": "Leeds"})
    assert bc("bigchange.contacts.contact", {"contactId": contact})["town"] == "Leeds"
    assert bc("bigchange.contacts.list", {"reference": ["ACME-01"]})["items"][0]["id"] == contact
    hours = [{"dayOfWeek": "Tuesday", "startTime": "09:00", "endTime": "16:00"}]
    bc("bigchange.contacts.site_access_hours_update", {"contactId": contact, "body": hours})
    (listed_hours,) = bc("bigchange.contacts.site_access_hours_list", {"contactId": contact})["items"]
    assert (listed_hours["dayOfWeek"], listed_hours["startTime"]) == ("tuesday", "09:00")
    # Job types and groups
    assert bc("bigchange.job_types.job_types", {"jobTypeId": 42})["name"] == "Plumbing repair"
    assert {t["id"] for t in bc("bigchange.job_types.list", {})["items"]} == {7, 42}
    programme = bc("bigchange.job_groups.create", {"name": "Refurb phase 1"})["id"]
    bc("bigchange.job_groups.edit", {"jobGroupId": programme, "name": "Refurb, phase 1"})
    # A job's whole life
    job = bc("bigchange.jobs.create", {"typeId": 42, "contactId": contact, "jobGroupId": programme, "reference": "J1"})
    bc("bigchange.jobs.edit", {"jobId": job["id"], "officeNotes": "Key with the neighbour"})
    assert bc("bigchange.jobs.job", {"jobId": job["id"]})["officeNotes"] == "Key with the neighbour"
    now = datetime.now(timezone.utc)
    window = {"createdAtFrom": f"{now.year - 1}-12-31T00:00:00Z", "createdAtTo": f"{now.year}-12-31T00:00:00Z"}
    assert [j["id"] for j in bc("bigchange.jobs.list", window)["items"]] == [job["id"]]
    constraint = bc("bigchange.jobs.constraints.create", {"jobId": job["id"], "type": "jobResource", "entityId": 100})
    assert len(bc("bigchange.jobs.constraints.list", {"jobId": job["id"]})["items"]) == 1
    bc("bigchange.jobs.constraints.delete", {"jobId": job["id"], "constraintId": constraint["id"]})
    line = bc("bigchange.jobs.stock.create", {"jobId": job["id"], "stockDetailsId": 10, "quantityPlanned": 2})
    assert bc("bigchange.jobs.stock.get", {"jobId": job["id"], "jobStockId": line["id"]})["quantityPlanned"] == 2
    assert len(bc("bigchange.jobs.stock.list", {"jobId": job["id"], "paginate": "all"})["items"]) == 1
    bc("bigchange.jobs.stock.delete", {"jobId": job["id"], "jobStockId": line["id"]})
    bc("bigchange.jobs.scheduling", {"jobId": job["id"], "resourceId": 100, "plannedStartAt": "2026-12-01T09:00:00Z"})
    bc("bigchange.jobs.start", {"jobId": job["id"], "comment": "On site"})
    bc("bigchange.jobs.result", {"jobId": job["id"], "status": "completedOk", "result": "Job complete"})
    history = bc("bigchange.jobs.status.history", {"jobId": job["id"]})["items"]
    assert [h["status"] for h in history] == ["new", "scheduled", "started", "completedOk"]
    spare = bc("bigchange.jobs.create", {"typeId": 7, "contactId": contact})["id"]
    bc("bigchange.jobs.cancel", {"jobId": spare, "reason": "Customer cancelled"})
    # The group's completion
    assert bc("bigchange.job_groups.job_group", {"jobGroupId": programme})["jobIds"] == [job["id"]]
    bc("bigchange.job_groups.job_group_results_as_complete", {"jobGroupId": programme})
    bc("bigchange.job_groups.job_group_results_as_financially_complete", {"jobGroupId": programme})
    statuses = bc("bigchange.job_groups.status_history", {"jobGroupId": programme})["items"]
    assert [s["status"] for s in statuses] == ["open", "complete", "financiallyComplete"]
    assert bc("bigchange.job_groups.list", {})["items"][0]["status"] == "financiallyComplete"
    # Stop and unstop, visible on the contact
    bc("bigchange.contacts.on_stop", {"contactId": contact, "status": "creditLimitOnStop", "stopReason": "Over limit"})
    assert bc("bigchange.contacts.contact", {"contactId": contact})["status"] == "creditLimitOnStop"
    bc("bigchange.contacts.unstop", {"contactId": contact})
    assert bc("bigchange.contacts.contact", {"contactId": contact})["status"] == "normal"

    assert bc.used == {op.name for op in OPERATIONS}


def test_pagination_follows_three_pages_of_the_sandbox(bc: Connector, sandbox: Sandbox) -> None:
    # Given seven contacts
    for n in range(7):
        bc("bigchange.contacts.create", {"name": f"Contact {n}"})
    # When they are listed three at a time, every page
    output = bc("bigchange.contacts.list", {"paginate": "all", "pageSize": 3, "sortBy": "name"})
    # Then three calls, every contact once, in order
    assert [c["json"]["pageNumber"] for c in sandbox.calls("/contacts/list")] == [1, 2, 3]
    assert [c["name"] for c in output["items"]] == [f"Contact {n}" for n in range(7)]
    assert (output["pages"], output["truncated"]) == (3, False)


def test_jobs_list_filters_written_as_the_docs_comma_text_reach_the_sandbox_as_such(
    bc: Connector, sandbox: Sandbox
) -> None:
    # Given three contacts with a job each, one job scheduled
    contacts = [bc("bigchange.contacts.create", {"name": f"Contact {n}"})["id"] for n in range(3)]
    jobs = [bc("bigchange.jobs.create", {"typeId": 42, "contactId": c})["id"] for c in contacts]
    bc("bigchange.jobs.scheduling", {"jobId": jobs[1], "resourceId": 100})
    now = datetime.now(timezone.utc)
    window = {"createdAtFrom": f"{now.year - 1}-12-31T00:00:00Z", "createdAtTo": f"{now.year}-12-31T00:00:00Z"}
    # When a workflow filters with the docs' string forms, and with a list
    by_text = bc("bigchange.jobs.list", {**window, "contactId": f"{contacts[0]},{contacts[1]}", "status": "new"})
    by_list = bc("bigchange.jobs.list", {**window, "contactId": contacts[1:], "resourceId": "100"})
    # Then BigChange is sent comma-separated text either way, and filters by it
    assert [j["id"] for j in by_text["items"]] == [jobs[0]]
    assert [j["id"] for j in by_list["items"]] == [jobs[1]]
    sent = [c["json"] for c in sandbox.calls("/jobs/list")]
    assert (sent[0]["contactId"], sent[0]["status"]) == (f"{contacts[0]},{contacts[1]}", "new")
    assert (sent[1]["contactId"], sent[1]["resourceId"]) == (f"{contacts[1]},{contacts[2]}", "100")


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("bigchange.jobs.job", {"jobId": 4242}, "HTTP 404: Job 4242 was not found"),
        ("bigchange.jobs.stock.get", {"jobId": 4242, "jobStockId": 1}, "HTTP 404: Job 4242 was not found"),
        ("bigchange.job_groups.job_group", {"jobGroupId": 77}, "HTTP 404: Job group 77 was not found"),
        ("bigchange.contacts.site_access_hours_list", {"contactId": 9}, "HTTP 404: Contact 9 was not found"),
        ("bigchange.jobs.create", {"typeId": 42, "contactId": 9}, "HTTP 404: Contact 9 was not found"),
    ],
)
def test_a_missing_record_is_named(bc: Connector, name: str, payload: dict[str, Any], message: str) -> None:
    with pytest.raises(PermanentStepError) as raised:
        bc(name, payload)

    assert raised.value.message == message


def test_a_long_window_refused_by_the_sandbox_is_listed_when_split(
    bc: Connector, sandbox: Sandbox, services: Services
) -> None:
    long = {"createdAtFrom": "2020-01-01T00:00:00Z", "createdAtTo": "2026-01-01T00:00:00Z"}
    key = {"X-API-Key": services.settings.bigchange_api_key.get_secret_value()}
    # BigChange refuses the range as one request…
    refused = sandbox.control.post("/jobs/list", json=long, headers=key)
    assert refused.status_code == 422 and "cannot exceed 12 months" in refused.json()["detail"]
    # …the model refuses it before any call unless split…
    with pytest.raises(ValueError, match="more than 12 months apart"):
        bc("bigchange.jobs.list", long)
    # …and split, it is six windows that BigChange accepts
    assert bc("bigchange.jobs.list", {**long, "split_windows": True})["windows"] == 6
    assert [c["status"] for c in sandbox.calls("/jobs/list")] == [422] + [200] * 6


# --- 12-month windows against a tenant with history -------------------------------------------


@pytest.fixture
def dated_sandbox() -> Iterator[tuple[str, dict[str, datetime]]]:
    """A separate simulated tenant whose clock the test sets, to create records in past years."""
    clock = {"now": datetime(2023, 6, 1, tzinfo=timezone.utc)}
    with serve_in_thread(create_app(api_key="dated-key", clock=lambda: clock["now"])) as server:
        yield server.url, clock


def test_split_windows_lists_three_years_of_jobs_in_compliant_windows(
    dated_sandbox: tuple[str, dict[str, datetime]],
) -> None:
    url, clock = dated_sandbox
    settings = Settings(
        bigchange_base_url=url, bigchange_api_key=SecretStr("dated-key"), bigchange_requests_per_second=0
    )
    with httpx.Client(timeout=10) as http:
        ctx = ConnectorContext(settings, http, CallLog(), Redis.from_url("redis://127.0.0.1:1/0"))
        ops = {op.name: op for op in OPERATIONS}
        api = ops["bigchange.jobs.list"].connect(ctx)

        def call(name: str, payload: dict[str, Any]) -> dict[str, Any]:
            return ops[name].call(api, ops[name].input.model_validate(payload))

        # Given one job in each of 2023, 2024 and 2025 (and one in 2026, outside the range)
        contact = call("bigchange.contacts.create", {"name": "Acme"})["id"]
        for year in (2023, 2024, 2025, 2026):
            clock["now"] = datetime(year, 6, 1, tzinfo=timezone.utc)
            call("bigchange.jobs.create", {"typeId": 42, "contactId": contact, "reference": f"J{year}"})
        # When 2023-2025 is listed with split_windows
        output = call(
            "bigchange.jobs.list",
            {"createdAtFrom": "2023-01-01T00:00:00Z", "createdAtTo": "2025-12-31T23:59:59Z", "split_windows": True},
        )
        calls = http.get(f"{url}/__sandbox__/calls").json()

    # Then BigChange accepted three windows and the three jobs come back merged
    windows = [
        (c["json"]["createdAtFrom"], c["json"]["createdAtTo"], c["status"]) for c in calls if c["path"] == "/jobs/list"
    ]
    assert windows == [
        ("2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 200),
        ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 200),
        ("2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z", 200),
    ]
    assert [job["reference"] for job in output["items"]] == ["J2023", "J2024", "J2025"]
    assert (output["windows"], output["truncated"]) == (3, False)
