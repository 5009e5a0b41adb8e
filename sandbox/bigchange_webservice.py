"""Stateful simulator of BigChange's legacy web service (services.ashx), action ContactSave.

Follows shared/api-docs/bigchange-webservice-contactsave.txt and
shared/reference/bigchange-api.md §5:

* auth: HTTP Basic (username/password) plus a `key` header; a failure is HTTP 401
  (the docs do not say; a status lets a client tell bad credentials from bad data);
* parameters in the query string (a form-encoded POST is read the same way), names
  case-insensitive as the docs' own examples assume (`contactname=`);
* every other answer is HTTP 200 with `{"Code": 0, "Result": <contact id>}` or
  `{"Code": 2, "Result": "<message>"}`, using the docs' messages where they give one
  (radius, credit limit, Delay2Pay, ContactOnStop, contact group, What3Words) and
  plain ones for the documented rules they give no message for (required
  ContactName, String(n) limits, "ContactStreet, or ContactLat and ContactLng",
  international phone numbers without spaces, cust_ captions that must exist and
  need ContactGroup);
* `ContactId` updates that contact; `ContactReplaceSameRef=1` updates the contact
  with the same `ContactReference` instead of adding one; otherwise a new contact.
  Ids start at 38759340, the docs' example.

Control routes under `/__sandbox__/`: `GET state`, `GET|DELETE calls` (query
without credentials, never headers; each with `at`), `POST reset`, plus `faults`
and `latency` (sandbox.faults).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request

from sandbox.control import register_control
from sandbox.faults import FaultPlan

FIRST_ID = 38759340
CUSTOM_FIELDS = ("Source", "Account manager", "Preferred contact")  # captions that exist in the tenant
DEFAULT_GROUP = "Imported Contacts"
CREDENTIAL_PARAMS = ("login", "pwd", "password", "key")
LIMITS = {
    "contactname": 50,
    "contactgroup": 50,
    "contactparentreference": 40,
    "contactreference": 40,
    "contactstreet": 100,
    "contactpostcode": 10,
    "contacttown": 100,
    "contactcountry": 50,
    "contactperson": 30,
    "contactphone": 30,
    "contactemail": 100,
    "contactextra": 255,
}
GROUP_MESSAGE = "The specified contact group does not exist and cannot be created with the details passed"
ON_STOP_MESSAGE = "contactOnStopType - must be integer value 0 = None , 1 = OnStop , 2 = Credit Limit On Stop"
_PHONE = re.compile(r"\+[1-9]\d{6,14}")
_WHAT3WORDS = re.compile(r"(///)?[^\W\d_]+\.[^\W\d_]+\.[^\W\d_]+")

Record = dict[str, Any]


class Refused(Exception):
    """ContactSave refuses the request: HTTP 200, Code 2, this message."""


class WebServiceSandbox:
    def __init__(self, username: str, password: str, key: str) -> None:
        self.username, self.password, self.key = username, password, key
        self.lock = threading.Lock()
        self.contacts: dict[int, Record] = {}
        self.groups: set[str] = {DEFAULT_GROUP}
        self.calls: list[Record] = []
        self.faults = FaultPlan(default_bodies={500: {"Code": 3, "Result": "Injected fault"}})
        self._next_id = FIRST_ID

    def reset(self) -> None:
        with self.lock:
            self.contacts, self.groups, self.calls, self._next_id = {}, {DEFAULT_GROUP}, [], FIRST_ID
        self.faults.reset()

    def authorised(self) -> bool:
        supplied = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        scheme, _, token = supplied.partition(" ")
        try:
            token_ok = hmac.compare_digest(base64.b64decode(token, validate=True), base64.b64decode(expected))
        except (binascii.Error, ValueError):
            token_ok = False
        key_ok = hmac.compare_digest(request.headers.get("key", "").encode(), self.key.encode())
        return scheme.lower() == "basic" and token_ok and key_ok

    def record_call(self, response: Response) -> None:
        secrets = (self.password, self.key)
        query = {
            name: "***" if name.lower() in CREDENTIAL_PARAMS or value in secrets else value
            for name, value in request.values.to_dict(flat=True).items()
        }
        entry = {"method": request.method, "path": request.path, "query": query, "status": response.status_code}
        entry["at"] = g.get("sandbox_arrived", time.time())
        with self.lock:
            self.calls.append(entry)

    def contact_save(self, raw: Mapping[str, str]) -> int:
        """Validate as ContactSave does, then add or update the contact; return its id.

        Names are matched case-insensitively; custom-field captions keep the case they were sent in.
        """
        params = {name.lower(): value for name, value in raw.items()}
        fields = _checked(params)
        custom = _custom_fields(raw, fields)
        target = self._target(fields)
        group = fields.get("contactgroup", DEFAULT_GROUP)
        self.groups.add(group)
        record = target if target is not None else {"Id": self._new_id()}
        record.update(_record_fields(fields), Group=group)
        record.setdefault("Custom", {}).update(custom)
        self.contacts[record["Id"]] = record
        return record["Id"]

    def _target(self, fields: Record) -> Record | None:
        if "contactid" in fields:
            if fields["contactid"] not in self.contacts:
                raise Refused(f"Contact {fields['contactid']} not found")
            return self.contacts[fields["contactid"]]
        if "contactparentid" in fields and fields["contactparentid"] not in self.contacts:
            raise Refused(f"Parent contact {fields['contactparentid']} not found")
        if fields.get("contactreplacesameref") == 1 and "contactreference" in fields:
            same = [c for c in self.contacts.values() if c.get("Reference") == fields["contactreference"]]
            return min(same, key=lambda c: c["Id"]) if same else None
        return None

    def _new_id(self) -> int:
        ident, self._next_id = self._next_id, self._next_id + 1
        return ident

    def state(self) -> Record:
        return {"contacts": copy.deepcopy(list(self.contacts.values())), "groups": sorted(self.groups)}


def _checked(params: Mapping[str, str]) -> Record:
    """The request's fields, typed, in the order ContactSave checks them; Refused at the first problem."""
    if not params.get("contactname", "").strip():
        raise Refused("ContactName is required")
    for name, limit in LIMITS.items():
        if len(params.get(name, "")) > limit:
            if name == "contactgroup":
                raise Refused(GROUP_MESSAGE)
            raise Refused(f"{name} must be at most {limit} characters")
    fields: Record = {name: value for name, value in params.items() if name in LIMITS}
    fields.update(_numbers(params))
    if "contactstreet" not in fields and ("contactlat" not in fields or "contactlng" not in fields):
        raise Refused("ContactStreet, or ContactLat and ContactLng, is required")
    if "contactphone" in fields and not _PHONE.fullmatch(fields["contactphone"]):
        raise Refused("ContactPhone must be in international format with no spaces, e.g. +447954012012")
    if "contactwhat3words" in params:
        if not _WHAT3WORDS.fullmatch(params["contactwhat3words"]):
            raise Refused("Invalid parameter ContactWhat3Words")
        fields["contactwhat3words"] = params["contactwhat3words"]
    for name in ("contactonstopreason", "contactaccountreference", "contactfirstname", "contactlastname"):
        if name in params:
            fields[name] = params[name]
    return fields


def _numbers(params: Mapping[str, str]) -> Record:
    """The numeric parameters, each with the docs' message when it does not parse."""
    checks = (
        ("contactradiusmeter", int, "Contact Radius is not a valid number"),
        ("creditlimit", float, "Invalid Credit Limit"),
        ("contactextradelay2pay", int, "Invalid Delay2Pay"),
        ("contactonstop", int, ON_STOP_MESSAGE),
        ("contactlat", float, "Invalid ContactLat"),
        ("contactlng", float, "Invalid ContactLng"),
        ("contactid", int, "Invalid ContactId"),
        ("contactparentid", int, "Invalid ContactParentId"),
        ("contactreplacesameref", int, "Invalid ContactReplaceSameRef"),
    )
    typed: Record = {}
    for name, kind, message in checks:
        if name not in params:
            continue
        try:
            typed[name] = kind(params[name])
        except ValueError:
            raise Refused(message) from None
    if typed.get("contactonstop", 0) not in (0, 1, 2):
        raise Refused(ON_STOP_MESSAGE)
    if not -32768 <= typed.get("contactextradelay2pay", 0) <= 32767:
        raise Refused("Invalid Delay2Pay")
    return typed


def _custom_fields(raw: Mapping[str, str], fields: Record) -> dict[str, str]:
    custom = {name[len("cust_") :]: value for name, value in raw.items() if name.lower().startswith("cust_")}
    if custom and "contactgroup" not in fields:
        raise Refused("ContactGroup must be provided when custom fields are supplied")
    known = {caption.lower(): caption for caption in CUSTOM_FIELDS}
    for caption in custom:
        if caption.lower() not in known:
            raise Refused(f"Custom field '{caption}' does not exist")
    return {known[caption.lower()]: value for caption, value in custom.items()}


def _record_fields(fields: Record) -> Record:
    names = {
        "contactname": "Name",
        "contactreference": "Reference",
        "contactstreet": "Street",
        "contactpostcode": "Postcode",
        "contacttown": "Town",
        "contactcountry": "Country",
        "contactlat": "Lat",
        "contactlng": "Lng",
        "contactphone": "Phone",
        "contactemail": "Email",
        "contactperson": "Person",
        "contactextra": "Extra",
        "contactparentid": "ParentId",
        "creditlimit": "CreditLimit",
        "contactonstop": "OnStop",
        "contactonstopreason": "OnStopReason",
    }
    return {wire: fields[name] for name, wire in names.items() if name in fields}


def create_app(
    api_key: str = "sandbox-key", username: str = "sandbox-user", password: str | None = None, key: str | None = None
) -> Flask:
    """A fresh simulated web service. `password` and `key` default to `api_key` (the sandbox's one secret)."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    sim = WebServiceSandbox(username, password or api_key, key or api_key)

    @app.route("/services.ashx", methods=["GET", "POST"])
    def services() -> Response | tuple[Response, int]:
        if not sim.authorised():
            return jsonify(Code=2, Result="Authentication failed"), 401
        params = request.values.to_dict(flat=True)
        action = next((value for name, value in params.items() if name.lower() == "action"), "")
        if action.lower() == "ping":
            return jsonify(Code=0, Result="pong")
        if action.lower() != "contactsave":
            return jsonify(Code=2, Result=f"Unknown action: {action or '(none)'}")
        try:
            with sim.lock:
                return jsonify(Code=0, Result=sim.contact_save(params))
        except Refused as refused:
            return jsonify(Code=2, Result=str(refused))

    register_control(app, sim, sim.state, sim.record_call)
    return app
