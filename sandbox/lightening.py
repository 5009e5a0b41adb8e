"""Stateful simulator of the Lightening contacts API.

Follows shared/api-docs/lightening-contacts.txt: the same routes (`/contact`, POST for
update, GET `/contact/{id}/delete`), the documented limits, and the envelopes exactly as
printed, quirks included, so the connector has to cope with each:

* every answer is HTTP 200, success or not; the outcome is in the body;
* validation failures are `{"errors": {field: message}, "result": false}`, every failing
  field at once; an empty request is `{"error": "Nothing sent for request.", "result": false}`;
* a successful delete says `"result": false` with "Entity has been successfully deleted.";
* ids are strings in answers ("id": "101").

Decisions where the docs are silent (shared/reference/lightening-api.md marks them UNCONFIRMED):

* Auth: `Authorization` must carry the key, bare or after a scheme word (`Bearer <key>`),
  since the real scheme is unknown; without it the answer is 401 `{"error": ..., "result": false}`.
* `customer_id` on list is accepted as `customer_id[]=1&customer_id[]=2`, repeated
  `customer_id=1&customer_id=2`, or `customer_id=1,2`; the account owns customers 1 and 2,
  any other id is refused as not associated with the account.
* Create accepts an optional `customer_id` (a known customer); a contact created without
  one belongs to no customer and so appears in no list.
* Get answers `{"entity": {...}, "result": true}`.
* Bodies may be JSON or form-encoded; JSON numbers are accepted for text fields.
* `portal_password` is stored nowhere visible: contacts never echo it.

Operator routes under `/__sandbox__/` need no key: `GET state`, `GET|DELETE calls`,
`POST reset`, plus `faults` and `latency` from `sandbox.faults`.
"""

from __future__ import annotations

import copy
import hmac
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.control import register_control
from sandbox.faults import FaultPlan

EXTENSION_KEY = "lightening_sandbox"
FIRST_ID = 101
CUSTOMERS = {
    1: {"customer_name": "Acme Property Ltd", "customer_account": "ACME01", "customer_custom_identifier": "ACM"},
    2: {"customer_name": "Brightside Homes", "customer_account": "BRIGHT02", "customer_custom_identifier": "BRT"},
}
FAULT_BODIES = {
    429: {"error": "Too many requests", "result": False},
    500: {"error": "Injected fault", "result": False},
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
TEXT_LIMITS = {
    "name": 64,
    "email": 191,
    "tel": 32,
    "tel1": 32,
    "fax": 32,
    "mobile": 32,
    "role": 32,
    "department": 64,
    "customer_custom_identifier": 16,
}
FLAGS = ("is_active", "portal_active", "milestone")
NOTHING_SENT = {"error": "Nothing sent for request.", "result": False}
NOT_FOUND = {"msg": "Entity not found.", "result": False}

Record = dict[str, Any]


class LighteningSandbox:
    """One simulated account. Handlers run under `lock` (the server is threaded)."""

    def __init__(self, api_key: str, clock: Callable[[], datetime]) -> None:
        self.api_key = api_key
        self.clock = clock
        self.lock = threading.Lock()
        self.contacts: dict[int, Record] = {}
        self.next_id = FIRST_ID
        self.calls: list[Record] = []
        self.faults = FaultPlan(FAULT_BODIES)

    def reset(self) -> None:
        with self.lock:
            self.contacts.clear()
            self.next_id = FIRST_ID
            self.calls.clear()
        self.faults.reset()

    def now_text(self) -> str:
        return self.clock().astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    def authorised(self) -> bool:
        supplied = request.headers.get("Authorization", "").strip()
        credential = supplied.rsplit(" ", 1)[-1]  # "<key>" or "<scheme> <key>": the scheme is unconfirmed
        return bool(supplied) and hmac.compare_digest(credential.encode(), self.api_key.encode())

    def record_call(self, body: Any, status: int) -> None:
        query = {key: values if len(values) > 1 else values[0] for key, values in request.args.lists()}
        entry = {"method": request.method, "path": request.path, "query": query, "json": body, "status": status}
        with self.lock:
            self.calls.append(entry)


# --- validation: the documented limits, answered the way the docs print them ----------------------


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def field_errors(data: Record, cleaned: Record) -> dict[str, str]:
    """Check every documented field present in `data`, filling `cleaned`; returns {field: message}."""
    errors: dict[str, str] = {}
    if "create_method" in data:
        errors["create_method"] = "Field is not allowed."
    if not _text(data.get("name")):
        errors["name"] = "Field is required."
    for name, limit in TEXT_LIMITS.items():
        if name not in data or (name == "name" and "name" in errors):
            continue
        text = _text(data[name])
        if text is None or len(text) > limit:
            errors[name] = f"Field must be a string of at most {limit} characters."
        elif name == "email" and text and not EMAIL.fullmatch(text):
            errors[name] = "Field must be a valid email address."
        else:
            cleaned[name] = text
    for name in FLAGS:
        if name in data:
            flag = _integer(data[name])
            if flag not in (0, 1):
                errors[name] = "Field must be 1 or 0."
            else:
                cleaned[name] = str(flag)
    _check_numbers(data, cleaned, errors)
    return errors


def _check_numbers(data: Record, cleaned: Record, errors: dict[str, str]) -> None:
    if "customer_portal_profile_id" in data:
        number = _integer(data["customer_portal_profile_id"])
        if number is None or not 0 <= number <= 4_294_967_295:
            errors["customer_portal_profile_id"] = "Field must be an unsigned integer between 0 and 4294967295."
        else:
            cleaned["customer_portal_profile_id"] = str(number)
    if "cost_center_id" in data:
        number = _integer(data["cost_center_id"])
        if number is None:
            errors["cost_center_id"] = "Field must be an integer."
        else:
            cleaned["cost_center_id"] = str(number)
    if "portal_password" in data:
        password = _text(data["portal_password"])
        if password is None or not 8 <= len(password) <= 32:
            errors["portal_password"] = "Field must be between 8 and 32 characters."
    if "locale" in data:
        locale = _text(data["locale"])
        if locale is None or not LOCALE.fullmatch(locale):
            errors["locale"] = "Field must be a valid locale string, e.g. en_US."
        else:
            cleaned["locale"] = locale


def new_contact(ident: int, customer_id: int | None, now: str) -> Record:
    """A contact in the documented response shape: strings, except customer_id and vendor_type."""
    customer = CUSTOMERS.get(customer_id or 0, {})
    return {
        "id": str(ident),
        "name": "",
        "email": "",
        "email2": "",
        "email3": "",
        "tel": "",
        "tel1": "",
        "fax": "",
        "mobile": "",
        "role": "",
        "department": "",
        "milestone": "0",
        "cost_center_id": "0",
        "cost_center_name": "",
        "customer_id": customer_id,
        "customer_name": customer.get("customer_name", ""),
        "customer_account": customer.get("customer_account", ""),
        "customer_custom_identifier": customer.get("customer_custom_identifier", ""),
        "customer_portal_profile_id": "0",
        "customer_portal_profile_name": "",
        "portal_profile": "",
        "portal_fullname": "",
        "portal_branch_id": "",
        "portal_active": "0",
        "vendor_account": "",
        "vendor_id": "",
        "vendor_name": "",
        "vendor_type": 1,
        "is_active": "1",
        "locale": "en_US",
        "created_at": now,
        "updated_at": now,
    }


def requested_customers(args: Any) -> tuple[list[int] | None, str | None]:
    """customer_id from any of the three encodings the connector may use; (ids, error)."""
    raw = args.getlist("customer_id[]") or args.getlist("customer_id")
    if not raw:
        return None, "Field is required."
    texts = [part.strip() for value in raw for part in value.split(",")]
    if not all(re.fullmatch(r"\d+", text) for text in texts):
        return None, "Field must be an array of customer ids."
    ids = [int(text) for text in texts]
    unknown = [ident for ident in ids if ident not in CUSTOMERS]
    if unknown:
        return None, f"Customer {unknown[0]} is not associated with your account."
    return ids, None


# --- handlers ------------------------------------------------------------------------------------


def list_contacts(sim: LighteningSandbox) -> Record:
    ids, error = requested_customers(request.args)
    if error:
        return {"errors": {"customer_id": error}, "result": False}
    entities = [c for c in sim.contacts.values() if c["customer_id"] in (ids or [])]
    return {"entities": copy.deepcopy(entities), "result": True}


def get_contact(sim: LighteningSandbox, contact_id: int) -> Record:
    contact = sim.contacts.get(contact_id)
    return {"entity": copy.deepcopy(contact), "result": True} if contact else NOT_FOUND


def create_contact(sim: LighteningSandbox, data: Record) -> Record:
    if not data:
        return NOTHING_SENT
    cleaned: Record = {}
    errors = field_errors(data, cleaned)
    customer_id = _integer(data.get("customer_id")) if "customer_id" in data else None
    if "customer_id" in data and customer_id not in CUSTOMERS:
        errors["customer_id"] = "Customer is not associated with your account."
    if errors:
        return {"errors": errors, "result": False}
    ident = sim.next_id
    sim.next_id += 1
    sim.contacts[ident] = new_contact(ident, customer_id, sim.now_text()) | cleaned
    return {"msg": "Successfully created entity.", "id": str(ident), "result": True}


def update_contact(sim: LighteningSandbox, contact_id: int, data: Record) -> Record:
    if contact_id not in sim.contacts:
        return NOT_FOUND
    if not data:
        return NOTHING_SENT
    cleaned: Record = {}
    errors = field_errors(data, cleaned)
    if errors:
        return {"errors": errors, "result": False}
    sim.contacts[contact_id].update(cleaned, updated_at=sim.now_text())
    return {"msg": "Successfully updated entity.", "result": True}


def delete_contact(sim: LighteningSandbox, contact_id: int) -> Record:
    if sim.contacts.pop(contact_id, None) is None:
        return NOT_FOUND
    return {"msg": "Entity has been successfully deleted.", "result": False}  # sic: the docs' success


# --- the Flask app ----------------------------------------------------------------------------------


def create_app(api_key: str = "sandbox-key", clock: Callable[[], datetime] | None = None) -> Flask:
    """A fresh simulated account owning customers 1 and 2 and no contacts.

    Args:
        api_key: the only credential accepted in `Authorization` (bare or after a scheme).
        clock: source of created_at/updated_at (aware UTC); the wall clock by default.
    """
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    sim = LighteningSandbox(api_key, clock or (lambda: datetime.now(timezone.utc)))
    app.extensions[EXTENSION_KEY] = sim

    def answer(handler: Callable[..., Record], *args: Any) -> Response:
        if not sim.authorised():
            return _json({"error": "Unauthorized: missing or invalid Authorization header", "result": False}, 401)
        with sim.lock:
            return _json(handler(sim, *args))

    app.add_url_rule("/contact", "list", lambda: answer(list_contacts), methods=["GET"])
    app.add_url_rule("/contact", "create", lambda: answer(create_contact, _body()), methods=["POST"])
    app.add_url_rule("/contact/<int:contact_id>", "get", lambda contact_id: answer(get_contact, contact_id))
    app.add_url_rule(
        "/contact/<int:contact_id>",
        "update",
        lambda contact_id: answer(update_contact, contact_id, _body()),
        methods=["POST"],
    )
    app.add_url_rule(
        "/contact/<int:contact_id>/delete", "delete", lambda contact_id: answer(delete_contact, contact_id)
    )
    register_control(
        app,
        sim,
        state=lambda: {"customers": CUSTOMERS, "contacts": copy.deepcopy(list(sim.contacts.values()))},
        record_call=lambda response: sim.record_call(_redacted(_body(), sim.api_key) or None, response.status_code),
    )
    _register_error_handlers(app)
    return app


def _json(body: Record, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _body() -> Record:
    """The request's fields, JSON or form-encoded (the docs do not say which)."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form.to_dict(flat=True)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _json({"error": exc.description or exc.name, "result": False}, exc.code or 500)


def _redacted(body: Record, secret: str) -> Record:
    """Never log the key, nor a portal password."""
    return {key: "***" if key == "portal_password" or value == secret else value for key, value in body.items()}
