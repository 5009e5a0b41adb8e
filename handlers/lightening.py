"""Lightening contacts: `lightening.contacts.*`

Docs: shared/api-docs/lightening-contacts.txt; what they leave open is listed in
shared/reference/lightening-api.md and decided here, each choice configurable.

**Auth (scheme UNCONFIRMED).** Every call carries `Authorization: <value>`, where the
value is `LIGHTENING_TOKEN` as it stands, or `<LIGHTENING_AUTH_SCHEME> <LIGHTENING_TOKEN>`
when a scheme is set (e.g. `Bearer`, `Basic`). Nothing is assumed: the docs point at a
Login/Auth page nobody has seen. A 401/403 fails the step with "check LIGHTENING_TOKEN
and LIGHTENING_AUTH_SCHEME". `LIGHTENING_BASE_URL` has no default (the host is
unconfirmed); without it, or without a token, every Lightening step fails saying so.

**Success is in the body, not the status.** Lightening answers HTTP 200 for failures too,
so every answer is judged once, where it is read:

- `"errors": {field: message}` is a permanent failure that names each field
  (`email: Field must be a valid email address.`);
- `"error": "Nothing sent for request."` (an empty request) is a permanent failure;
- `"msg": "Entity not found."` is a permanent "not found";
- anything else without `"result": true` is a permanent failure quoting `msg`;
- delete is the exception: the docs print its success as `"result": false` with
  `"msg": "Entity has been successfully deleted."`, so that message (or `result: true`)
  is success, whatever `result` says.

An answer that is not a JSON object (a login page, say) is a permanent failure. Non-2xx
statuses, if Lightening sends any, are classified as for every connector (5xx/429
transient, other 4xx permanent).

**Requests.** Reads send their filters in the query; writes send a JSON body by default.
The docs do not say JSON or form (UNCONFIRMED): `LIGHTENING_BODY_ENCODING=form` sends
form fields instead (values as text, booleans as 1/0), as a PHP backend expects.
`customer_id` is an array whose query encoding is UNCONFIRMED: `LIGHTENING_ARRAY_ENCODING`
is `brackets` (`customer_id[]=1&customer_id[]=2`, the PHP convention, default), `repeat`
(`customer_id=1&customer_id=2`) or `comma` (`customer_id=1,2`).

**Outputs.** list: `{entities, count}`; get: the contact record (from `entity`, `data`,
a one-element `entities`, or a bare record: the get answer is not documented);
create: `{id, msg}` with the docs' string id as an integer; update: `{id, msg}`;
delete: `{id, deleted: true, msg}`.

**Decisions where the docs are silent.**

- `customer_id` on create is not in the documented fields (UNCONFIRMED); it is sent
  only when the step gives it.
- `locale` defaults to `en_US` on create (the documented default) but not on update,
  where a default would overwrite the contact's own locale.
- A create whose outcome is unknown (5xx, timeout, lost worker) first lists the
  contacts of its `customer_id` and takes one with the same `email` (case-insensitive)
  and `name`. Without both `customer_id` and `email` it cannot reconcile: give them.
- A delete whose outcome is unknown first reads the contact; if it is gone, the
  delete succeeded. A delete of a contact that never existed fails as "not found".
- The list has no documented paging: one request, and the output is what it answers.
- `portal_password` is sent as given; like every step input it is kept in the run's
  record, so prefer inviting contacts to the portal over setting passwords from a form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from engine.errors import PermanentStepError
from engine.http import ApiClient
from engine.inspect import output_fields
from engine.operations import ConnectorContext, Operation, Output
from schemas import lightening as m

AUTH_HINT = "check LIGHTENING_TOKEN and LIGHTENING_AUTH_SCHEME"
DELETED = "Entity has been successfully deleted."
NOT_FOUND = "Entity not found."


@dataclass(frozen=True)
class LighteningApi:
    """The attempt's ApiClient plus how this deployment encodes array filters and request bodies."""

    api: ApiClient
    array_encoding: str = "brackets"
    body_encoding: str = "json"

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST as JSON, or as a form (values as text, booleans 0/1) when LIGHTENING_BODY_ENCODING=form."""
        if self.body_encoding == "form":
            return self.api.request("POST", path, form={key: _form_value(value) for key, value in payload.items()})
        return self.api.request("POST", path, json_body=payload)

    def array_param(self, name: str, values: list[Any]) -> dict[str, Any]:
        if self.array_encoding == "repeat":
            return {name: values}
        if self.array_encoding == "comma":
            return {name: ",".join(str(value) for value in values)}
        return {f"{name}[]": values}


def connect(ctx: ConnectorContext) -> LighteningApi:
    settings = ctx.settings
    if not settings.lightening_base_url:
        raise PermanentStepError(
            "LIGHTENING_BASE_URL is not set; set it to your Lightening API base URL, "
            "or start with `make run` without LIGHTENING_TOKEN to use the sandbox"
        )
    token = settings.lightening_token.get_secret_value() if settings.lightening_token else ""
    if not token:
        raise PermanentStepError("LIGHTENING_TOKEN is not set; set it (and LIGHTENING_AUTH_SCHEME if needed)")
    scheme = settings.lightening_auth_scheme.strip()
    api = ApiClient(
        ctx.http,
        settings.lightening_base_url,
        {"Authorization": f"{scheme} {token}" if scheme else token},
        ctx.calls,
        read_error=read_error,
        auth_hint=AUTH_HINT,
        deadline=ctx.deadline,
        secrets=(token,),  # an echo of the bare token is caught too, not only "<scheme> <token>"
    )
    return LighteningApi(api, settings.lightening_array_encoding, settings.lightening_body_encoding)


def read_error(response: httpx.Response) -> str:
    """Text for a non-2xx answer: the envelope's own words when it has them."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        if body.get("errors"):
            return describe_errors(body["errors"])
        for key in ("error", "msg", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return response.text[:500] or response.reason_phrase


def describe_errors(errors: Any) -> str:
    """`{"name": "Field is required.", ...}` as "name: Field is required.; ..." (lists and strings too)."""
    if isinstance(errors, dict):
        parts = []
        for field, problem in errors.items():
            text = "; ".join(str(p) for p in problem) if isinstance(problem, list) else str(problem)
            parts.append(f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(errors, list):
        return "; ".join(str(problem) for problem in errors)
    return str(errors)


def checked(body: Any, what: str) -> dict[str, Any]:
    """The body of a successful answer, or the permanent error its envelope describes.

    Args:
        what: the request in words, for the message ("create the contact", "read contact 12").
    """
    if not isinstance(body, dict):
        raise PermanentStepError(f"Lightening did not answer with a JSON object to {what}: {str(body)[:300]}")
    if body.get("errors"):
        raise PermanentStepError(f"Lightening refused to {what}: {describe_errors(body['errors'])}")
    if body.get("error"):
        raise PermanentStepError(f"Lightening refused to {what}: {body['error']}")
    if body.get("msg") == NOT_FOUND:
        raise PermanentStepError(f"Lightening could not {what}: not found ({NOT_FOUND})", status=404)
    if body.get("result") is not True:
        detail = body.get("msg") or str(body)[:300]
        raise PermanentStepError(f"Lightening could not {what} (result {body.get('result')!r}): {detail}")
    return body


def as_int_id(value: Any) -> Any:
    """The docs' ids are strings ("1"); chain them as integers, keep anything else as sent."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _payload(inp: BaseModel, *exclude: str) -> dict[str, Any]:
    return inp.model_dump(mode="json", exclude_none=True, exclude=set(exclude))


# --- operations ---------------------------------------------------------------------------------


def contacts_list(client: LighteningApi, inp: m.ContactList) -> Output:
    body = checked(
        client.api.request("GET", "/contact", params=client.array_param("customer_id", inp.customer_id)),
        "list contacts",
    )
    entities = body.get("entities")
    entities = entities if isinstance(entities, list) else []
    return {"entities": entities, "count": len(entities)}


def read_contact(client: LighteningApi, contact_id: int) -> Output:
    """The contact record, whichever envelope the (undocumented) get answer uses."""
    what = f"read contact {contact_id}"
    body = checked(client.api.request("GET", f"/contact/{contact_id}"), what)
    for key in ("entity", "data"):
        if isinstance(body.get(key), dict):
            return body[key]
    if isinstance(body.get("entities"), list):
        if not body["entities"]:
            raise PermanentStepError(f"Lightening could not {what}: not found (no entities)", status=404)
        return body["entities"][0]
    record = {key: value for key, value in body.items() if key != "result"}
    if "id" not in record:
        raise PermanentStepError(f"Lightening answered {what} without a contact: {str(body)[:300]}")
    return record


def contacts_get(client: LighteningApi, inp: m.ContactGet) -> Output:
    return read_contact(client, inp.id)


def contacts_create(client: LighteningApi, inp: m.ContactCreate) -> Output:
    body = checked(client.post("/contact", _payload(inp)), "create the contact")
    if body.get("id") in (None, ""):
        # Created, but we cannot chain from it; a retry must reconcile, not create again.
        raise PermanentStepError(
            f"Lightening created the contact but answered without an id: {str(body)[:300]}", outcome_unknown=True
        )
    return {"id": as_int_id(body["id"]), "msg": body.get("msg")}


def contacts_update(client: LighteningApi, inp: m.ContactUpdate) -> Output:
    what = f"update contact {inp.id}"
    body = checked(client.post(f"/contact/{inp.id}", _payload(inp, "id")), what)
    return {"id": inp.id, "msg": body.get("msg")}


def contacts_delete(client: LighteningApi, inp: m.ContactDelete) -> Output:
    body = client.api.request("GET", f"/contact/{inp.id}/delete")
    if isinstance(body, dict) and body.get("msg") == DELETED and not body.get("errors"):
        return {"id": inp.id, "deleted": True, "msg": DELETED}  # the docs' success says "result": false
    body = checked(body, f"delete contact {inp.id}")
    return {"id": inp.id, "deleted": True, "msg": body.get("msg")}


# --- reconciliation -------------------------------------------------------------------------------


def find_contact(client: LighteningApi, inp: m.ContactCreate) -> Output | None:
    """A contact of the same customer with the same email and name: what an earlier attempt made."""
    if inp.customer_id is None or not inp.email:
        return None
    listed = contacts_list(client, m.ContactList(customer_id=[inp.customer_id]))
    for entity in listed["entities"]:
        if not isinstance(entity, dict):
            continue
        same_email = str(entity.get("email") or "").casefold() == inp.email.casefold()
        if same_email and entity.get("name") == inp.name and entity.get("id") is not None:
            return {**entity, "id": as_int_id(entity["id"])}
    return None


def find_deleted(client: LighteningApi, inp: m.ContactDelete) -> Output | None:
    """If the contact is already gone, an earlier attempt deleted it: that is this step's success."""
    try:
        read_contact(client, inp.id)
    except PermanentStepError as exc:
        if exc.status == 404:
            return {"id": inp.id, "deleted": True, "msg": "already deleted by an earlier attempt"}
        raise
    return None


def _op(
    name: str,
    summary: str,
    model: type[BaseModel],
    call: Callable[[LighteningApi, Any], Output],
    find_existing: Callable[[LighteningApi, Any], Output | None] | None = None,
    natural_key: tuple[str, ...] = (),
    outputs: frozenset[str] | None = None,
) -> Operation:
    return Operation(
        name=f"lightening.contacts.{name}",
        input=model,
        call=call,
        connect=connect,
        find_existing=find_existing,
        natural_key=natural_key,
        summary=summary,
        outputs=outputs,
    )


# A contact's fields as the list answer documents them; the get answer is not documented (its envelope is
# read tolerantly), so these are what it is expected to carry, not all it may.
CONTACT_FIELDS = (  # noqa: SIM905 (one line per group of fields reads better than 32 lines of one each)
    "id name email email2 email3 tel tel1 fax mobile role department milestone is_active locale created_at "
    "updated_at cost_center_id cost_center_name customer_id customer_name customer_account "
    "customer_custom_identifier customer_portal_profile_id customer_portal_profile_name portal_profile "
    "portal_fullname portal_branch_id portal_active vendor_account vendor_id vendor_name vendor_type"
).split()


OPERATIONS = [
    _op(
        "list", "GET /contact?customer_id[]=…", m.ContactList, contacts_list, outputs=output_fields("entities", "count")
    ),
    _op("get", "GET /contact/{id}", m.ContactGet, contacts_get, outputs=output_fields(*CONTACT_FIELDS, others=True)),
    _op(
        "create",
        "POST /contact",
        m.ContactCreate,
        contacts_create,
        find_existing=find_contact,
        natural_key=("customer_id", "email", "name"),
        outputs=output_fields("id", "msg"),
    ),
    _op("update", "POST /contact/{id}", m.ContactUpdate, contacts_update, outputs=output_fields("id", "msg")),
    _op(
        "delete",
        "GET /contact/{id}/delete",
        m.ContactDelete,
        contacts_delete,
        find_deleted,
        ("id",),
        outputs=output_fields("id", "deleted", "msg"),
    ),
]
