"""Stateful simulator of the BigChange "vh3 connect" REST proxy.

Follows shared/api-docs/bigchange-vh3-contacts.txt, bigchange-vh3-jobs.txt and
shared/reference/bigchange-api.md sections 2-3: same paths and methods, `X-API-Key`
auth, typed validation, and both error shapes the proxy is known to mix, so the
connector has to cope with each:

* gateway errors (auth, input): `{"code": "ERROR_CODE_INPUT_ERROR", "message": ..., "payload": {"param": ...}}`
* BigChange errors, RFC 7807: 404 for an unknown referenced record, 422 for business rules.

List envelopes vary on purpose too: `/jobs/list` wraps its page in `{"result": {...}}`,
the other lists answer `{"items": [...], "pageItemCount": n}` bare.

Decisions where the docs are silent (the reference marks these UNCONFIRMED):
* `/jobs/constraints/create` requires `type` (the docs example sends only `jobId`,
  which the reference expects to fail for real), `constraintAt` for the date types
  and `entityId` for the entity types.
* `/contacts/unstop` clears both stop flavours; `contactAndChildren` reaches direct children.
* `null` counts as an absent field, so `/contacts/edit` cannot clear a field.
* Routing precedes auth: an unknown path is 404 with or without a key; a wrong method is 405.
* Job groups, resource/vehicle groups, skills and attributes are not modelled; their ids
  are accepted unchecked. Resources and vehicles are checked against the seed.

Operator routes under `/__sandbox__/` need no key: `GET state`, `GET|DELETE calls`,
`POST reset`, plus `faults` and `latency` from `sandbox.faults`.

To add an endpoint: a tuple of `Field`s, a handler `(sim, params) -> (status, body)`
and a row in `ENDPOINTS`. This module is already past the ~400-line aim, so the next
endpoints should come with a split into a package (contracts, handlers, app).
"""

from __future__ import annotations

import copy
import hmac
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from sandbox.faults import FaultPlan, inject_after, inject_before, register_control_routes
from sandbox.validation import (
    Field,
    InputError,
    Integer,
    ListOf,
    Number,
    Object,
    OneOf,
    OneOrMany,
    Scalar,
    Text,
    UtcDateTime,
    Uuid,
    exceeds_months,
    from_query,
    page_of,
    parse_utc_text,
    utc_text,
    validate,
)

EXTENSION_KEY = "bigchange_sandbox"
CONTROL_PREFIX = "/__sandbox__"

JOB_TYPES = {42: "Plumbing repair", 7: "Survey"}
RESOURCES = {100: "Alex Engineer", 101: "Sam Fitter"}
VEHICLES = {50: "Vehicle 50", 51: "Vehicle 51"}
CONTACT_GROUPS = {1: "Customers"}
# Distinct ranges make id-chaining bugs visible: a contact id where a job id belongs 404s.
FIRST_IDS = {"contact": 1001, "job": 5001, "constraint": 9001}

CONTACT_STATUSES = ("normal", "contactOnStop", "creditLimitOnStop")
APPLIES_TO = ("contactOnly", "contactAndChildren")
DIRECTIONS = ("ascending", "descending")
JOB_STATUSES = (
    "new",
    "read",
    "accepted",
    "refused",
    "scheduled",
    "unscheduled",
    "rescheduled",
    "onTheWay",
    "started",
    "lateStart",
    "lateFinish",
    "completedOk",
    "completedWithIssues",
    "cancelled",
    "suspended",
    "sent",
)
DATE_CONSTRAINTS = ("jobMustStartAfter", "jobMustStartBefore", "jobMustCompleteBefore")
ENTITY_CONSTRAINTS = (
    "jobResource",
    "jobResourceGroup",
    "jobVehicle",
    "jobVehicleGroup",
    "jobRequiresResourceSkill",
    "jobRequiresVehicleAttribute",
)
CONSTRAINT_TYPES = (
    *DATE_CONSTRAINTS,
    "jobMustStartInAvailableHours",
    "jobMustCompleteInAvailableHours",
    *ENTITY_CONSTRAINTS,
)
MAX_WINDOW_MONTHS = 12

T = TypeVar("T")
Record = dict[str, Any]
Reply = tuple[int, Any]


class ApiError(Exception):
    """An error answer, already in the shape the proxy would send."""

    def __init__(self, status: int, body: Record, content_type: str = "application/json") -> None:
        super().__init__(body)
        self.status, self.body, self.content_type = status, body, content_type

    def response(self) -> Response:
        response = jsonify(self.body)
        response.status_code = self.status
        response.content_type = self.content_type
        return response


def gateway_error(status: int, code: str, message: str, param: str | None = None) -> ApiError:
    body: Record = {"code": code, "message": message}
    if param is not None:
        body["payload"] = {"param": param}
    return ApiError(status, body)


def problem(status: int, detail: str) -> ApiError:
    """An RFC 7807 problem, as BigChange itself answers."""
    body = {
        "type": f"https://httpstatuses.io/{status}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return ApiError(status, body, "application/problem+json")


@dataclass
class Records:
    """The tenant's records, stored in wire shape so state and responses cannot drift."""

    contacts: dict[int, Record] = field(default_factory=dict)
    jobs: dict[int, Record] = field(default_factory=dict)
    constraints: dict[int, Record] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=lambda: dict(FIRST_IDS))

    def new_id(self, kind: str) -> int:
        ident = self.next_ids[kind]
        self.next_ids[kind] = ident + 1
        return ident


class BigChangeSandbox:
    """Everything one simulated tenant holds. Handlers run under `lock` (threaded server)."""

    def __init__(self, api_key: str, clock: Callable[[], datetime]) -> None:
        self.api_key = api_key
        self.clock = clock
        self.lock = threading.Lock()
        self.records = Records()
        self.calls: list[Record] = []
        self.faults = FaultPlan()

    def now_text(self) -> str:
        return utc_text(self.clock())

    def reset(self) -> None:
        with self.lock:
            self.records = Records()
            self.calls.clear()
        self.faults.reset()

    def job_view(self, job: Record) -> Record:
        constraints = [c for c in self.records.constraints.values() if c["jobId"] == job["id"]]
        return copy.deepcopy(job | {"constraints": constraints})

    def state(self) -> Record:
        return {
            "contacts": copy.deepcopy(list(self.records.contacts.values())),
            "jobs": [self.job_view(job) for job in self.records.jobs.values()],
            "constraints": copy.deepcopy(list(self.records.constraints.values())),
        }

    def record_call(self, response: Response) -> None:
        entry = {
            "method": request.method,
            "path": request.path,
            "query": _redact(request.args.to_dict(flat=True), self.api_key),
            "json": _redact(request.get_json(silent=True), self.api_key),
            "status": response.status_code,
        }
        with self.lock:
            self.calls.append(entry)


def _redact(value: Any, secret: str) -> Any:
    """Hide the key even when a client wrongly sends it in the query or body."""
    if isinstance(value, dict):
        return {k: _redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secret) for v in value]
    return "***" if value == secret else value


# --- request contracts -------------------------------------------------------------

ID = Integer(minimum=1)
PAGING = (
    Field("pageNumber", Integer(minimum=1), default=1),
    Field("pageSize", Integer(minimum=1, maximum=1000), default=100),
)
DIRECTION = Field("direction", OneOf(DIRECTIONS), default="ascending")
NAME = Text(max_length=100, non_empty=True)
LOCATION = Object(
    (Field("latitude", Number(-90, 90), required=True), Field("longitude", Number(-180, 180), required=True))
)
CONTACT_DETAILS = (
    Field("reference", Text()),
    Field("groupId", ID),
    Field("parentId", ID),
    Field("location", LOCATION),
    Field("street", Text()),
    Field("town", Text()),
    Field("postalCode", Text()),
    Field("country", Text()),
    Field("extraInformation", Text()),
)
CONTACT_ID = Field("contactId", ID, required=True)
JOB_ID = Field("jobId", ID, required=True)
APPLIES = Field("appliesTo", OneOf(APPLIES_TO), default="contactOnly")

CONTACT_GET = (CONTACT_ID,)
CONTACT_CREATE = (Field("name", NAME, required=True), *CONTACT_DETAILS)
CONTACT_EDIT = (CONTACT_ID, Field("name", NAME), *CONTACT_DETAILS)
CONTACT_LIST = (
    *PAGING,
    Field("createdAtFrom", UtcDateTime()),
    Field("createdAtTo", UtcDateTime()),
    Field("sortBy", OneOf(("createdAt", "name")), default="createdAt"),
    DIRECTION,
    Field("name", Text()),
    Field("reference", ListOf(Text(), 50)),
    Field("id", ListOf(ID, 50)),
    Field("status", OneOf(CONTACT_STATUSES)),
)
CONTACT_ON_STOP = (
    CONTACT_ID,
    Field("status", OneOf(CONTACT_STATUSES[1:]), required=True),
    Field("stopReason", Text()),
    APPLIES,
)
CONTACT_UNSTOP = (CONTACT_ID, APPLIES)
JOB_GET = (Field("jobId", ID, required=True, aliases=("id",)),)
JOB_DETAILS = (
    Field("description", Text()),
    Field("reference", Text()),
    Field("plannedDuration", Integer(minimum=0)),
    Field("personId", Uuid()),
    Field("orderNumber", Text()),
    Field("jobGroupId", ID),
    Field("customFields", ListOf(Object((Field("definitionId", ID, required=True), Field("value", Scalar()))))),
)
JOB_CREATE = (Field("typeId", ID, required=True), CONTACT_ID, *JOB_DETAILS)
JOB_LIST = (
    *PAGING,
    Field("createdAtFrom", UtcDateTime(), required=True),
    Field("createdAtTo", UtcDateTime(), required=True),
    DIRECTION,
    Field("contactId", OneOrMany(ID)),
    Field("resourceId", OneOrMany(ID)),
    Field("status", OneOrMany(OneOf(JOB_STATUSES))),
    Field("reference", ListOf(Text(), 50)),
)
JOB_SCHEDULING = (JOB_ID, Field("resourceId", ID), Field("vehicleId", ID), Field("plannedStartAt", UtcDateTime()))
CONSTRAINT_CREATE = (
    JOB_ID,
    Field("type", OneOf(CONSTRAINT_TYPES), required=True),
    Field("constraintAt", UtcDateTime()),
    Field("entityId", ID),
)
CONSTRAINT_LIST = (JOB_ID, *PAGING)
CONSTRAINT_DELETE = (Field("jobId", ID), Field("constraintId", ID, required=True))


# --- lookups and shared rules --------------------------------------------------------


def find(table: Mapping[int, T], kind: str, ident: int) -> T:
    if ident not in table:
        raise problem(404, f"{kind} {ident} was not found")
    return table[ident]


def checked_window(p: Record) -> tuple[datetime | None, datetime | None]:
    start, end = p.get("createdAtFrom"), p.get("createdAtTo")
    if start is not None and end is not None:
        if end < start:
            raise InputError("createdAtTo", "Invalid param: createdAtTo must not be before createdAtFrom")
        if exceeds_months(start, end, MAX_WINDOW_MONTHS):
            raise problem(
                422, f"The date range between createdAtFrom and createdAtTo cannot exceed {MAX_WINDOW_MONTHS} months"
            )
    return start, end


def created_within(record: Record, start: datetime | None, end: datetime | None) -> bool:
    created = parse_utc_text(record["createdAt"])
    return (start is None or created >= start) and (end is None or created <= end)


def page(items: list[Record], p: Record) -> Record:
    chosen = page_of(items, p["pageNumber"], p["pageSize"])
    return {"items": chosen, "pageItemCount": len(chosen)}


def check_contact_refs(sim: BigChangeSandbox, p: Record) -> None:
    if "groupId" in p:
        find(CONTACT_GROUPS, "Contact group", p["groupId"])
    if "parentId" in p:
        find(sim.records.contacts, "Contact", p["parentId"])


def stop_targets(sim: BigChangeSandbox, contact: Record, applies_to: str) -> list[Record]:
    children = [c for c in sim.records.contacts.values() if c["parentId"] == contact["id"]]
    return [contact, *children] if applies_to == "contactAndChildren" else [contact]


# --- handlers: contacts ----------------------------------------------------------------


def contacts_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, copy.deepcopy(find(sim.records.contacts, "Contact", p["contactId"]))


def contacts_create(sim: BigChangeSandbox, p: Record) -> Reply:
    check_contact_refs(sim, p)
    ident = sim.records.new_id("contact")
    sim.records.contacts[ident] = {
        "id": ident,
        "name": p["name"],
        "status": "normal",
        "stopReason": None,
        "appliesTo": None,
        **{spec.name: p.get(spec.name) for spec in CONTACT_DETAILS},
        "createdAt": sim.now_text(),
    }
    return 201, {"id": ident}


def contacts_edit(sim: BigChangeSandbox, p: Record) -> Reply:
    contact = find(sim.records.contacts, "Contact", p["contactId"])
    check_contact_refs(sim, p)
    if p.get("parentId") == contact["id"]:
        raise problem(422, f"Contact {contact['id']} cannot be its own parent")
    contact.update({k: v for k, v in p.items() if k != "contactId"})
    return 204, None


def contacts_list(sim: BigChangeSandbox, p: Record) -> Reply:
    start, end = checked_window(p)
    prefix = p.get("name", "").casefold()
    items = [
        c
        for c in sim.records.contacts.values()
        if created_within(c, start, end)
        and c["name"].casefold().startswith(prefix)
        and ("reference" not in p or c["reference"] in p["reference"])
        and ("id" not in p or c["id"] in p["id"])
        and ("status" not in p or c["status"] == p["status"])
    ]
    by_name = p["sortBy"] == "name"
    items.sort(
        key=lambda c: (c["name"].casefold() if by_name else c["createdAt"], c["id"]),
        reverse=p["direction"] == "descending",
    )
    return 200, copy.deepcopy(page(items, p))


def contacts_on_stop(sim: BigChangeSandbox, p: Record) -> Reply:
    contact = find(sim.records.contacts, "Contact", p["contactId"])
    for target in stop_targets(sim, contact, p["appliesTo"]):
        target.update(status=p["status"], stopReason=p.get("stopReason"), appliesTo=p["appliesTo"])
    return 204, None


def contacts_unstop(sim: BigChangeSandbox, p: Record) -> Reply:
    contact = find(sim.records.contacts, "Contact", p["contactId"])
    for target in stop_targets(sim, contact, p["appliesTo"]):
        target.update(status="normal", stopReason=None, appliesTo=None)
    return 204, None


# --- handlers: jobs ----------------------------------------------------------------


def jobs_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, sim.job_view(find(sim.records.jobs, "Job", p["jobId"]))


def jobs_create(sim: BigChangeSandbox, p: Record) -> Reply:
    find(JOB_TYPES, "Job type", p["typeId"])
    contact = find(sim.records.contacts, "Contact", p["contactId"])
    if contact["status"] != "normal":
        # BigChange blocks job creation for on-stop contacts, whichever flavour.
        raise problem(422, f"Contact {contact['id']} is on stop ({contact['status']}); jobs cannot be created for it")
    ident = sim.records.new_id("job")
    sim.records.jobs[ident] = {
        "id": ident,
        "typeId": p["typeId"],
        "contactId": contact["id"],
        "status": "new",
        **{spec.name: p.get(spec.name) for spec in JOB_DETAILS},
        "resourceId": None,
        "vehicleId": None,
        "plannedStartAt": None,
        "createdAt": sim.now_text(),
    }
    return 201, {"id": ident}


def jobs_list(sim: BigChangeSandbox, p: Record) -> Reply:
    start, end = checked_window(p)
    items = [
        sim.job_view(job)
        for job in sim.records.jobs.values()
        if created_within(job, start, end)
        and ("contactId" not in p or job["contactId"] in p["contactId"])
        and ("resourceId" not in p or job["resourceId"] in p["resourceId"])
        and ("status" not in p or job["status"] in p["status"])
        and ("reference" not in p or job["reference"] in p["reference"])
    ]
    items.sort(key=lambda j: (j["createdAt"], j["id"]), reverse=p["direction"] == "descending")
    return 200, {"result": page(items, p)}


def jobs_scheduling(sim: BigChangeSandbox, p: Record) -> Reply:
    job = find(sim.records.jobs, "Job", p["jobId"])
    if "resourceId" in p:
        find(RESOURCES, "Resource", p["resourceId"])
    if "vehicleId" in p:
        find(VEHICLES, "Vehicle", p["vehicleId"])
    job["status"] = "scheduled"
    job["resourceId"] = p.get("resourceId", job["resourceId"])
    job["vehicleId"] = p.get("vehicleId", job["vehicleId"])
    if "plannedStartAt" in p:
        job["plannedStartAt"] = utc_text(p["plannedStartAt"])
    return 204, None


# --- handlers: job constraints -------------------------------------------------------------


def constraints_create(sim: BigChangeSandbox, p: Record) -> Reply:
    kind = p["type"]
    for needed, kinds in (("constraintAt", DATE_CONSTRAINTS), ("entityId", ENTITY_CONSTRAINTS)):
        if kind in kinds and needed not in p:
            raise InputError(needed, f"Missing param: {needed} (required when type is {kind})")
    find(sim.records.jobs, "Job", p["jobId"])
    if kind == "jobResource":
        find(RESOURCES, "Resource", p["entityId"])
    if kind == "jobVehicle":
        find(VEHICLES, "Vehicle", p["entityId"])
    ident = sim.records.new_id("constraint")
    at = p.get("constraintAt")
    sim.records.constraints[ident] = {
        "id": ident,
        "jobId": p["jobId"],
        "type": kind,
        "constraintAt": at and utc_text(at),
        "entityId": p.get("entityId"),
        "createdAt": sim.now_text(),
    }
    return 201, {"id": ident}


def constraints_list(sim: BigChangeSandbox, p: Record) -> Reply:
    find(sim.records.jobs, "Job", p["jobId"])
    items = [c for c in sim.records.constraints.values() if c["jobId"] == p["jobId"]]
    return 200, copy.deepcopy(page(items, p))


def constraints_delete(sim: BigChangeSandbox, p: Record) -> Reply:
    constraint = find(sim.records.constraints, "Constraint", p["constraintId"])
    if "jobId" in p:
        find(sim.records.jobs, "Job", p["jobId"])
        if constraint["jobId"] != p["jobId"]:
            raise problem(404, f"Constraint {constraint['id']} was not found on job {p['jobId']}")
    del sim.records.constraints[constraint["id"]]
    return 204, None


# --- the endpoint table ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    fields: tuple[Field, ...]
    handler: Callable[[BigChangeSandbox, Record], Reply]


ENDPOINTS = (
    Endpoint("GET", "/contacts/contact", CONTACT_GET, contacts_get),
    Endpoint("POST", "/contacts/create", CONTACT_CREATE, contacts_create),
    Endpoint("POST", "/contacts/edit", CONTACT_EDIT, contacts_edit),
    Endpoint("POST", "/contacts/list", CONTACT_LIST, contacts_list),
    Endpoint("POST", "/contacts/on_stop", CONTACT_ON_STOP, contacts_on_stop),
    Endpoint("POST", "/contacts/unstop", CONTACT_UNSTOP, contacts_unstop),
    Endpoint("GET", "/jobs/job", JOB_GET, jobs_get),
    Endpoint("POST", "/jobs/create", JOB_CREATE, jobs_create),
    Endpoint("POST", "/jobs/list", JOB_LIST, jobs_list),
    Endpoint("POST", "/jobs/scheduling", JOB_SCHEDULING, jobs_scheduling),
    Endpoint("POST", "/jobs/constraints/create", CONSTRAINT_CREATE, constraints_create),
    Endpoint("POST", "/jobs/constraints/list", CONSTRAINT_LIST, constraints_list),
    Endpoint("POST", "/jobs/constraints/delete", CONSTRAINT_DELETE, constraints_delete),
)


# --- the Flask app ----------------------------------------------------------------


def create_app(api_key: str = "sandbox-key", clock: Callable[[], datetime] | None = None) -> Flask:
    """Build a fresh simulated tenant seeded with the job types, resources and vehicles
    the shipped workflows use.

    Args:
        api_key: the only `X-API-Key` value accepted.
        clock: source of `createdAt` times (aware UTC); the wall clock by default.
    """
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # keep records in the field order the API documents
    sim = BigChangeSandbox(api_key, clock or (lambda: datetime.now(timezone.utc)))
    app.extensions[EXTENSION_KEY] = sim
    for ep in ENDPOINTS:
        app.add_url_rule(ep.path, endpoint=ep.path, view_func=_api_view(sim, ep), methods=[ep.method])
    app.register_blueprint(_control_blueprint(sim))
    register_control_routes(app, sim.faults, CONTROL_PREFIX)
    _register_hooks(app, sim)
    return app


def _api_view(sim: BigChangeSandbox, ep: Endpoint) -> Callable[[], Response]:
    def view() -> Response:
        supplied = request.headers.get("X-API-Key", "")
        if not hmac.compare_digest(supplied.encode(), sim.api_key.encode()):
            raise gateway_error(401, "ERROR_CODE_ACCESS_DENIED", "Invalid or missing API key")
        raw = from_query(request.args, ep.fields) if ep.method == "GET" else _json_object()
        params = validate(raw, ep.fields)
        with sim.lock:  # serialise while still inside the lock: bodies reference live records
            status, body = ep.handler(sim, params)
            if body is None:
                return Response(status=status)
            response = jsonify(body)
        response.status_code = status
        return response

    return view


def _json_object() -> Record:
    if not request.is_json:
        raise gateway_error(400, "ERROR_CODE_INPUT_ERROR", "Content-Type must be application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise gateway_error(400, "ERROR_CODE_INPUT_ERROR", "Request body must be a JSON object")
    return body


def _control_blueprint(sim: BigChangeSandbox) -> Blueprint:
    bp = Blueprint("bigchange_control", __name__, url_prefix=CONTROL_PREFIX)

    @bp.get("/state")
    def state() -> Response:
        with sim.lock:
            return jsonify(sim.state())

    @bp.get("/calls")
    def calls() -> Response:
        with sim.lock:
            return jsonify(sim.calls)

    @bp.delete("/calls")
    def clear_calls() -> tuple[str, int]:
        with sim.lock:
            sim.calls.clear()
        return "", 204

    @bp.post("/reset")
    def reset() -> tuple[str, int]:
        sim.reset()
        return "", 204

    return bp


def _register_hooks(app: Flask, sim: BigChangeSandbox) -> None:
    def is_api() -> bool:
        return not request.path.startswith(CONTROL_PREFIX)

    @app.before_request
    def faults_first() -> Response | None:
        return inject_before(sim.faults) if is_api() else None

    @app.after_request
    def faults_then_log(response: Response) -> Response:
        # One hook, fixed order: the call log must record the status actually sent.
        if is_api():
            response = inject_after(sim.faults, response)
            sim.record_call(response)
        return response

    app.register_error_handler(ApiError, ApiError.response)
    app.register_error_handler(
        InputError,
        lambda exc: gateway_error(400, "ERROR_CODE_INPUT_ERROR", exc.message, exc.param).response(),
    )
    app.register_error_handler(HTTPException, _http_error)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 404:
        message = f"Unable to locate request: {request.method} {request.path}"
    else:
        message = exc.description or HTTPStatus(status).phrase
    response = gateway_error(status, f"ERROR_CODE_{HTTPStatus(status).name}", message).response()
    if isinstance(exc, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(exc.valid_methods or [])
    return response
