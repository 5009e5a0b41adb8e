"""The simulator's Flask app: the endpoint table, auth, request decoding, hooks and control routes."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from sandbox.bigchange import contacts as c
from sandbox.bigchange import contracts as k
from sandbox.bigchange import job_groups as jg
from sandbox.bigchange import jobs as j
from sandbox.bigchange import stock as s
from sandbox.bigchange.state import ApiError, BigChangeSandbox, Record, Reply, gateway_error
from sandbox.control import register_control
from sandbox.validation import Field, InputError, from_query, validate

EXTENSION_KEY = "bigchange_sandbox"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    fields: tuple[Field, ...]
    handler: Callable[[BigChangeSandbox, Record], Reply]


ENDPOINTS = (
    Endpoint("GET", "/contacts/contact", k.CONTACT_GET, c.contacts_get),
    Endpoint("POST", "/contacts/create", k.CONTACT_CREATE, c.contacts_create),
    Endpoint("POST", "/contacts/edit", k.CONTACT_EDIT, c.contacts_edit),
    Endpoint("POST", "/contacts/list", k.CONTACT_LIST, c.contacts_list),
    Endpoint("POST", "/contacts/on_stop", k.CONTACT_ON_STOP, c.contacts_on_stop),
    Endpoint("POST", "/contacts/unstop", k.CONTACT_UNSTOP, c.contacts_unstop),
    Endpoint("POST", "/contacts/site_access_hours_list", k.ACCESS_HOURS_LIST, c.access_hours_list),
    Endpoint("POST", "/contacts/site_access_hours_update", k.ACCESS_HOURS_UPDATE, c.access_hours_update),
    Endpoint("GET", "/contact_groups/contact_group", k.CONTACT_GROUP_GET, c.contact_groups_get),
    Endpoint("POST", "/contact_groups/create", k.CONTACT_GROUP_CREATE, c.contact_groups_create),
    Endpoint("POST", "/contact_groups/list", k.CONTACT_GROUP_LIST, c.contact_groups_list),
    Endpoint("POST", "/contact_groups/update", k.CONTACT_GROUP_UPDATE, c.contact_groups_update),
    Endpoint("GET", "/jobs/job", k.JOB_GET, j.jobs_get),
    Endpoint("POST", "/jobs/create", k.JOB_CREATE, j.jobs_create),
    Endpoint("POST", "/jobs/edit", k.JOB_EDIT, j.jobs_edit),
    Endpoint("POST", "/jobs/list", k.JOB_LIST, j.jobs_list),
    Endpoint("POST", "/jobs/cancel", k.JOB_CANCEL, j.jobs_cancel),
    Endpoint("POST", "/jobs/start", k.JOB_START, j.jobs_start),
    Endpoint("POST", "/jobs/result", k.JOB_RESULT, j.jobs_result),
    Endpoint("POST", "/jobs/scheduling", k.JOB_SCHEDULING, j.jobs_scheduling),
    Endpoint("POST", "/jobs/status/history", k.JOB_STATUS_HISTORY, j.jobs_status_history),
    Endpoint("POST", "/jobs/constraints/create", k.CONSTRAINT_CREATE, j.constraints_create),
    Endpoint("POST", "/jobs/constraints/list", k.CONSTRAINT_LIST, j.constraints_list),
    Endpoint("POST", "/jobs/constraints/delete", k.CONSTRAINT_DELETE, j.constraints_delete),
    Endpoint("POST", "/jobs/stock/create", k.STOCK_CREATE, s.stock_create),
    Endpoint("POST", "/jobs/stock/delete", k.STOCK_LINE, s.stock_delete),
    Endpoint("POST", "/jobs/stock/get", k.STOCK_LINE, s.stock_get),
    Endpoint("POST", "/jobs/stock/list", k.STOCK_LIST, s.stock_list),
    Endpoint("POST", "/job_groups/create", k.JOB_GROUP_CREATE, jg.job_groups_create),
    Endpoint("POST", "/job_groups/edit", k.JOB_GROUP_EDIT, jg.job_groups_edit),
    Endpoint("POST", "/job_groups/job_group", k.JOB_GROUP_REF, jg.job_groups_get),
    Endpoint("POST", "/job_groups/list", k.JOB_GROUP_LIST, jg.job_groups_list),
    Endpoint("POST", "/job_groups/status_history", k.JOB_GROUP_HISTORY, jg.job_groups_history),
    Endpoint("POST", "/job_groups/job_group_results_as_complete", k.JOB_GROUP_REF, jg.job_groups_complete),
    Endpoint(
        "POST",
        "/job_groups/job_group_results_as_financially_complete",
        k.JOB_GROUP_REF,
        jg.job_groups_financially_complete,
    ),
    Endpoint("POST", "/job_types/job_types", k.JOB_TYPE_GET, jg.job_types_get),
    Endpoint("POST", "/job_types/list", k.JOB_TYPE_LIST, jg.job_types_list),
)


def create_app(api_key: str = "sandbox-key", clock: Callable[[], datetime] | None = None) -> Flask:
    """Build a fresh simulated tenant seeded with the job types, resources, vehicles, stock items
    and contact group the shipped workflows use.

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
    register_control(app, sim, sim.state, sim.record_call)
    _register_error_handlers(app)
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


def _register_error_handlers(app: Flask) -> None:
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
