"""The simulator's other endpoints: site access hours, contact groups, the job lifecycle, stock,
job groups and job types. Each test is one documented (or deliberately chosen) behaviour, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.bigchange import create_app
from sandbox.server import RunningServer, serve_in_thread
from tests.sandbox.test_bigchange_sandbox import KEY, assert_input_error, assert_problem, create_contact, create_job


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(api_key=KEY)) as running:
        yield running


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """An authenticated client against a freshly reset simulator."""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=10) as client:
        client.post("/__sandbox__/reset").raise_for_status()
        yield client


def state(api: httpx.Client) -> dict[str, Any]:
    return api.get("/__sandbox__/state").json()


# --- site access hours ----------------------------------------------------------------------------


def test_site_access_hours_are_replaced_and_listed_in_week_order(api: httpx.Client) -> None:
    contact = create_contact(api)
    first = [{"dayOfWeek": "monday", "startTime": "08:00", "endTime": "17:00"}]
    assert api.post("/contacts/site_access_hours_update", json={"contactId": contact, "body": first}).status_code == 204
    week = [
        {"dayOfWeek": "friday", "startTime": "08:00", "endTime": "12:00"},
        {"dayOfWeek": "tuesday", "startTime": "13:00", "endTime": "17:00"},
        {"dayOfWeek": "tuesday", "startTime": "07:30", "endTime": "12:00"},
    ]
    api.post("/contacts/site_access_hours_update", json={"contactId": contact, "body": week}).raise_for_status()

    listed = api.post("/contacts/site_access_hours_list", json={"contactId": contact}).json()

    assert [(h["dayOfWeek"], h["startTime"]) for h in listed["items"]] == [
        ("tuesday", "07:30"),
        ("tuesday", "13:00"),
        ("friday", "08:00"),
    ]
    assert listed["pageItemCount"] == 3
    assert len(state(api)["siteAccessHours"][str(contact)]) == 3


@pytest.mark.parametrize(
    ("hours", "param", "words"),
    [
        ({"dayOfWeek": "Monday", "startTime": "08:00", "endTime": "17:00"}, "body[0].dayOfWeek", ("monday",)),
        ({"dayOfWeek": "monday", "startTime": "8:00", "endTime": "17:00"}, "body[0].startTime", ("HH:MM",)),
        ({"dayOfWeek": "monday", "startTime": "08:00", "endTime": "24:00"}, "body[0].endTime", ("HH:MM",)),
        ({"dayOfWeek": "monday", "startTime": "08:00"}, "body[0].endTime", ("Missing",)),
    ],
)
def test_site_access_hours_are_validated_field_by_field(
    api: httpx.Client, hours: dict[str, Any], param: str, words: tuple[str, ...]
) -> None:
    contact = create_contact(api)
    response = api.post("/contacts/site_access_hours_update", json={"contactId": contact, "body": [hours]})
    assert_input_error(response, param, *words)


def test_site_access_hours_must_make_sense(api: httpx.Client) -> None:
    contact = create_contact(api)
    backwards = [{"dayOfWeek": "monday", "startTime": "17:00", "endTime": "08:00"}]
    overlapping = [
        {"dayOfWeek": "monday", "startTime": "08:00", "endTime": "12:30"},
        {"dayOfWeek": "monday", "startTime": "12:00", "endTime": "17:00"},
    ]
    update = "/contacts/site_access_hours_update"
    assert_problem(api.post(update, json={"contactId": contact, "body": backwards}), 422, "end after they start")
    assert_problem(api.post(update, json={"contactId": contact, "body": overlapping}), 422, "overlap")
    assert_input_error(api.post(update, json={"contactId": contact}), "body", "Missing")
    assert_problem(api.post(update, json={"contactId": 4040, "body": []}), 404, "Contact 4040")
    assert_problem(api.post("/contacts/site_access_hours_list", json={"contactId": 4040}), 404, "Contact 4040")


# --- contact groups ---------------------------------------------------------------------------------


def test_contact_groups_are_created_read_renamed_listed_and_used(api: httpx.Client) -> None:
    created = api.post("/contact_groups/create", json={"name": "Retail"})
    assert created.status_code == 201
    group = created.json()["id"]
    assert group == 301
    assert api.post("/contact_groups/update", json={"contactGroupId": group, "name": "Retail UK"}).status_code == 204
    assert api.get("/contact_groups/contact_group", params={"contactGroupId": group}).json()["name"] == "Retail UK"
    listed = api.post("/contact_groups/list", json={"pageSize": 10}).json()
    assert [g["name"] for g in listed["items"]] == ["Customers", "Retail UK"]
    assert create_contact(api, groupId=group)  # a contact can now be in it
    assert_problem(api.get("/contact_groups/contact_group", params={"contactGroupId": 9}), 404, "Contact group 9")
    assert_input_error(api.post("/contact_groups/create", json={"name": ""}), "name", "empty")
    assert_input_error(api.post("/contact_groups/update", json={"contactGroupId": group}), "name", "Missing")


# --- job lifecycle ----------------------------------------------------------------------------------


def history(api: httpx.Client, job: int) -> list[str]:
    return [h["status"] for h in api.post("/jobs/status/history", json={"jobId": job}).json()["items"]]


def test_a_job_goes_through_its_lifecycle_and_keeps_its_history(api: httpx.Client) -> None:
    job = create_job(api, create_contact(api))
    api.post("/jobs/scheduling", json={"jobId": job, "resourceId": 100}).raise_for_status()
    assert api.post("/jobs/start", json={"jobId": job, "comment": "On site"}).status_code == 204
    result = {"jobId": job, "status": "completedWithIssues", "result": "Needs a part"}
    assert api.post("/jobs/result", json=result).status_code == 204

    record = api.get("/jobs/job", params={"jobId": job}).json()
    assert (record["status"], record["result"]) == ("completedWithIssues", "Needs a part")
    assert history(api, job) == ["new", "scheduled", "started", "completedWithIssues"]


def test_finished_jobs_cannot_be_worked_on(api: httpx.Client) -> None:
    job = create_job(api, create_contact(api))
    assert api.post("/jobs/cancel", json={"jobId": job, "reason": "Customer cancelled"}).status_code == 204
    assert history(api, job) == ["new", "cancelled"]
    for path, body in [
        ("/jobs/start", {}),
        ("/jobs/result", {"status": "completedOk"}),
        ("/jobs/cancel", {}),
        ("/jobs/scheduling", {"resourceId": 100}),
        ("/jobs/stock/create", {"stockDetailsId": 10, "quantityPlanned": 1}),
    ]:
        assert_problem(api.post(path, json={"jobId": job, **body}), 422, f"Job {job} is cancelled")


def test_job_result_status_is_an_enum(api: httpx.Client) -> None:
    job = create_job(api, create_contact(api))
    bad = api.post("/jobs/result", json={"jobId": job, "status": "done"})
    assert_input_error(bad, "status", "completedOk", "completedWithIssues")


def test_jobs_can_be_edited_within_the_rules(api: httpx.Client) -> None:
    contact = create_contact(api)
    job = create_job(api, contact)
    edit = {"jobId": job, "description": "Updated", "isFinanciallyComplete": True, "officeNotes": "Call first"}
    assert api.post("/jobs/edit", json=edit).status_code == 204
    record = api.get("/jobs/job", params={"jobId": job}).json()
    assert (record["description"], record["isFinanciallyComplete"], record["officeNotes"]) == (
        "Updated",
        True,
        "Call first",
    )
    assert_input_error(api.post("/jobs/edit", json={"jobId": job, "isActioned": "yes"}), "isActioned", "true or false")
    assert_problem(api.post("/jobs/edit", json={"jobId": job, "typeId": 3}), 404, "Job type 3")
    assert_problem(api.post("/jobs/edit", json={"jobId": job, "jobGroupId": 3}), 404, "Job group 3")


# --- stock ------------------------------------------------------------------------------------------


def test_stock_lines_belong_to_their_job(api: httpx.Client) -> None:
    # Given two jobs, one with two stock lines
    contact = create_contact(api)
    job, other = create_job(api, contact), create_job(api, contact)
    pipe = api.post("/jobs/stock/create", json={"jobId": job, "stockDetailsId": 10, "quantityPlanned": 1.5})
    assert pipe.status_code == 201
    line = pipe.json()["id"]
    api.post("/jobs/stock/create", json={"jobId": job, "stockDetailsId": 11, "quantityPlanned": 2}).raise_for_status()
    # Then they are listed on it, readable, shown on the job, and not on the other job
    assert [s["stockDetailsId"] for s in api.post("/jobs/stock/list", json={"jobId": job}).json()["items"]] == [10, 11]
    got = api.post("/jobs/stock/get", json={"jobId": job, "jobStockId": line}).json()
    assert (got["name"], got["quantityPlanned"], got["quantityUsed"]) == ("15mm copper pipe (3 m)", 1.5, 0)
    assert len(api.get("/jobs/job", params={"jobId": job}).json()["stock"]) == 2
    assert_problem(api.post("/jobs/stock/get", json={"jobId": other, "jobStockId": line}), 404, "not found on job")
    # When one is deleted it is gone
    assert api.post("/jobs/stock/delete", json={"jobId": job, "jobStockId": line}).status_code == 204
    assert_problem(api.post("/jobs/stock/get", json={"jobId": job, "jobStockId": line}), 404, f"line {line}")


def test_stock_lines_are_validated(api: httpx.Client) -> None:
    job = create_job(api, create_contact(api))
    create = "/jobs/stock/create"
    assert_problem(api.post(create, json={"jobId": job, "stockDetailsId": 99, "quantityPlanned": 1}), 404, "item 99")
    assert_input_error(api.post(create, json={"jobId": job, "stockDetailsId": 10}), "quantityPlanned", "Missing")
    bad_quantity = api.post(create, json={"jobId": job, "stockDetailsId": 10, "quantityPlanned": 0})
    assert_input_error(bad_quantity, "quantityPlanned", "greater than 0")
    assert_problem(api.post(create, json={"jobId": 4, "stockDetailsId": 10, "quantityPlanned": 1}), 404, "Job 4")


# --- job groups and types -------------------------------------------------------------------------


def test_a_job_group_holds_its_jobs_and_moves_to_financially_complete(api: httpx.Client) -> None:
    # Given a group with two jobs
    group = api.post("/job_groups/create", json={"name": "Refurb phase 1"}).json()["id"]
    assert group == 701
    contact = create_contact(api)
    jobs = [create_job(api, contact, jobGroupId=group) for _ in range(2)]
    ref = {"jobGroupId": group}
    # Then the group shows them
    assert api.post("/job_groups/job_group", json=ref).json()["jobIds"] == jobs
    # Financially complete needs complete first
    finance = "/job_groups/job_group_results_as_financially_complete"
    assert_problem(api.post(finance, json=ref), 422, "must be marked complete")
    assert api.post("/job_groups/job_group_results_as_complete", json=ref).status_code == 204
    assert api.post(finance, json=ref).status_code == 204
    assert api.post("/job_groups/edit", json={**ref, "name": "Refurb phase 1b"}).status_code == 204
    listed = api.post("/job_groups/list", json={}).json()["items"]
    assert [(g["name"], g["status"]) for g in listed] == [("Refurb phase 1b", "financiallyComplete")]
    steps = api.post("/job_groups/status_history", json=ref).json()["items"]
    assert [h["status"] for h in steps] == ["open", "complete", "financiallyComplete"]
    assert_problem(api.post("/job_groups/job_group_results_as_complete", json=ref), 422, "already financially")


def test_job_groups_are_validated(api: httpx.Client) -> None:
    assert_input_error(api.post("/job_groups/create", json={}), "name", "Missing")
    assert_problem(api.post("/job_groups/job_group", json={"jobGroupId": 5}), 404, "Job group 5")
    assert_problem(
        api.post("/jobs/create", json={"typeId": 42, "contactId": create_contact(api), "jobGroupId": 5}),
        404,
        "Job group 5",
    )
    assert_input_error(api.post("/job_groups/list", json={"pageSize": 1001}), "pageSize", "1000")


def test_job_types_are_the_seeded_catalogue(api: httpx.Client) -> None:
    assert api.post("/job_types/job_types", json={"jobTypeId": 42}).json()["name"] == "Plumbing repair"
    assert [t["id"] for t in api.post("/job_types/list", json={}).json()["items"]] == [7, 42]
    assert_problem(api.post("/job_types/job_types", json={"jobTypeId": 3}), 404, "Job type 3")
    assert_input_error(api.post("/job_types/job_types", json={}), "jobTypeId", "Missing")
    # A POST read, as documented (a GET is the wrong method)
    assert api.get("/job_types/job_types", params={"jobTypeId": 42}).status_code == 405
