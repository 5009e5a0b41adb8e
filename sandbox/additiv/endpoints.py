"""The simulated routes: each a request contract (`Field`s) and a handler `(sim, request) -> (status, body)`.

A body of None answers 204 (or the status given); a str answers text/csv.
"""

from __future__ import annotations

import copy
import csv
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.additiv.state import (
    ACCESS_POLICIES,
    PENDING,
    STATUSES,
    AdditivSandbox,
    Record,
    bad_request,
    flatten,
    not_found,
)
from sandbox.additiv.views import change_request_view, contact_ref, member, paged, sortable, status, within
from sandbox.validation import Field, Integer, ListOf, Object, OneOf, Text, UtcDateTime, Uuid, invalid, validate

Reply = tuple[int, Any]


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: path parameters, validated fields, language, raw body."""

    path: dict[str, Any]
    params: Record
    language: str
    raw: Any = None


@dataclass(frozen=True)
class Boolean:
    def __call__(self, value: Any, param: str) -> bool:
        if not isinstance(value, bool):
            raise invalid(param, "must be a boolean")
        return value


@dataclass(frozen=True)
class JsonObject:
    def __call__(self, value: Any, param: str) -> Record:
        if not isinstance(value, dict):
            raise invalid(param, "must be an object")
        return value


@dataclass(frozen=True)
class Anything:
    def __call__(self, value: Any, param: str) -> Any:
        return value


NON_EMPTY = Text(non_empty=True)
CR_SORT_COLUMNS = {
    "Id": "id",
    "StatusId": "statusId",
    "CreateDate": "createDate",
    "InitiatorMemberId": "initiatorMember",
    "ContactId": "contactId",
    "ReviewDate": "reviewDate",
    "ReviewMemberId": "reviewMember",
}
INT32 = Integer(minimum=0, maximum=2_147_483_647)
PAGING = (
    Field("page", Integer(minimum=1), default=1),
    Field("pageSize", Integer(minimum=1, maximum=1000), default=10),
    Field("sortOrder", OneOf(("Ascending", "Descending")), default="Descending"),
)
DETAILS_CHANGE = (Field("details", JsonObject(), required=True), Field("comment", Text()))
CONNECTION = (Field("externalId", NON_EMPTY, required=True), Field("system", NON_EMPTY, required=True))
CREATE = (
    Field("contactTypeId", INT32, required=True),
    Field("username", NON_EMPTY),
    Field("details", JsonObject(), required=True),
    Field("correlationId", Text()),
)
CR_SEARCH = (
    *PAGING,
    Field("sortBy", OneOf(tuple(CR_SORT_COLUMNS))),
    Field("excludeHierarchy", Boolean()),
    Field("statusId", INT32),
    Field("createDateFrom", UtcDateTime()),
    Field("createDateTo", UtcDateTime()),
    Field("initiatorMemberUids", ListOf(Uuid())),
    Field("contactIds", ListOf(INT32)),
    Field("reviewDateFrom", UtcDateTime()),
    Field("reviewDateTo", UtcDateTime()),
    Field("reviewMemberUids", ListOf(Uuid())),
    Field("paths", ListOf(Text())),
)
HISTORY_SEARCH = (
    *PAGING,
    Field("sortBy", OneOf(("contactChangeSetId", "executionDate", "initiatorPersonId"))),
    Field("initiatorPersonUids", ListOf(Uuid())),
    Field("executionDateFrom", UtcDateTime()),
    Field("executionDateTo", UtcDateTime()),
    Field("paths", ListOf(Text())),
)
REVIEW = (Field("isApproved", Boolean(), required=True), Field("comment", Text()))
LEGAL_ENTITY_CONTACT = Object(
    (
        Field("contactId", INT32, required=True),
        Field("accessPolicyKeys", ListOf(OneOf(ACCESS_POLICIES)), required=True),
    )
)
LEGAL_ENTITY_CREATE = (Field("contacts", ListOf(LEGAL_ENTITY_CONTACT)), Field("details", Anything(), required=True))
DETAILS_ONLY = (Field("details", Anything(), required=True),)
_DISPLAY_NAME_FILTER = re.compile(r'displayName\s*:\s*\{\s*contains\s*:\s*"([^"]*)"\s*\}')


# --- contacts ----------------------------------------------------------------------------------------


def create_contact(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.create_contact(call.params)
    return 200, {"id": contact["id"], "uId": contact["uId"], "details": copy.deepcopy(contact["details"])}


def get_details(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    pending = any(
        r["contactId"] == contact["id"] and r["statusId"] == PENDING for r in sim.tenant.change_requests.values()
    )
    return 200, {
        "id": contact["id"],
        "hasPendingChangeRequest": pending,
        "hasPendingEmail": False,
        "hasPendingMobile": False,
        "details": copy.deepcopy(contact["details"]),
    }


def patch_details(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    return 200, sim.change_details(contact, call.params["details"], call.params.get("comment"), replace=False)


def put_details(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    return 200, sim.change_details(contact, call.params["details"], call.params.get("comment"), replace=True)


def history_search(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    p = call.params
    rows = [
        entry
        for entry in sim.tenant.history
        if entry["contactId"] == contact["id"]
        and within(entry["executionDate"], p, "executionDateFrom", "executionDateTo")
        and ("initiatorPersonUids" not in p or entry["initiatorPerson"]["uid"] in p["initiatorPersonUids"])
        and ("paths" not in p or any(d["path"] in p["paths"] for d in entry["details"]))
    ]
    sort_keys: dict[str, Callable[[Record], Any]] = {
        "executionDate": lambda e: (e["executionDate"], e["changeSetId"]),
        "initiatorPersonId": lambda e: (e["initiatorPerson"]["uid"], e["changeSetId"]),
    }
    rows.sort(
        key=sort_keys.get(p.get("sortBy", ""), lambda e: e["changeSetId"]), reverse=p["sortOrder"] == "Descending"
    )
    shown = ("initiatorPerson", "executionDate", "details")
    return 200, paged([{key: copy.deepcopy(e[key]) for key in shown} for e in rows], p)


def list_connections(sim: AdditivSandbox, call: Call) -> Reply:
    return 200, {"connections": copy.deepcopy(sim.contact(call.path["contactId"])["connections"])}


def add_connection(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    external_id = call.params["externalId"]
    for other in sim.tenant.contacts.values():
        if any(c["externalId"] == external_id for c in other["connections"]):
            raise bad_request(f"ExternalId {external_id!r} is already used by contact {other['id']}")
    contact["connections"].append({"externalId": external_id, "system": call.params["system"]})
    return 204, None


def find_by_connection(sim: AdditivSandbox, call: Call) -> Reply:
    """By query parameters (the connector's default) or path parameters: the docs do not say which."""
    given = call.path or call.params
    wanted = {"externalId": given["externalId"], "system": given["system"]}
    for contact in sim.tenant.contacts.values():
        if wanted in contact["connections"]:
            return 200, {"id": contact["id"], "uid": contact["uId"]}
    raise not_found(f"No contact has external connection {wanted['system']}/{wanted['externalId']}")


def get_username(sim: AdditivSandbox, call: Call) -> Reply:
    return 200, {"username": sim.contact(call.path["contactId"])["username"]}


def put_username(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    sim.check_username(call.params["username"], owner=contact["id"])
    contact["username"] = call.params["username"]
    return 204, None


# --- change requests -----------------------------------------------------------------------------------


def search_change_requests(sim: AdditivSandbox, call: Call) -> Reply:
    p = call.params
    rows = [
        r
        for r in sim.tenant.change_requests.values()
        if ("statusId" not in p or r["statusId"] == p["statusId"])
        and ("contactIds" not in p or r["contactId"] in p["contactIds"])
        and within(r["createDate"], p, "createDateFrom", "createDateTo")
        and within(r["reviewDate"], p, "reviewDateFrom", "reviewDateTo")
        and ("initiatorMemberUids" not in p or r["initiatorMember"]["uid"] in p["initiatorMemberUids"])
        and ("reviewMemberUids" not in p or (r["reviewMember"] or {}).get("uid") in p["reviewMemberUids"])
        and ("paths" not in p or any(d["path"] in p["paths"] for d in r["details"]))
    ]
    column = CR_SORT_COLUMNS.get(p.get("sortBy", ""), "createDate")
    rows.sort(key=lambda r: (sortable(r[column]), r["id"]), reverse=p["sortOrder"] == "Descending")
    return 200, paged([change_request_view(sim, r, call.language, full=False) for r in rows], p)


def change_request_statuses(sim: AdditivSandbox, call: Call) -> Reply:
    return 200, {"changeRequestStatuses": [status(ident, call.language) for ident in STATUSES]}


def get_change_request(sim: AdditivSandbox, call: Call) -> Reply:
    request = sim.change_request(call.path["contactId"], call.path["changeRequestId"])
    return 200, change_request_view(sim, request, call.language, full=True)


def review_change_request(sim: AdditivSandbox, call: Call) -> Reply:
    request = sim.change_request(call.path["contactId"], call.path["changeRequestId"])
    sim.review(request, call.params["isApproved"], call.params.get("comment"))
    return 204, None


def pending_check(sim: AdditivSandbox, call: Call) -> Reply:
    contact = sim.contact(call.path["contactId"])
    pending = [
        r for r in sim.tenant.change_requests.values() if r["contactId"] == contact["id"] and r["statusId"] == PENDING
    ]
    if not pending:
        return 200, {"hasPendingChangeRequest": False, "changeRequest": None}
    first = min(pending, key=lambda r: r["id"])
    summary = {
        "id": first["id"],
        "initiatorMember": member(first["initiatorMember"], "uid"),
        "createdDate": first["createDate"],
    }
    return 200, {"hasPendingChangeRequest": True, "changeRequest": summary}


# --- exports and legal entities ---------------------------------------------------------------------------


def start_export(sim: AdditivSandbox, call: Call) -> Reply:
    """Empty body: every contact; a GraphQL query (JSON string or text/plain) may filter on displayName."""
    query = call.raw
    if query not in (None, "") and not (isinstance(query, str) and query.lstrip().startswith("query")):
        raise bad_request("The request was not in the required format")
    contacts = list(sim.tenant.contacts.values())
    match = _DISPLAY_NAME_FILTER.search(query or "")
    if match:
        needle = match.group(1).casefold()
        contacts = [c for c in contacts if needle in str(contact_ref(sim, c["id"])["name"] or "").casefold()]
    job = str(uuid.uuid4())
    sim.tenant.exports[job] = {"polls_before_ready": 1, "csv": contacts_csv(contacts)}
    return 200, {"exportJobId": job}


def contacts_csv(contacts: list[Record]) -> str:
    rows = [
        {"id": c["id"], "uId": c["uId"], "contactTypeId": c["contactTypeId"], "username": c["username"] or ""}
        | flatten(c["details"])
        for c in contacts
    ]
    detail_columns = sorted({key for row in rows for key in row} - {"id", "uId", "contactTypeId", "username"})
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "uId", "contactTypeId", "username", *detail_columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def get_export(sim: AdditivSandbox, call: Call) -> Reply:
    """The first fetch finds the export still running (202, no body); later fetches get the CSV."""
    job = sim.tenant.exports.get(str(call.path["exportJobId"]))
    if job is None:
        raise not_found(f"Export job {call.path['exportJobId']} was not found")
    if job["polls_before_ready"] > 0:
        job["polls_before_ready"] -= 1
        return 202, None
    return 200, job["csv"]


def create_legal_entity(sim: AdditivSandbox, call: Call) -> Reply:
    for index, link in enumerate(call.params.get("contacts", [])):
        if link["contactId"] not in sim.tenant.contacts:
            raise not_found(f"contacts[{index}]: contact {link['contactId']} was not found")
    ident = sim.tenant.new_id("legal_entity")
    sim.tenant.legal_entities[ident] = {
        "id": ident,
        "contactGroupId": ident,
        "contacts": copy.deepcopy(call.params.get("contacts", [])),
        "details": copy.deepcopy(call.params["details"]),
    }
    return 200, {"id": ident, "details": copy.deepcopy(call.params["details"])}


def legal_entity(sim: AdditivSandbox, ident: int) -> Record:
    if ident not in sim.tenant.legal_entities:
        raise not_found(f"Legal entity {ident} was not found")
    return sim.tenant.legal_entities[ident]


def get_legal_entity_details(sim: AdditivSandbox, call: Call) -> Reply:
    entity = legal_entity(sim, call.path["legalEntityId"])
    return 200, {"contactGroupId": entity["contactGroupId"], "details": copy.deepcopy(entity["details"])}


def put_legal_entity_details(sim: AdditivSandbox, call: Call) -> Reply:
    legal_entity(sim, call.path["legalEntityId"])["details"] = copy.deepcopy(call.params["details"])
    return 204, None


# --- the route table --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    rule: str  # Flask rule; path parameters use int/uuid converters
    fields: tuple[Field, ...]
    handler: Callable[[AdditivSandbox, Call], Reply]
    source: str = "body"  # where the fields come from: "body", "query" or "none"


ENDPOINTS = (
    Endpoint("POST", "/v1.0/contacts", CREATE, create_contact),
    Endpoint("GET", "/v1.0/contacts/<int:contactId>/details", (), get_details, "none"),
    Endpoint("PATCH", "/v1.0/contacts/<int:contactId>/details", DETAILS_CHANGE, patch_details),
    Endpoint("PUT", "/v1.0/contacts/<int:contactId>/details", DETAILS_CHANGE, put_details),
    Endpoint("GET", "/v1.1/contacts/<int:contactId>/details/change-history/search", HISTORY_SEARCH, history_search),
    Endpoint("GET", "/v1.0/contacts/<int:contactId>/external-connections", (), list_connections, "none"),
    Endpoint("POST", "/v1.0/contacts/<int:contactId>/external-connections", CONNECTION, add_connection),
    Endpoint("GET", "/v1.0/contacts/external-connections", CONNECTION, find_by_connection, "query"),
    Endpoint("GET", "/v1.0/contacts/external-connections/<system>/<path:externalId>", (), find_by_connection, "none"),
    Endpoint("GET", "/v1.0/contacts/<int:contactId>/username", (), get_username, "none"),
    Endpoint(
        "PUT", "/v1.0/contacts/<int:contactId>/username", (Field("username", NON_EMPTY, required=True),), put_username
    ),
    Endpoint("POST", "/v1.0/contacts/change-requests/search", CR_SEARCH, search_change_requests),
    Endpoint("GET", "/v1.0/contacts/change-requests/statuses", (), change_request_statuses, "none"),
    Endpoint(
        "GET", "/v1.1/contacts/<int:contactId>/change-requests/<int:changeRequestId>", (), get_change_request, "none"
    ),
    Endpoint(
        "POST",
        "/v1.0/contacts/<int:contactId>/change-requests/<int:changeRequestId>/review",
        REVIEW,
        review_change_request,
    ),
    Endpoint("GET", "/v1.1/contacts/<int:contactId>/pending-change-request/check", (), pending_check, "none"),
    Endpoint("POST", "/v1.0/contacts/export", (), start_export, "raw"),
    Endpoint("GET", "/v1.0/contacts/export/<uuid:exportJobId>", (), get_export, "none"),
    Endpoint("POST", "/v1.1/legalentities", LEGAL_ENTITY_CREATE, create_legal_entity),
    Endpoint("GET", "/v1.0/legalentities/<int:legalEntityId>/details", (), get_legal_entity_details, "none"),
    Endpoint("PUT", "/v1.0/legalentities/<int:legalEntityId>/details", DETAILS_ONLY, put_legal_entity_details),
)


def checked(fields: tuple[Field, ...], data: Any) -> Record:
    if not isinstance(data, dict):
        raise bad_request("The request was not in the required format")
    return validate(data, fields)
