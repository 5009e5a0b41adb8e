"""The additiv simulator over HTTP: the documented rules, the ApiError envelope, the seed.

Seed: contact 1 (Shannon Crawford, Default/IMP-0001) with pending change request 1,
raised by a colleague; the sandbox key acts as the member "Hookflow Integration".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import SANDBOX_KEY, Sandbox

HOOKFLOW_MEMBER = "6f0c1c3e-2b6a-4a8e-9d55-3f1f2a000001"
ADVISOR = "6f0c1c3e-2b6a-4a8e-9d55-3f1f2a000002"


@pytest.fixture(scope="module")
def control(sandbox_server: str) -> Iterator[httpx.Client]:
    # One client per module: building an httpx.Client costs ~50 ms (its TLS context), per test that adds up.
    with httpx.Client(base_url=f"{sandbox_server}/additiv", timeout=10) as client:
        yield client


@pytest.fixture
def ad(control: httpx.Client) -> Sandbox:
    """The simulator as mounted by `flask sandbox`, reset."""
    control.post("/__sandbox__/reset").raise_for_status()
    return Sandbox(str(control.base_url).rstrip("/"), control)


@pytest.fixture
def api(ad: Sandbox, control: httpx.Client) -> httpx.Client:
    """Authenticated requests to the reset simulator (the same pooled connection)."""
    control.headers["Authorization"] = f"Bearer {SANDBOX_KEY}"
    return control


def new_contact(api: httpx.Client, username: str | None = "tk", **details: Any) -> dict[str, Any]:
    body = {"contactTypeId": 1, "details": details or {"personalInformation": {"displayName": "Tomas Keller"}}}
    if username:
        body["username"] = username
    response = api.post("/v1.0/contacts", json=body)
    assert response.status_code == 200, response.json()
    return response.json()


def assert_api_error(response: httpx.Response, status: int, code: str, message: str, sub_code: str = "NA") -> None:
    body = response.json()
    assert response.status_code == status, body
    assert (body["code"], body["subCode"], body["message"]) == (code, sub_code, message)
    assert len(body["correlationId"]) == 32


# --- Auth and routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, SANDBOX_KEY, "Bearer wrong", f"Basic {SANDBOX_KEY}"])
def test_only_the_bearer_token_is_accepted(ad: Sandbox, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{ad.url}/v1.0/contacts/1/details", headers=headers)
    assert_api_error(response, 401, "Unauthorized", "Missing or invalid bearer token")


def test_unknown_routes_and_methods_answer_the_envelope(api: httpx.Client) -> None:
    assert_api_error(api.get("/v1.0/nowhere"), 404, "NotFound", "No route GET /v1.0/nowhere")
    assert_api_error(
        api.delete("/v1.0/contacts/1/details"), 405, "MethodNotAllowed", "No route DELETE /v1.0/contacts/1/details"
    )


# --- Contacts ---------------------------------------------------------------------------------------------


def test_a_created_contact_has_ids_and_its_details(api: httpx.Client) -> None:
    created = new_contact(api)
    assert created["id"] == 1001 and len(created["uId"]) == 36
    details = api.get("/v1.0/contacts/1001/details").json()
    assert details == {
        "id": 1001,
        "hasPendingChangeRequest": False,
        "hasPendingEmail": False,
        "hasPendingMobile": False,
        "details": {"personalInformation": {"displayName": "Tomas Keller"}},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"details": {}}, "Missing param: contactTypeId"),
        ({"contactTypeId": 1}, "Missing param: details"),
        ({"contactTypeId": 1, "details": []}, "Invalid param: details must be an object"),
        ({"contactTypeId": 9, "details": {}}, "Unknown contactTypeId 9"),
        ({"contactTypeId": "1", "details": {}}, "Invalid param: contactTypeId must be an integer, got string"),
    ],
)
def test_create_refuses_bad_input(api: httpx.Client, body: dict[str, Any], message: str) -> None:
    assert_api_error(api.post("/v1.0/contacts", json=body), 400, "BadRequest", message)


def test_a_body_that_is_not_an_object_is_not_in_the_required_format(api: httpx.Client) -> None:
    response = api.post("/v1.0/contacts", content=b"[1]", headers={"Content-Type": "application/json"})
    assert_api_error(response, 400, "BadRequest", "The request was not in the required format")


def test_usernames_are_unique_whatever_their_case(api: httpx.Client) -> None:
    new_contact(api, username="tk")
    response = api.post("/v1.0/contacts", json={"contactTypeId": 1, "details": {}, "username": "TK"})
    assert_api_error(response, 400, "BadRequest", "The provided username is not unique.", "UsernameNotUnique")
    taken = api.put("/v1.0/contacts/1001/username", json={"username": "Shannon.Crawford@additiv.com"})
    assert_api_error(taken, 400, "BadRequest", "The provided username is not unique.", "UsernameNotUnique")


def test_a_username_can_be_read_and_changed(api: httpx.Client) -> None:
    new_contact(api)
    assert api.put("/v1.0/contacts/1001/username", json={"username": "tk"}).status_code == 204  # its own: fine
    assert api.put("/v1.0/contacts/1001/username", json={"username": "tomas"}).status_code == 204
    assert api.get("/v1.0/contacts/1001/username").json() == {"username": "tomas"}


def test_an_unknown_contact_is_not_found(api: httpx.Client) -> None:
    assert_api_error(api.get("/v1.0/contacts/77/username"), 404, "NotFound", "Contact 77 was not found")


# --- Details, approval, change requests and history ---------------------------------------------------------


def test_a_patch_merges_and_enters_the_change_history(api: httpx.Client) -> None:
    new_contact(api)
    answer = api.patch("/v1.0/contacts/1001/details", json={"details": {"personalInformation": {"firstName": "Tomas"}}})
    assert answer.json() == {"isApprovalRequired": False, "hasPendingEmail": False, "hasPendingMobile": False}
    details = api.get("/v1.0/contacts/1001/details").json()["details"]
    assert details == {"personalInformation": {"displayName": "Tomas Keller", "firstName": "Tomas"}}
    history = api.request("GET", "/v1.1/contacts/1001/details/change-history/search", json={}).json()
    (entry,) = history["results"]
    assert entry["initiatorPerson"] == {"uid": HOOKFLOW_MEMBER, "name": "Hookflow Integration"}
    assert entry["details"] == [
        {
            "path": "personalInformation.firstName",
            "originalValue": None,
            "targetValue": "Tomas",
            "isApprovalRequired": False,
        }
    ]


def test_a_put_replaces_the_details(api: httpx.Client) -> None:
    new_contact(api)
    api.put("/v1.0/contacts/1001/details", json={"details": {"other": {"x": 1}}})
    assert api.get("/v1.0/contacts/1001/details").json()["details"] == {"other": {"x": 1}}


def test_a_change_to_an_approval_path_becomes_a_pending_change_request(api: httpx.Client) -> None:
    new_contact(api)
    change = {"details": {"personalInformation": {"lastName": "Keller-Meier"}}, "comment": "married"}
    assert api.patch("/v1.0/contacts/1001/details", json=change).json()["isApprovalRequired"] is True
    assert "lastName" not in api.get("/v1.0/contacts/1001/details").json()["details"]["personalInformation"]
    check = api.get("/v1.1/contacts/1001/pending-change-request/check").json()
    assert check["hasPendingChangeRequest"] is True and check["changeRequest"]["id"] == 101
    request = api.get("/v1.1/contacts/1001/change-requests/101").json()
    assert (request["status"], request["initiatorComment"]) == ({"id": 1, "name": "Pending"}, "married")
    assert request["initiatorMember"] == {"uId": HOOKFLOW_MEMBER, "name": "Hookflow Integration"}
    # And its initiator may not review it
    review = api.post("/v1.0/contacts/1001/change-requests/101/review", json={"isApproved": True})
    assert_api_error(review, 400, "BadRequest", "The initiating member cannot review their own change")


def test_approving_a_colleagues_change_request_applies_it(api: httpx.Client) -> None:
    review = api.post("/v1.0/contacts/1/change-requests/1/review", json={"isApproved": True, "comment": "ok"})
    assert review.status_code == 204
    assert api.get("/v1.0/contacts/1/details").json()["details"]["personalInformation"]["lastName"] == "Crawford-Smith"
    request = api.get("/v1.1/contacts/1/change-requests/1").json()
    assert request["status"]["name"] == "Approved" and request["reviewMember"]["uId"] == HOOKFLOW_MEMBER
    again = api.post("/v1.0/contacts/1/change-requests/1/review", json={"isApproved": False})
    assert_api_error(again, 400, "BadRequest", "Only a pending change request can be reviewed")
    assert api.get("/v1.1/contacts/1/pending-change-request/check").json() == {
        "hasPendingChangeRequest": False,
        "changeRequest": None,
    }


def test_rejecting_leaves_the_details_alone(api: httpx.Client) -> None:
    assert api.post("/v1.0/contacts/1/change-requests/1/review", json={"isApproved": False}).status_code == 204
    assert api.get("/v1.0/contacts/1/details").json()["details"]["personalInformation"]["lastName"] == "Crawford"


def test_a_review_needs_is_approved_and_a_change_request_of_that_contact(api: httpx.Client) -> None:
    missing = api.post("/v1.0/contacts/1/change-requests/1/review", json={"comment": "?"})
    assert_api_error(missing, 400, "BadRequest", "Missing param: isApproved")
    wrong = api.post("/v1.0/contacts/1/change-requests/1/review", json={"isApproved": "yes"})
    assert_api_error(wrong, 400, "BadRequest", "Invalid param: isApproved must be a boolean")
    elsewhere = api.post("/v1.0/contacts/2/change-requests/1/review", json={"isApproved": True})
    assert_api_error(elsewhere, 404, "NotFound", "Change request 1 of contact 2 was not found")


def test_change_request_search_filters_sorts_and_pages(api: httpx.Client) -> None:
    new_contact(api)
    api.patch("/v1.0/contacts/1001/details", json={"details": {"personalInformation": {"dateOfBirth": "1980-01-01"}}})
    search = lambda **dto: api.post("/v1.0/contacts/change-requests/search", json=dto).json()  # noqa: E731
    assert [r["id"] for r in search(sortBy="Id", sortOrder="Ascending")["results"]] == [1, 101]
    assert [r["id"] for r in search(initiatorMemberUids=[ADVISOR])["results"]] == [1]
    assert [r["id"] for r in search(contactIds=[1001])["results"]] == [101]
    assert [r["id"] for r in search(paths=["personalInformation.lastName"])["results"]] == [1]
    assert search(statusId=2)["results"] == []
    by_initiator = search(sortBy="InitiatorMemberId", sortOrder="Ascending")["results"]
    assert [r["initiatorMember"]["uid"] for r in by_initiator] == [HOOKFLOW_MEMBER, ADVISOR]
    page = search(pageSize=1, page=2, sortBy="Id", sortOrder="Ascending")
    assert (page["totalCount"], page["pageCount"], [r["id"] for r in page["results"]]) == (2, 2, [101])
    assert page["results"][0]["initiatorMember"] == {"uid": HOOKFLOW_MEMBER, "name": "Hookflow Integration"}


def test_change_request_search_validates_its_dto(api: httpx.Client) -> None:
    bad = api.post("/v1.0/contacts/change-requests/search", json={"sortBy": "Name"})
    assert bad.status_code == 400 and "sortBy must be one of" in bad.json()["message"]
    naive = api.post("/v1.0/contacts/change-requests/search", json={"createDateFrom": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "createDateFrom" in naive.json()["message"]


def test_date_windows_filter_searches(api: httpx.Client) -> None:
    future = {"createDateFrom": "2999-01-01T00:00:00Z"}
    assert api.post("/v1.0/contacts/change-requests/search", json=future).json()["totalCount"] == 0
    assert (
        api.post("/v1.0/contacts/change-requests/search", json={"reviewDateTo": "2999-01-01T00:00:00Z"}).json()[
            "totalCount"
        ]
        == 0
    )  # nothing reviewed yet


@pytest.mark.parametrize(
    ("language", "pending"), [("de", "Ausstehend"), ("de-CH,de;q=0.9", "Ausstehend"), ("fr", "Pending")]
)
def test_accept_language_localises_status_names(api: httpx.Client, language: str, pending: str) -> None:
    statuses = api.get("/v1.0/contacts/change-requests/statuses", headers={"Accept-Language": language}).json()
    assert statuses["changeRequestStatuses"][0] == {"id": 1, "name": pending}


def test_the_language_query_parameter_works_too(api: httpx.Client) -> None:
    statuses = api.get("/v1.0/contacts/change-requests/statuses", params={"language": "de"}).json()
    assert statuses["changeRequestStatuses"][1]["name"] == "Genehmigt"


# --- External connections ----------------------------------------------------------------------------------


def test_a_contact_is_found_by_its_external_connection(api: httpx.Client) -> None:
    new_contact(api)
    assert (
        api.post("/v1.0/contacts/1001/external-connections", json={"externalId": "C-1", "system": "CRM"}).status_code
        == 204
    )
    assert api.get("/v1.0/contacts/1001/external-connections").json() == {
        "connections": [{"externalId": "C-1", "system": "CRM"}]
    }
    found = api.get("/v1.0/contacts/external-connections", params={"system": "CRM", "externalId": "C-1"}).json()
    assert found["id"] == 1001
    other_system = api.get("/v1.0/contacts/external-connections", params={"system": "SSO", "externalId": "C-1"})
    assert_api_error(other_system, 404, "NotFound", "No contact has external connection SSO/C-1")


def test_the_lookup_also_takes_system_and_external_id_as_path_parameters(api: httpx.Client) -> None:
    # The docs do not say query or path; the simulator answers both so ADDITIV_ROUTES can switch.
    new_contact(api)
    api.post("/v1.0/contacts/1001/external-connections", json={"externalId": "C/1 1", "system": "CRM"})
    found = api.get("/v1.0/contacts/external-connections/CRM/C%2F1%201")
    assert found.status_code == 200 and found.json()["id"] == 1001
    unknown = api.get("/v1.0/contacts/external-connections/SSO/C-1")
    assert_api_error(unknown, 404, "NotFound", "No contact has external connection SSO/C-1")


def test_external_ids_are_unique_across_contacts_and_systems(api: httpx.Client) -> None:
    new_contact(api)
    taken = api.post("/v1.0/contacts/1001/external-connections", json={"externalId": "IMP-0001", "system": "CRM"})
    assert_api_error(taken, 400, "BadRequest", "ExternalId 'IMP-0001' is already used by contact 1")


def test_finding_needs_both_parameters(api: httpx.Client) -> None:
    assert_api_error(
        api.get("/v1.0/contacts/external-connections", params={"system": "CRM"}),
        400,
        "BadRequest",
        "Missing param: externalId",
    )


# --- Exports ------------------------------------------------------------------------------------------------


def test_an_export_is_not_ready_at_first_then_answers_csv(api: httpx.Client) -> None:
    new_contact(api)
    job = api.post("/v1.0/contacts/export").json()["exportJobId"]
    assert api.get(f"/v1.0/contacts/export/{job}").status_code == 202
    ready = api.get(f"/v1.0/contacts/export/{job}")
    assert ready.headers["Content-Type"].startswith("text/csv")
    header, *rows = ready.text.splitlines()
    assert header.startswith("id,uId,contactTypeId,username,")
    assert [row.split(",")[0] for row in rows] == ["1", "1001"]


@pytest.mark.parametrize(
    "send",
    [
        lambda api, q: api.post("/v1.0/contacts/export", json=q),
        lambda api, q: api.post("/v1.0/contacts/export", content=q),
    ],
)
def test_an_export_can_filter_by_display_name(api: httpx.Client, send: Callable[..., httpx.Response]) -> None:
    new_contact(api)
    query = (
        'query { contacts( where: { and: [{ personalInformation: { displayName: { contains: "shannon" } } }] } )'
        " { items { } } }"
    )
    job = send(api, query).json()["exportJobId"]
    api.get(f"/v1.0/contacts/export/{job}")
    assert [row.split(",")[0] for row in api.get(f"/v1.0/contacts/export/{job}").text.splitlines()[1:]] == ["1"]


def test_an_export_refuses_a_body_that_is_not_a_query(api: httpx.Client) -> None:
    assert_api_error(
        api.post("/v1.0/contacts/export", json={"q": 1}),
        400,
        "BadRequest",
        "The request was not in the required format",
    )


def test_an_unknown_export_is_not_found(api: httpx.Client) -> None:
    job = "8a16feed-2e0d-4228-8fbb-a05bb4aba530"
    assert_api_error(api.get(f"/v1.0/contacts/export/{job}"), 404, "NotFound", f"Export job {job} was not found")


# --- Legal entities -----------------------------------------------------------------------------------------


def test_a_legal_entity_is_created_read_and_updated(api: httpx.Client) -> None:
    body = {"contacts": [{"contactId": 1, "accessPolicyKeys": ["FullAccess"]}], "details": {"name": "Crawford Trust"}}
    assert api.post("/v1.1/legalentities", json=body).json() == {"id": 2001, "details": {"name": "Crawford Trust"}}
    assert (
        api.put("/v1.0/legalentities/2001/details", json={"details": {"name": "Crawford Family Trust"}}).status_code
        == 204
    )
    assert api.get("/v1.0/legalentities/2001/details").json() == {
        "contactGroupId": 2001,
        "details": {"name": "Crawford Family Trust"},
    }


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"contacts": [{"contactId": 9, "accessPolicyKeys": ["ReadOnly"]}], "details": {}},
            404,
            "contacts[0]: contact 9 was not found",
        ),
        (
            {"contacts": [{"contactId": 1, "accessPolicyKeys": ["Owner"]}], "details": {}},
            400,
            "Invalid param: contacts[0].accessPolicyKeys[0] must be one of: FullAccess, ReadOnly (got 'Owner')",
        ),
        ({"contacts": []}, 400, "Missing param: details"),
    ],
)
def test_legal_entity_rules(api: httpx.Client, body: dict[str, Any], status: int, message: str) -> None:
    assert_api_error(
        api.post("/v1.1/legalentities", json=body), status, "NotFound" if status == 404 else "BadRequest", message
    )


def test_an_unknown_legal_entity_is_not_found(api: httpx.Client) -> None:
    assert_api_error(api.get("/v1.0/legalentities/5/details"), 404, "NotFound", "Legal entity 5 was not found")
    assert_api_error(
        api.put("/v1.0/legalentities/5/details", json={"details": {}}), 404, "NotFound", "Legal entity 5 was not found"
    )


# --- Operator side -----------------------------------------------------------------------------------------------


def test_calls_state_faults_and_reset(ad: Sandbox, api: httpx.Client) -> None:
    ad.fault("/v1.0/contacts", method="POST", status=500, when="after")
    response = api.post("/v1.0/contacts", json={"contactTypeId": 1, "details": {}})
    assert (response.status_code, response.json()["code"]) == (500, "General")
    (call,) = ad.calls()
    assert call == {
        "method": "POST",
        "path": "/v1.0/contacts",
        "query": {},
        "json": {"contactTypeId": 1, "details": {}},
        "status": 500,
    }
    state = ad.state()
    assert [c["id"] for c in state["contacts"]] == [1, 1001]  # carried out, answer lost
    assert [r["id"] for r in state["change_requests"]] == [1] and "_targets" not in state["change_requests"][0]
    ad.control.delete("/__sandbox__/calls").raise_for_status()
    assert ad.calls() == [] and len(ad.state()["contacts"]) == 2
    ad.control.post("/__sandbox__/reset").raise_for_status()
    assert [c["id"] for c in ad.state()["contacts"]] == [1]
    ad.fault("*", status=429, retry_after=1)
    limited = api.get("/v1.0/contacts/1/details")
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()["code"]) == (
        429,
        "1",
        "TooManyRequests",
    )
