"""additiv input models: the DTO fields of shared/api-docs/additiv-client-contacts.txt, typed.

Ids are int32, member ids UUIDs, dates carry a timezone and go out in UTC, enums are the
documented ones, and unknown fields are refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from handlers.additiv import OPERATIONS
from schemas import additiv as m

UID = "497f6eca-6276-4993-bfeb-53cbbbba6f08"


def dumped(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    return model.model_validate(data).model_dump(mode="json", exclude_none=True)


def refused(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    first = caught.value.errors()[0]
    return ".".join(str(part) for part in first["loc"]) + ": " + first["msg"]


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_every_input_refuses_unknown_fields(op: Any) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        op.input.model_validate({"contactID": 5})


def test_create_needs_a_contact_type_and_details() -> None:
    assert refused(m.ContactCreate, {"details": {}}).startswith("contactTypeId:")
    assert refused(m.ContactCreate, {"contactTypeId": 1}).startswith("details:")
    assert refused(m.ContactCreate, {"contactTypeId": 1, "details": "x"}).startswith("details:")


def test_create_takes_username_correlation_id_and_an_external_connection() -> None:
    data = {
        "contactTypeId": 1,
        "username": "tk",
        "details": {"personalInformation": {"firstName": "T"}},
        "correlationId": "evt-1",
        "externalConnection": {"system": "CRM", "externalId": "C-1"},
    }
    assert dumped(m.ContactCreate, data) == data


@pytest.mark.parametrize("link", [{"system": "CRM"}, {"externalId": "C-1"}, {"system": "", "externalId": "C-1"}])
def test_an_external_connection_needs_both_system_and_external_id(link: dict[str, Any]) -> None:
    create = {"contactTypeId": 1, "username": "tk", "details": {}, "externalConnection": link}
    assert refused(m.ContactCreate, create).startswith("externalConnection.")


def test_an_external_connection_needs_a_username_so_a_retried_create_cannot_make_a_second_contact() -> None:
    link = {"system": "CRM", "externalId": "C-1"}
    message = refused(m.ContactCreate, {"contactTypeId": 1, "details": {}, "externalConnection": link})
    assert message.startswith(": Value error, externalConnection needs a username (e.g. the client's email)")
    assert "stops a retried create from making a second contact" in message
    assert dumped(m.ContactCreate, {"contactTypeId": 1, "details": {}})["contactTypeId"] == 1  # no link: optional


@pytest.mark.parametrize("ident", [0, -1, 2_147_483_648, "x"])
def test_ids_are_positive_int32(ident: Any) -> None:
    assert refused(m.DetailsGet, {"contactId": ident}).startswith("contactId:")
    assert refused(m.LegalEntityDetailsGet, {"legalEntityId": ident}).startswith("legalEntityId:")
    assert refused(m.ChangeRequestGet, {"contactId": 1, "changeRequestId": ident}).startswith("changeRequestId:")


def test_the_largest_int32_is_an_id() -> None:
    assert m.DetailsGet(contactId=2_147_483_647).contactId == 2_147_483_647


def test_a_patch_must_change_something_and_a_put_may_empty_the_details() -> None:
    assert refused(m.DetailsPatch, {"contactId": 1, "details": {}}).startswith("details:")
    assert dumped(m.DetailsPut, {"contactId": 1, "details": {}}) == {"contactId": 1, "details": {}}


def test_dates_need_a_timezone_and_are_sent_in_utc() -> None:
    data = {"createDateFrom": "2026-03-01T10:00:00+01:00", "createDateTo": "2026-03-02T00:00:00Z"}
    assert dumped(m.ChangeRequestSearch, data) == {
        "createDateFrom": "2026-03-01T09:00:00Z",
        "createDateTo": "2026-03-02T00:00:00Z",
    }
    assert refused(m.ChangeRequestSearch, {"createDateFrom": "2026-03-01T10:00:00"}).startswith("createDateFrom:")


@pytest.mark.parametrize(
    ("model", "start", "end"),
    [
        (m.ChangeRequestSearch, "createDateFrom", "createDateTo"),
        (m.ChangeRequestSearch, "reviewDateFrom", "reviewDateTo"),
        (m.ChangeHistorySearch, "executionDateFrom", "executionDateTo"),
    ],
)
def test_a_window_that_ends_before_it_starts_is_refused(model: type[BaseModel], start: str, end: str) -> None:
    data = {"contactId": 1, start: "2026-03-02T00:00:00Z", end: "2026-03-01T00:00:00Z"}
    with pytest.raises(ValidationError, match=f"{end} is before {start}"):
        model.model_validate(
            data if model is m.ChangeHistorySearch else {k: v for k, v in data.items() if k != "contactId"}
        )


def test_change_request_search_takes_every_documented_filter() -> None:
    data = {
        "page": 1,
        "pageSize": 50,
        "sortOrder": "Descending",
        "sortBy": "ReviewDate",
        "excludeHierarchy": True,
        "statusId": 1,
        "createDateFrom": "2026-01-01T00:00:00Z",
        "createDateTo": "2026-02-01T00:00:00Z",
        "initiatorMemberUids": [UID],
        "contactIds": [1, 2],
        "reviewDateFrom": "2026-01-01T00:00:00Z",
        "reviewDateTo": "2026-02-01T00:00:00Z",
        "reviewMemberUids": [UID],
        "paths": ["personalInformation.lastName"],
    }
    assert dumped(m.ChangeRequestSearch, data) == data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"sortBy": "Name"}, "sortBy"),
        ({"sortOrder": "Up"}, "sortOrder"),
        ({"initiatorMemberUids": ["not-a-uuid"]}, "initiatorMemberUids"),
        ({"contactIds": [0]}, "contactIds"),
        ({"page": 0}, "page"),
        ({"pageSize": 0}, "pageSize"),
    ],
)
def test_change_request_search_refuses_values_outside_the_docs(data: dict[str, Any], field: str) -> None:
    assert refused(m.ChangeRequestSearch, data).startswith(f"{field}")


def test_change_history_search_sorts_only_by_its_documented_keys() -> None:
    assert dumped(m.ChangeHistorySearch, {"contactId": 1, "sortBy": "executionDate"})["sortBy"] == "executionDate"
    assert refused(m.ChangeHistorySearch, {"contactId": 1, "sortBy": "CreateDate"}).startswith("sortBy:")
    assert refused(m.ChangeHistorySearch, {"contactId": 1, "initiatorPersonUids": [7]}).startswith(
        "initiatorPersonUids"
    )


def test_a_review_must_say_whether_it_approves() -> None:
    assert refused(m.ChangeRequestReview, {"contactId": 1, "changeRequestId": 2}).startswith("isApproved:")
    assert m.ChangeRequestReview(contactId=1, changeRequestId=2, isApproved="true").isApproved is True


def test_username_and_external_ids_are_not_empty() -> None:
    assert refused(m.UsernamePut, {"contactId": 1, "username": ""}).startswith("username:")
    assert refused(m.ExternalConnectionAdd, {"contactId": 1, "system": "CRM", "externalId": ""}).startswith(
        "externalId:"
    )
    assert refused(m.ExternalConnectionFind, {"system": "CRM"}).startswith("externalId:")


def test_an_export_job_is_a_uuid_and_a_filter_is_optional() -> None:
    assert refused(m.ContactsExportGet, {"exportJobId": "job-1"}).startswith("exportJobId:")
    assert dumped(m.ContactsExport, {}) == {}
    assert refused(m.ContactsExport, {"query": ""}).startswith("query:")


def test_legal_entity_contacts_need_access_policy_keys() -> None:
    good = {"contacts": [{"contactId": 1, "accessPolicyKeys": ["FullAccess"]}], "details": {"name": "K"}}
    assert dumped(m.LegalEntityCreate, good) == good
    bad = {"contacts": [{"contactId": 1, "accessPolicyKeys": []}], "details": {}}
    assert refused(m.LegalEntityCreate, bad).startswith("contacts.0.accessPolicyKeys:")
    assert refused(m.LegalEntityCreate, {"contacts": []}).startswith("details:")
