"""Stateful simulator of the additiv DFS client API (contacts, change requests, legal entities).

Follows shared/api-docs/additiv-client-contacts.txt and the routes in
shared/reference/additiv-api.md (confirmed ones verbatim, inferred ones as the
connector's defaults), so the connector meets the rules it must cope with:

* `Authorization: Bearer <key>`; anything else is 401 in the ApiError envelope;
* every error is `{code, subCode, message, correlationId}` (a fresh correlationId each);
  validation failures are 400 BadRequest naming the field, unknown records 404 NotFound;
* usernames are unique (case-insensitive): 400 with subCode UsernameNotUnique;
* externalIds are unique across all contacts whatever the system: 400;
* a change request can be reviewed only while pending, and never by its initiator;
* `Accept-Language` (or `?language=`) localises change-request status names (en, de);
* exports run asynchronously: the first fetch of a job answers 202 with no body, later
  fetches the CSV (text/csv); the start takes no body, a JSON string or text/plain.

Decisions where the docs are silent:

* The sandbox key acts as a *member* ("Hookflow Integration"), not an app, so the approval
  flow can be exercised: a PATCH/PUT touching personalInformation.lastName or
  .dateOfBirth leaves those paths unchanged and raises a pending change request
  (`isApprovalRequired: true`); other paths apply at once and enter the change history.
  A real app token is not subject to approval.
* Seed: contact 1 (Shannon Crawford, external connection Default/IMP-0001) with pending
  change request 1 raised by a colleague (Anna Advisor), so it can be reviewed. Contact
  types 1 "Private client" and 2 "Prospect"; access-policy keys FullAccess and ReadOnly.
  New contacts count from 1001, change requests from 101, legal entities from 2001.
* Change-history search is a GET with a JSON body, as documented.
* The look-up by external connection answers with `system` and `externalId` as query
  parameters (the connector's default) and as path parameters,
  `/v1.0/contacts/external-connections/{system}/{externalId}` (what ADDITIV_ROUTES can
  switch to): the docs mark both required without saying which they are.
* Successful writes without a documented answer (external connection add, username put,
  review, legal-entity details put) answer 204.

Operator routes under `/__sandbox__/` need no key: `GET state`, `GET|DELETE calls`,
`POST reset`, plus `faults` and `latency` from `sandbox.faults`.
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.additiv.endpoints import ENDPOINTS, Call, Endpoint, checked
from sandbox.additiv.state import AdditivSandbox, ApiError, Record, Tenant
from sandbox.control import register_control
from sandbox.validation import InputError, from_query

EXTENSION_KEY = "additiv_sandbox"


def create_app(api_key: str = "sandbox-key", clock: Callable[[], datetime] | None = None) -> Flask:
    """A fresh simulated tenant with the seed described above.

    Args:
        api_key: the only bearer token accepted.
        clock: source of createDate/executionDate times (aware UTC); the wall clock by default.
    """
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    sim = AdditivSandbox(api_key, clock or (lambda: datetime.now(timezone.utc)))
    app.extensions[EXTENSION_KEY] = sim
    for ep in ENDPOINTS:
        app.add_url_rule(ep.rule, endpoint=f"{ep.method} {ep.rule}", view_func=_view(sim, ep), methods=[ep.method])
    register_control(app, sim, state=lambda: _state(sim.tenant), record_call=lambda response: _log_call(sim, response))
    _register_error_handlers(app)
    return app


def _view(sim: AdditivSandbox, ep: Endpoint) -> Callable[..., Response]:
    def view(**path: Any) -> Response:
        supplied = request.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {sim.api_key}".encode()):
            raise ApiError(401, "Unauthorized", "Missing or invalid bearer token")
        call = Call(path, _params(ep), _language(), _raw_body() if ep.source == "raw" else None)
        with sim.lock:  # render while still inside the lock: bodies reference live records
            status, body = ep.handler(sim, call)
            if body is None:
                return Response(status=status)
            if isinstance(body, str):
                return Response(body, status=status, content_type="text/csv; charset=utf-8")
            response = jsonify(body)
        response.status_code = status
        return response

    return view


def _params(ep: Endpoint) -> Record:
    if ep.source == "query":
        return checked(ep.fields, from_query(request.args, ep.fields))
    if ep.source == "body":
        return checked(ep.fields, request.get_json(silent=True))
    return {}


def _raw_body() -> Any:
    """An export's body: nothing, a JSON string, or text/plain."""
    if not request.get_data():
        return None
    if request.is_json:
        return request.get_json(silent=True)
    return request.get_data(as_text=True)


def _language() -> str:
    wanted = request.args.get("language") or request.headers.get("Accept-Language", "")
    return wanted.split(",")[0].split("-")[0].strip().lower() or "en"


def _state(tenant: Tenant) -> Record:
    return {
        "contacts": copy.deepcopy(list(tenant.contacts.values())),
        "change_requests": [
            {k: v for k, v in r.items() if not k.startswith("_")} for r in tenant.change_requests.values()
        ],
        "history": copy.deepcopy(tenant.history),
        "legal_entities": copy.deepcopy(list(tenant.legal_entities.values())),
        "exports": sorted(tenant.exports),
    }


def _log_call(sim: AdditivSandbox, response: Response) -> None:
    body = request.get_json(silent=True) if request.is_json else (request.get_data(as_text=True) or None)
    entry = {
        "method": request.method,
        "path": request.path,
        "query": request.args.to_dict(flat=True),
        "json": body,
        "status": response.status_code,
    }
    with sim.lock:
        sim.calls.append(entry)


def _register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(InputError, lambda exc: _api_error(ApiError(400, "BadRequest", exc.message)))
    app.register_error_handler(HTTPException, _http_error)


def _api_error(exc: ApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(status, "General")
    message = f"No route {request.method} {request.path}" if status in (404, 405) else (exc.description or exc.name)
    return _api_error(ApiError(status, code, message))
