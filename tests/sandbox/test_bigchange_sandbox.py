"""The BigChange vh3 simulator, exercised over real HTTP the way the connector will call it.

Each test is a small specification of one documented (or deliberately chosen)
behaviour; see the `sandbox.bigchange` docstring for the choices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from sandbox.bigchange import create_app
from sandbox.server import RunningServer, serve_in_thread

KEY = "k"
UUID = "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(api_key=KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=10) as client:
        yield client


@pytest.fixture
def api(client: httpx.Client) -> httpx.Client:
    """The authenticated client, against a simulator freshly reset to its seed."""
    client.post("/__sandbox__/reset").raise_for_status()
    return client


def create_contact(api: httpx.Client, **fields: Any) -> int:
    response = api.post("/contacts/create", json={"name": "Acme Ltd", **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_job(api: httpx.Client, contact_id: int, **fields: Any) -> int:
    response = api.post("/jobs/create", json={"typeId": 42, "contactId": contact_id, **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def around_now() -> dict[str, str]:
    now = datetime.now(timezone.utc)
    return {"createdAtFrom": utc(now - timedelta(days=1)), "createdAtTo": utc(now + timedelta(days=1))}


def assert_input_error(response: httpx.Response, param: str, *words: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "ERROR_CODE_INPUT_ERROR"
    assert body["payload"] == {"param": param}
    for word in (param, *words):
        assert word in body["message"]


def assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://httpstatuses.io/{status}"
    assert body["title"]
    for word in words:
        assert word in body["detail"]


# --- auth and transport -------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}], ids=["missing", "wrong"])
def test_requests_without_the_right_key_are_denied(server: RunningServer, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server.url, headers=headers) as client:
        response = client.post("/contacts/create", json={"name": "Acme"})
    assert response.status_code == 401
    assert response.json() == {"code": "ERROR_CODE_ACCESS_DENIED", "message": "Invalid or missing API key"}


def test_a_denied_request_changes_nothing(server: RunningServer, api: httpx.Client) -> None:
    httpx.post(f"{server.url}/contacts/create", json={"name": "Acme"})
    assert api.get("/__sandbox__/state").json()["contacts"] == []


def test_post_needs_a_json_object_body(api: httpx.Client) -> None:
    not_json = api.post(
        "/contacts/create", content=b"name=Acme", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["code"] == "ERROR_CODE_INPUT_ERROR"
    assert "application/json" in not_json.json()["message"]

    an_array = api.post("/contacts/create", json=[{"name": "Acme"}])
    assert an_array.status_code == 400
    assert "JSON object" in an_array.json()["message"]


def test_unknown_paths_and_wrong_methods_answer_json(api: httpx.Client) -> None:
    unknown = api.post("/contacts/frobnicate", json={})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "ERROR_CODE_NOT_FOUND"

    wrong_method = api.get("/contacts/list")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["Allow"]


# --- contacts -------------------------------------------------------------


def test_created_contact_can_be_read_back(api: httpx.Client) -> None:
    # Given a contact created with an address and location
    contact_id = create_contact(
        api, reference="ACME-01", groupId=1, street="1 High St", location={"latitude": 51.5, "longitude": -0.12}
    )
    # When it is fetched by id
    response = api.get("/contacts/contact", params={"contactId": contact_id})
    # Then every field comes back, with the defaults a new contact has
    assert response.status_code == 200
    contact = response.json()
    assert contact_id == 1001
    assert contact["name"] == "Acme Ltd"
    assert contact["reference"] == "ACME-01"
    assert contact["groupId"] == 1
    assert contact["location"] == {"latitude": 51.5, "longitude": -0.12}
    assert contact["status"] == "normal"
    assert contact["stopReason"] is None
    assert datetime.strptime(contact["createdAt"], "%Y-%m-%dT%H:%M:%SZ")


def test_create_contact_requires_a_name(api: httpx.Client) -> None:
    response = api.post("/contacts/create", json={"reference": "X"})
    assert_input_error(response, "name")
    assert response.json()["message"] == "Missing param: name"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"name": 123}, "name", ("string",)),
        ({"name": "   "}, "name", ("empty",)),
        ({"name": "x" * 101}, "name", ("100",)),
        ({"name": "A", "groupId": "1"}, "groupId", ("integer",)),
        ({"name": "A", "groupId": True}, "groupId", ("integer",)),
        ({"name": "A", "location": {"latitude": "51", "longitude": 0}}, "location.latitude", ("number",)),
        ({"name": "A", "location": {"latitude": 91, "longitude": 0}}, "location.latitude", ("-90", "90")),
        ({"name": "A", "location": {"latitude": 0}}, "location.longitude", ("Missing",)),
    ],
)
def test_create_contact_rejects_wrongly_typed_fields(
    api: httpx.Client, body: dict[str, Any], param: str, words: tuple[str, ...]
) -> None:
    assert_input_error(api.post("/contacts/create", json=body), param, *words)


def test_create_contact_checks_referenced_group_and_parent(api: httpx.Client) -> None:
    assert_problem(api.post("/contacts/create", json={"name": "A", "groupId": 9}), 404, "Contact group 9")
    assert_problem(api.post("/contacts/create", json={"name": "A", "parentId": 77}), 404, "Contact 77")


def test_get_contact_validates_the_id(api: httpx.Client) -> None:
    assert_input_error(api.get("/contacts/contact"), "contactId", "Missing")
    assert_input_error(api.get("/contacts/contact", params={"contactId": "abc"}), "contactId", "integer")
    assert_problem(api.get("/contacts/contact", params={"contactId": 999}), 404, "Contact 999 was not found")


def test_references_are_not_unique_and_list_filters_by_them(api: httpx.Client) -> None:
    # Given two creates with the same reference (BigChange does not dedupe)
    first = create_contact(api, reference="ACC-7")
    second = create_contact(api, reference="ACC-7")
    create_contact(api, reference="OTHER")
    # When listing by that reference
    response = api.post("/contacts/list", json={"reference": ["ACC-7"]})
    # Then both contacts come back, bare envelope
    assert response.status_code == 200
    body = response.json()
    assert first != second
    assert [c["id"] for c in body["items"]] == [first, second]
    assert body["pageItemCount"] == 2


def test_edit_contact_changes_only_given_fields(api: httpx.Client) -> None:
    contact_id = create_contact(api, reference="R1", town="Leeds")
    response = api.post("/contacts/edit", json={"contactId": contact_id, "name": "Acme Group"})
    assert response.status_code == 204
    assert response.content == b""
    contact = api.get("/contacts/contact", params={"contactId": contact_id}).json()
    assert (contact["name"], contact["reference"], contact["town"]) == ("Acme Group", "R1", "Leeds")
    assert_problem(api.post("/contacts/edit", json={"contactId": 4242, "name": "X"}), 404, "Contact 4242")


def test_contacts_list_pages_sorts_and_filters(api: httpx.Client) -> None:
    for name in ("Charlie", "alpha", "Bravo"):
        create_contact(api, name=name)
    by_name = {"sortBy": "name", "direction": "ascending", "pageSize": 2}
    first_page = api.post("/contacts/list", json={**by_name, "pageNumber": 1}).json()
    second_page = api.post("/contacts/list", json={**by_name, "pageNumber": 2}).json()
    assert [c["name"] for c in first_page["items"]] == ["alpha", "Bravo"]
    assert [c["name"] for c in second_page["items"]] == ["Charlie"]
    assert second_page["pageItemCount"] == 1
    starts_with = api.post("/contacts/list", json={"name": "br"}).json()
    assert [c["name"] for c in starts_with["items"]] == ["Bravo"]


def test_contacts_list_page_size_is_capped_at_1000(api: httpx.Client) -> None:
    assert api.post("/contacts/list", json={"pageSize": 1000}).status_code == 200
    assert_input_error(api.post("/contacts/list", json={"pageSize": 1001}), "pageSize", "1000")
    assert_input_error(api.post("/contacts/list", json={"pageNumber": 0}), "pageNumber")


@pytest.mark.parametrize(
    "moment",
    ["2026-01-01T00:00:00.123Z", "2026-01-01T00:00:00+00:00"],
    ids=["fractional", "explicit-offset"],
)
def test_dates_in_utc_forms_are_accepted(api: httpx.Client, moment: str) -> None:
    assert api.post("/contacts/list", json={"createdAtFrom": moment}).status_code == 200


@pytest.mark.parametrize(
    "moment",
    ["2026-01-01T00:00:00", "2026-01-01T01:00:00+01:00", "2026-01-01", "yesterday"],
)
def test_dates_that_are_not_utc_are_rejected(api: httpx.Client, moment: str) -> None:
    assert_input_error(api.post("/contacts/list", json={"createdAtFrom": moment}), "createdAtFrom", "UTC")


def test_contacts_list_window_over_12_months_breaks_the_rule(api: httpx.Client) -> None:
    window = {"createdAtFrom": "2025-01-01T00:00:00Z", "createdAtTo": "2026-01-01T00:00:01Z"}
    assert_problem(api.post("/contacts/list", json=window), 422, "12 months")


# --- on stop -------------------------------------------------------------


def test_on_stop_then_unstop_round_trip(api: httpx.Client) -> None:
    # Given a contact put on stop for credit
    contact_id = create_contact(api)
    stop = {"contactId": contact_id, "status": "creditLimitOnStop", "stopReason": "Over limit"}
    assert api.post("/contacts/on_stop", json=stop).status_code == 204
    contact = api.get("/contacts/contact", params={"contactId": contact_id}).json()
    assert (contact["status"], contact["stopReason"]) == ("creditLimitOnStop", "Over limit")
    # When it is unstopped
    assert api.post("/contacts/unstop", json={"contactId": contact_id}).status_code == 204
    # Then it is back to normal with no reason
    contact = api.get("/contacts/contact", params={"contactId": contact_id}).json()
    assert (contact["status"], contact["stopReason"]) == ("normal", None)


def test_stop_enums_are_enforced(api: httpx.Client) -> None:
    contact_id = create_contact(api)
    bad_status = api.post("/contacts/on_stop", json={"contactId": contact_id, "status": "onHold"})
    assert_input_error(bad_status, "status", "contactOnStop", "creditLimitOnStop")
    assert_input_error(api.post("/contacts/on_stop", json={"contactId": contact_id}), "status", "Missing")
    bad_scope = api.post("/contacts/unstop", json={"contactId": contact_id, "appliesTo": "everyone"})
    assert_input_error(bad_scope, "appliesTo", "contactOnly", "contactAndChildren")
    assert_problem(api.post("/contacts/unstop", json={"contactId": 31337}), 404, "Contact 31337")


def test_stop_can_cascade_to_children(api: httpx.Client) -> None:
    parent = create_contact(api, name="Head office")
    child = create_contact(api, name="Site", parentId=parent)
    stop = {"contactId": parent, "status": "contactOnStop", "appliesTo": "contactAndChildren"}
    assert api.post("/contacts/on_stop", json=stop).status_code == 204
    assert api.get("/contacts/contact", params={"contactId": child}).json()["status"] == "contactOnStop"
    stopped = api.post("/contacts/list", json={"status": "contactOnStop"}).json()
    assert {c["id"] for c in stopped["items"]} == {parent, child}


# --- jobs -------------------------------------------------------------


def test_job_is_created_new_and_readable_by_jobid_or_id(api: httpx.Client) -> None:
    contact_id = create_contact(api)
    job_id = create_job(api, contact_id, description="Blocked toilet", plannedDuration=90, personId=UUID)
    assert job_id == 5001
    by_job_id = api.get("/jobs/job", params={"jobId": job_id}).json()
    by_id = api.get("/jobs/job", params={"id": job_id}).json()
    assert by_job_id == by_id
    assert by_job_id["status"] == "new"
    assert (by_job_id["contactId"], by_job_id["typeId"], by_job_id["plannedDuration"]) == (contact_id, 42, 90)
    assert by_job_id["constraints"] == []


def test_job_for_unknown_contact_or_type_is_404(api: httpx.Client) -> None:
    assert_problem(api.post("/jobs/create", json={"typeId": 42, "contactId": 999}), 404, "Contact 999 was not found")
    contact_id = create_contact(api)
    assert_problem(api.post("/jobs/create", json={"typeId": 3, "contactId": contact_id}), 404, "Job type 3")


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"typeId": "42"}, "typeId", ("integer",)),
        ({"plannedDuration": -5}, "plannedDuration", ("at least 0",)),
        ({"personId": "not-a-uuid"}, "personId", ("UUID",)),
        ({"customFields": [{"value": "x"}]}, "customFields[0].definitionId", ("Missing",)),
    ],
)
def test_create_job_rejects_wrongly_typed_fields(
    api: httpx.Client, fields: dict[str, Any], param: str, words: tuple[str, ...]
) -> None:
    contact_id = create_contact(api)
    body = {"typeId": 42, "contactId": contact_id, **fields}
    assert_input_error(api.post("/jobs/create", json=body), param, *words)


@pytest.mark.parametrize("status", ["contactOnStop", "creditLimitOnStop"])
def test_no_job_for_a_contact_on_stop(api: httpx.Client, status: str) -> None:
    # Given a contact on stop
    contact_id = create_contact(api)
    api.post("/contacts/on_stop", json={"contactId": contact_id, "status": status}).raise_for_status()
    # When a job is created for it
    response = api.post("/jobs/create", json={"typeId": 42, "contactId": contact_id})
    # Then BigChange refuses with a business-rule problem, and no job exists
    assert_problem(response, 422, f"Contact {contact_id} is on stop ({status})")
    assert api.get("/__sandbox__/state").json()["jobs"] == []


@pytest.mark.parametrize("missing", ["createdAtFrom", "createdAtTo"])
def test_jobs_list_requires_both_dates(api: httpx.Client, missing: str) -> None:
    window = around_now()
    del window[missing]
    assert_input_error(api.post("/jobs/list", json=window), missing, "Missing")


def test_jobs_list_window_is_at_most_12_calendar_months(api: httpx.Client) -> None:
    exactly_twelve = {"createdAtFrom": "2025-03-31T00:00:00Z", "createdAtTo": "2026-03-31T00:00:00Z"}
    assert api.post("/jobs/list", json=exactly_twelve).status_code == 200
    one_second_more = {**exactly_twelve, "createdAtTo": "2026-03-31T00:00:01Z"}
    response = api.post("/jobs/list", json=one_second_more)
    assert_problem(response, 422, "The date range between createdAtFrom and createdAtTo cannot exceed 12 months")
    backwards = {"createdAtFrom": "2026-03-31T00:00:00Z", "createdAtTo": "2026-01-01T00:00:00Z"}
    assert_input_error(api.post("/jobs/list", json=backwards), "createdAtTo")


def test_jobs_list_wraps_its_page_in_result_and_filters(api: httpx.Client) -> None:
    # Given two contacts with jobs
    mine, theirs = create_contact(api), create_contact(api)
    job = create_job(api, mine, reference="J-1")
    create_job(api, theirs)
    # When listing one contact's jobs
    response = api.post("/jobs/list", json={**around_now(), "contactId": [mine]})
    # Then the page sits under "result"
    assert response.status_code == 200
    result = response.json()["result"]
    assert [j["id"] for j in result["items"]] == [job]
    assert result["pageItemCount"] == 1
    by_ref = api.post("/jobs/list", json={**around_now(), "reference": ["J-1"], "status": "new"})
    assert [j["id"] for j in by_ref.json()["result"]["items"]] == [job]


def test_jobs_list_takes_the_docs_comma_separated_contact_ids_and_status_text(api: httpx.Client) -> None:
    # Given three contacts with a job each
    first, second, third = create_contact(api), create_contact(api), create_contact(api)
    jobs = [create_job(api, first), create_job(api, second), create_job(api, third)]
    # When filtering with the documented string forms
    both = api.post("/jobs/list", json={**around_now(), "contactId": f"{first}, {second}", "status": "new"})
    one = api.post("/jobs/list", json={**around_now(), "contactId": str(third), "status": "scheduled,started"})
    # Then the text is read as the list of ids and statuses it names
    assert [j["id"] for j in both.json()["result"]["items"]] == jobs[:2]
    assert one.json()["result"]["items"] == []


@pytest.mark.parametrize(
    ("field", "text", "why"),
    [
        ("contactId", "1001,abc", "comma-separated integers"),
        ("contactId", "1001,,1002", "without empty ones"),
        ("resourceId", "100;101", "comma-separated integers"),
        ("status", "new,Scheduled", "must be one of"),
    ],
)
def test_jobs_list_refuses_malformed_comma_text(api: httpx.Client, field: str, text: str, why: str) -> None:
    assert_input_error(api.post("/jobs/list", json={**around_now(), field: text}), field, why)


def test_jobs_list_vehicle_and_type_filters_are_not_comma_text(api: httpx.Client) -> None:
    # Only the fields the docs type as strings take the comma form; typeId is an array or a number.
    assert_input_error(api.post("/jobs/list", json={**around_now(), "typeId": "42,7"}), "typeId", "integer")


def test_jobs_outside_the_window_are_not_listed(api: httpx.Client) -> None:
    create_job(api, create_contact(api))
    last_year = {"createdAtFrom": "2020-01-01T00:00:00Z", "createdAtTo": "2020-12-31T23:59:59Z"}
    assert api.post("/jobs/list", json=last_year).json()["result"]["items"] == []


# --- constraints and scheduling -------------------------------------------------------------


def test_constraint_needs_a_known_type(api: httpx.Client) -> None:
    job_id = create_job(api, create_contact(api))
    assert_input_error(api.post("/jobs/constraints/create", json={"jobId": job_id}), "type", "Missing")
    bad = api.post("/jobs/constraints/create", json={"jobId": job_id, "type": "jobMustBeFun"})
    assert_input_error(bad, "type", "jobMustStartAfter")


@pytest.mark.parametrize(
    ("kind", "needed"),
    [
        ("jobMustStartAfter", "constraintAt"),
        ("jobMustCompleteBefore", "constraintAt"),
        ("jobResource", "entityId"),
        ("jobVehicleGroup", "entityId"),
    ],
)
def test_constraint_types_require_their_value(api: httpx.Client, kind: str, needed: str) -> None:
    job_id = create_job(api, create_contact(api))
    response = api.post("/jobs/constraints/create", json={"jobId": job_id, "type": kind})
    assert_input_error(response, needed, kind)


def test_constraints_are_created_listed_and_deleted(api: httpx.Client) -> None:
    # Given a job with a start-after and a resource constraint
    job_id = create_job(api, create_contact(api))
    after = {"jobId": job_id, "type": "jobMustStartAfter", "constraintAt": "2026-05-01T08:00:00Z"}
    created = api.post("/jobs/constraints/create", json=after)
    assert created.status_code == 201
    constraint_id = created.json()["id"]
    assert constraint_id == 9001
    resource = {"jobId": job_id, "type": "jobResource", "entityId": 100}
    assert api.post("/jobs/constraints/create", json=resource).status_code == 201
    hours = {"jobId": job_id, "type": "jobMustStartInAvailableHours"}
    assert api.post("/jobs/constraints/create", json=hours).status_code == 201
    # Then they are listed for the job and shown on it
    listed = api.post("/jobs/constraints/list", json={"jobId": job_id}).json()
    assert [c["type"] for c in listed["items"]] == ["jobMustStartAfter", "jobResource", "jobMustStartInAvailableHours"]
    assert len(api.get("/jobs/job", params={"jobId": job_id}).json()["constraints"]) == 3
    # When one is deleted, it is gone
    assert (
        api.post("/jobs/constraints/delete", json={"jobId": job_id, "constraintId": constraint_id}).status_code == 204
    )
    assert_problem(api.post("/jobs/constraints/delete", json={"constraintId": constraint_id}), 404, "Constraint")


def test_constraint_references_must_exist(api: httpx.Client) -> None:
    job_id = create_job(api, create_contact(api))
    unknown_job = {"jobId": 1001, "type": "jobMustStartInAvailableHours"}  # a contact id, not a job id
    assert_problem(api.post("/jobs/constraints/create", json=unknown_job), 404, "Job 1001")
    unknown_resource = {"jobId": job_id, "type": "jobResource", "entityId": 999}
    assert_problem(api.post("/jobs/constraints/create", json=unknown_resource), 404, "Resource 999")


def test_scheduling_stores_resource_vehicle_and_time(api: httpx.Client) -> None:
    # Given a new job
    job_id = create_job(api, create_contact(api))
    # When it is scheduled
    plan = {"jobId": job_id, "resourceId": 100, "vehicleId": 50, "plannedStartAt": "2026-04-20T09:00:00.000Z"}
    response = api.post("/jobs/scheduling", json=plan)
    # Then the job is scheduled with those values
    assert response.status_code == 204
    job = api.get("/jobs/job", params={"jobId": job_id}).json()
    assert (job["status"], job["resourceId"], job["vehicleId"]) == ("scheduled", 100, 50)
    assert job["plannedStartAt"] == "2026-04-20T09:00:00Z"
    listed = api.post("/jobs/list", json={**around_now(), "resourceId": 100}).json()["result"]
    assert [j["id"] for j in listed["items"]] == [job_id]


def test_scheduling_to_unknown_resource_or_job_is_404(api: httpx.Client) -> None:
    job_id = create_job(api, create_contact(api))
    assert_problem(api.post("/jobs/scheduling", json={"jobId": job_id, "resourceId": 999}), 404, "Resource 999")
    assert_problem(api.post("/jobs/scheduling", json={"jobId": 4, "resourceId": 100}), 404, "Job 4")
    assert api.get("/jobs/job", params={"jobId": job_id}).json()["status"] == "new"


# --- faults, latency and the call log -------------------------------------------------------------


def add_fault(api: httpx.Client, **fault: Any) -> dict[str, Any]:
    response = api.post("/__sandbox__/faults", json=fault)
    assert response.status_code == 201, response.text
    return response.json()


def test_fault_answers_n_times_then_the_api_recovers(api: httpx.Client) -> None:
    # Given a 500 fault on contact creation, twice
    add_fault(api, path="/contacts/create", method="POST", status=500, times=2)
    # When creating three times
    statuses = [api.post("/contacts/create", json={"name": "A"}).status_code for _ in range(3)]
    # Then the first two fail without touching state, the third succeeds
    assert statuses == [500, 500, 201]
    assert len(api.get("/__sandbox__/state").json()["contacts"]) == 1
    assert api.get("/__sandbox__/faults").json() == []


def test_default_fault_body_is_an_internal_error(api: httpx.Client) -> None:
    add_fault(api, path="/contacts/create", status=500)
    response = api.post("/contacts/create", json={"name": "A"})
    assert response.json() == {"code": "ERROR_CODE_INTERNAL", "message": "Injected fault"}


def test_fault_after_processing_loses_the_response_but_keeps_the_write(api: httpx.Client) -> None:
    # Given the API will do the work and then fail to answer
    add_fault(api, path="/contacts/create", status=500, when="after")
    # When a contact is created
    response = api.post("/contacts/create", json={"name": "Lost reply", "reference": "R-9"})
    # Then the caller sees a 500, yet the contact exists (reconcile by reference)
    assert response.status_code == 500
    found = api.post("/contacts/list", json={"reference": ["R-9"]}).json()["items"]
    assert [c["name"] for c in found] == ["Lost reply"]


def test_rate_limit_fault_sends_retry_after(api: httpx.Client) -> None:
    add_fault(api, path="/jobs/list", status=429, retry_after=7)
    response = api.post("/jobs/list", json=around_now())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"code": "ERROR_CODE_RATE_LIMITED", "message": "Too many requests"}
    assert api.post("/jobs/list", json=around_now()).status_code == 200


def test_fault_with_custom_body_and_method_filter(api: httpx.Client) -> None:
    add_fault(api, path="/contacts/contact", method="POST", status=503)  # never matches a GET
    add_fault(api, path="*", status=503, body={"oops": True})
    contact = api.get("/contacts/contact", params={"contactId": 1})
    assert (contact.status_code, contact.json()) == (503, {"oops": True})
    assert [f["method"] for f in api.get("/__sandbox__/faults").json()] == ["POST"]
    assert api.delete("/__sandbox__/faults").status_code == 204
    assert api.get("/__sandbox__/faults").json() == []


def test_delay_only_fault_still_answers_normally(api: httpx.Client) -> None:
    add_fault(api, path="/contacts/create", delay_ms=30)
    assert api.post("/contacts/create", json={"name": "Slow"}).status_code == 201


def test_bad_fault_requests_are_rejected(api: httpx.Client) -> None:
    nothing_to_do = api.post("/__sandbox__/faults", json={"path": "/contacts/create"})
    assert nothing_to_do.status_code == 400
    typo = api.post("/__sandbox__/faults", json={"path": "/x", "status": 500, "tims": 2})
    assert typo.status_code == 400


def test_latency_can_be_set_and_cleared(api: httpx.Client) -> None:
    assert api.post("/__sandbox__/latency", json={"ms": 20}).json() == {"ms": 20}
    assert api.post("/contacts/create", json={"name": "A"}).status_code == 201
    assert api.post("/__sandbox__/latency", json={"ms": 0}).json() == {"ms": 0}
    assert api.post("/__sandbox__/latency", json={"ms": -1}).status_code == 400


def test_calls_are_logged_in_order_without_the_key() -> None:
    secret = "s3cret-vh3-key"
    with (
        serve_in_thread(create_app(api_key=secret)) as running,
        httpx.Client(base_url=running.url, headers={"X-API-Key": secret}) as client,
    ):
        # Given calls, one of which wrongly repeats the key in its query and body
        client.post("/contacts/create", json={"name": "A"})
        client.get("/contacts/contact", params={"contactId": 1001, "api_key": secret})
        client.post("/contacts/create", json={"name": "B", "extraInformation": secret})
        # When the log is read
        calls = client.get("/__sandbox__/calls").json()
        # Then it records each call and never the key
        assert all(isinstance(c["at"], float) for c in calls)
        assert [c["at"] for c in calls] == sorted(c["at"] for c in calls)  # arrival times, for pacing checks
        assert [(c["method"], c["path"], c["status"]) for c in calls] == [
            ("POST", "/contacts/create", 201),
            ("GET", "/contacts/contact", 200),
            ("POST", "/contacts/create", 201),
        ]
        assert calls[0]["json"] == {"name": "A"}
        assert calls[1]["query"]["contactId"] == "1001"
        assert secret not in json.dumps(calls)
        # And it can be cleared
        assert client.delete("/__sandbox__/calls").status_code == 204
        assert client.get("/__sandbox__/calls").json() == []


def test_concurrent_creates_get_distinct_ids(api: httpx.Client) -> None:
    # Given the threaded server, when many creates arrive at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda n: create_contact(api, name=f"C{n}"), range(24)))
    # Then each got its own id from one counter
    assert sorted(ids) == list(range(1001, 1025))


def test_calls_log_records_the_status_actually_sent(api: httpx.Client) -> None:
    add_fault(api, path="/contacts/create", status=500, when="after")
    api.post("/contacts/create", json={"name": "A"})
    assert [c["status"] for c in api.get("/__sandbox__/calls").json()] == [500]


def test_reset_restores_the_seed(api: httpx.Client) -> None:
    create_job(api, create_contact(api))
    add_fault(api, path="*", status=500, times=5)
    assert api.post("/__sandbox__/reset").status_code == 204
    state = api.get("/__sandbox__/state").json()
    assert state == {
        "contacts": [],
        "contactGroups": [{"id": 1, "name": "Customers", "createdAt": "2025-01-01T00:00:00Z"}],
        "siteAccessHours": {},
        "jobs": [],
        "constraints": [],
        "stock": [],
        "jobGroups": [],
    }
    assert api.get("/__sandbox__/faults").json() == []
    assert api.get("/__sandbox__/latency").json() == {"ms": 0}
    assert create_contact(api) == 1001
