"""What one simulated DFS tenant holds, and the rules that change it.

Records are kept in the shapes the API answers with, plus a few private keys
(leading underscore) that views leave out. Everything here runs under the
simulator's lock.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.faults import FaultPlan
from sandbox.validation import utc_text

Record = dict[str, Any]

# The caller (the sandbox key acts as this member) and a colleague who raised the seeded change request.
API_MEMBER = {"uid": "6f0c1c3e-2b6a-4a8e-9d55-3f1f2a000001", "name": "Hookflow Integration"}
ADVISOR = {"uid": "6f0c1c3e-2b6a-4a8e-9d55-3f1f2a000002", "name": "Anna Advisor"}
CONTACT_TYPES = {1: "Private client", 2: "Prospect"}
ACCESS_POLICIES = ("FullAccess", "ReadOnly")
# The tenant's contact schema marks these paths "requires approval" for members.
APPROVAL_PATHS = frozenset({"personalInformation.lastName", "personalInformation.dateOfBirth"})
STATUSES = {1: ("Pending", "Ausstehend"), 2: ("Approved", "Genehmigt"), 3: ("Rejected", "Abgelehnt")}
PENDING, APPROVED, REJECTED = 1, 2, 3
FIRST_IDS = {"contact": 1001, "change_request": 101, "legal_entity": 2001, "change_set": 1}
FAULT_BODIES = {
    429: {"code": "TooManyRequests", "subCode": "NA", "message": "Too many requests", "correlationId": "fault"},
    500: {"code": "General", "subCode": "NA", "message": "Injected fault", "correlationId": "fault"},
}


class ApiError(Exception):
    """An answer in additiv's ApiError envelope; each gets its own correlationId."""

    def __init__(self, status: int, code: str, message: str, sub_code: str = "NA") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.sub_code = status, code, message, sub_code

    def body(self) -> Record:
        return {"code": self.code, "subCode": self.sub_code, "message": self.message, "correlationId": uuid.uuid4().hex}


def bad_request(message: str, sub_code: str = "NA") -> ApiError:
    return ApiError(400, "BadRequest", message, sub_code)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def flatten(details: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: the dotted paths change requests and history speak in."""
    if not isinstance(details, dict) or not details:
        return {prefix: details} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in details.items():
        flat.update(flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    return flat


def unflatten(flat: dict[str, Any]) -> Record:
    nested: Record = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def as_text(value: Any) -> str | None:
    """Change records carry values as strings, as the docs show them."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def change(path: str, before: dict[str, Any], after: dict[str, Any], approval: bool) -> Record:
    return {
        "path": path,
        "originalValue": as_text(before.get(path)),
        "targetValue": as_text(after.get(path)),
        "isApprovalRequired": approval,
    }


@dataclass
class Tenant:
    contacts: dict[int, Record] = field(default_factory=dict)
    change_requests: dict[int, Record] = field(default_factory=dict)
    history: list[Record] = field(default_factory=list)
    legal_entities: dict[int, Record] = field(default_factory=dict)
    exports: dict[str, Record] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=lambda: dict(FIRST_IDS))

    def new_id(self, kind: str) -> int:
        ident = self.next_ids[kind]
        self.next_ids[kind] = ident + 1
        return ident


class AdditivSandbox:
    """One simulated tenant. Handlers run under `lock` (the server is threaded)."""

    def __init__(self, api_key: str, clock: Callable[[], datetime]) -> None:
        self.api_key = api_key
        self.clock = clock
        self.lock = threading.Lock()
        self.calls: list[Record] = []
        self.faults = FaultPlan(FAULT_BODIES)
        self.tenant = seeded(self.now())

    def now(self) -> str:
        return utc_text(self.clock())

    def reset(self) -> None:
        with self.lock:
            self.tenant = seeded(self.now())
            self.calls.clear()
        self.faults.reset()

    # --- lookups ---

    def contact(self, contact_id: int) -> Record:
        if contact_id not in self.tenant.contacts:
            raise not_found(f"Contact {contact_id} was not found")
        return self.tenant.contacts[contact_id]

    def change_request(self, contact_id: int, request_id: int) -> Record:
        found = self.tenant.change_requests.get(request_id)
        if found is None or found["contactId"] != contact_id:
            raise not_found(f"Change request {request_id} of contact {contact_id} was not found")
        return found

    def check_username(self, username: str, owner: int | None = None) -> None:
        for contact in self.tenant.contacts.values():
            same = (contact["username"] or "").casefold() == username.casefold()
            if same and contact["id"] != owner:
                raise bad_request("The provided username is not unique.", "UsernameNotUnique")

    # --- contacts ---

    def create_contact(self, params: Record) -> Record:
        if params["contactTypeId"] not in CONTACT_TYPES:
            raise bad_request(f"Unknown contactTypeId {params['contactTypeId']}")
        if "username" in params:
            self.check_username(params["username"])
        ident = self.tenant.new_id("contact")
        self.tenant.contacts[ident] = {
            "id": ident,
            "uId": str(uuid.uuid4()),
            "contactTypeId": params["contactTypeId"],
            "username": params.get("username"),
            "details": copy.deepcopy(params["details"]),
            "connections": [],
            "createDate": self.now(),
        }
        return self.tenant.contacts[ident]

    def change_details(self, contact: Record, details: Record, comment: str | None, replace: bool) -> Record:
        """Apply a PATCH (merge) or PUT (replace); approval paths become a pending change request."""
        before = flatten(contact["details"])
        after = flatten(details) if replace else {**before, **flatten(details)}
        changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
        held = [path for path in changed if path in APPROVAL_PATHS]
        applied = {path: value for path, value in after.items() if path not in held}
        applied.update({path: before[path] for path in held if path in before})
        contact["details"] = unflatten(applied)
        direct = [change(path, before, after, False) for path in changed if path not in held]
        if direct:
            self.record_history(contact["id"], API_MEMBER, direct)
        if held:
            self.raise_change_request(contact, API_MEMBER, comment, {path: after.get(path) for path in held}, before)
        return {"isApprovalRequired": bool(held), "hasPendingEmail": False, "hasPendingMobile": False}

    def record_history(self, contact_id: int, initiator: Record, details: list[Record]) -> None:
        self.tenant.history.append(
            {
                "changeSetId": self.tenant.new_id("change_set"),
                "contactId": contact_id,
                "initiatorPerson": dict(initiator),
                "executionDate": self.now(),
                "details": details,
            }
        )

    def raise_change_request(
        self, contact: Record, initiator: Record, comment: str | None, targets: Record, before: Record
    ) -> Record:
        ident = self.tenant.new_id("change_request")
        self.tenant.change_requests[ident] = {
            "id": ident,
            "uId": str(uuid.uuid4()),
            "contactId": contact["id"],
            "statusId": PENDING,
            "createDate": self.now(),
            "initiatorMember": dict(initiator),
            "initiatorComment": comment,
            "reviewDate": None,
            "reviewMember": None,
            "reviewComment": None,
            "details": [change(path, before, targets, True) for path in targets],
            "_targets": targets,
        }
        return self.tenant.change_requests[ident]

    def review(self, request: Record, approved: bool, comment: str | None) -> None:
        if request["statusId"] != PENDING:
            raise bad_request("Only a pending change request can be reviewed")
        if request["initiatorMember"]["uid"] == API_MEMBER["uid"]:
            raise bad_request("The initiating member cannot review their own change")
        request.update(
            statusId=APPROVED if approved else REJECTED,
            reviewDate=self.now(),
            reviewMember=dict(API_MEMBER),
            reviewComment=comment,
        )
        if approved:
            contact = self.contact(request["contactId"])
            before = flatten(contact["details"])
            contact["details"] = unflatten({**before, **request["_targets"]})
            details = [change(path, before, request["_targets"], True) for path in request["_targets"]]
            self.record_history(contact["id"], request["initiatorMember"], details)


def seeded(now: str) -> Tenant:
    """Contact 1 (imported, system "Default") with a change request raised by a colleague, so that
    review can be exercised: the sandbox's own member may not review its own changes."""
    tenant = Tenant()
    details = {
        "personalInformation": {"firstName": "Shannon", "lastName": "Crawford", "displayName": "Shannon Crawford"},
        "communicationMethods": {"primaryEmail": "shannon.crawford@additiv.com"},
    }
    tenant.contacts[1] = {
        "id": 1,
        "uId": "06ae8f12-a4f1-4b08-8dba-bea9629029f0",
        "contactTypeId": 1,
        "username": "shannon.crawford@additiv.com",
        "details": details,
        "connections": [{"externalId": "IMP-0001", "system": "Default"}],
        "createDate": now,
    }
    before = flatten(details)
    targets = {"personalInformation.lastName": "Crawford-Smith"}
    tenant.change_requests[1] = {
        "id": 1,
        "uId": "5b3f6f9e-2c4d-4f59-8a8e-000000000001",
        "contactId": 1,
        "statusId": PENDING,
        "createDate": now,
        "initiatorMember": dict(ADVISOR),
        "initiatorComment": "Married name",
        "reviewDate": None,
        "reviewMember": None,
        "reviewComment": None,
        "details": [change(path, before, targets, True) for path in targets],
        "_targets": targets,
    }
    return tenant
