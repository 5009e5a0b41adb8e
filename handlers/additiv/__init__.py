"""additiv DFS client API (contacts, change requests, legal entities): `additiv.*`

Docs: shared/api-docs/additiv-client-contacts.txt (a copy of the Redoc page);
shared/reference/additiv-api.md says which methods and paths are confirmed. Each
operation's call below is marked **(confirmed)** or **(inferred)**.

**Auth.** `Authorization: Bearer <ADDITIV_TOKEN>` on every call (Bearer is confirmed).
The token is an access token from the DFS identity server's `connect/token`, obtained
outside Hookflow: Hookflow does not fetch or refresh tokens (the grant type, scope and
identity-server host are unconfirmed), so tokens expire, and a 401/403 fails the step with
"check ADDITIV_TOKEN".
Use an *app* token: an app's detail changes apply at once, a member's may need approval.
`ADDITIV_BASE_URL` has no default: it is the tenant's host plus any API-gateway prefix
(unconfirmed), and every path below is appended to it.

**Routes (mostly UNCONFIRMED).** Most paths are inferred from the confirmed ones. Any
route can be replaced without a code change: `ADDITIV_ROUTES` is a JSON object from
operation name to `"METHOD /path"`, using the same `{placeholders}`, e.g.
`{"additiv.contacts.details.change_history.search": "POST /v1.1/contacts/{contactId}/details/change-history/search"}`
(the docs say GET with a JSON body, which is what is sent by default). The look-up by
external connection sends `system` and `externalId` as query parameters; whether they are
query or path parameters is unconfirmed, so its override may put either or both in the path:
`{"additiv.contacts.external_connections.find": "GET /v1.0/contacts/external-connections/{system}/{externalId}"}`
(path values are percent-encoded, `/` included). A bad override fails every additiv step, naming it.

**Language.** `ADDITIV_ACCEPT_LANGUAGE` (ISO 639-1, e.g. `de`) is sent as
`Accept-Language`; unset, additiv uses the tenant's default language.

**Errors.** additiv's `ApiError` envelope `{code, subCode, message, correlationId}` becomes
the step's error text, e.g. `HTTP 400: BadRequest: The request was not in the required format
(additiv correlationId 30d3…)`; quote the correlationId to additiv support.
`UsernameNotUnique` reads "the username (or the email, where they are coupled) is already used
by another contact". Classification is as for every connector: 5xx/429/408 transient, other
4xx permanent.

**Creating a contact without ever making two.** `additiv.contacts.create` takes an optional
`externalConnection: {system, externalId}` that is *not* sent with the create, and which
requires a `username`. With it, the step (1) looks the contact up by that connection (a 404
means "none") and, if found, outputs it with `created: false`; otherwise (2) notes in Redis
that it is creating one, (3) creates the contact, (4) notes the new id, (5) adds the external
connection, (6) drops the note. A retry after the link was made (its answer lost, say) finds
the contact by its connection; a retry after the link failed, or after the worker died
between noting the id and linking, links the noted contact. If the *create's* own answer is
lost, nothing can find the new contact (additiv has no look-up by username or details), so
the retry creates again, and additiv refuses that second contact because the username is
taken (UsernameNotUnique). With the "creating" note still there, or the engine reporting the
earlier attempt's outcome as unknown, the step fails saying the contact was probably created
by an earlier attempt: link it to the connection in additiv and retry the run, which then
finds it (`created: true`, since this step made it). Without `externalConnection` a create
is not reconciled at all.

**Exports.** `additiv.contacts.export` starts an export and outputs `exportJobId`. An
optional GraphQL filter is sent as a JSON string, or as text/plain with
`ADDITIV_EXPORT_QUERY_ENCODING=text` (which one DFS wants is unconfirmed).
`additiv.contacts.export.get` fetches the CSV: while the export is not ready (an empty
answer, or JSON instead of CSV) the step fails as transient and is retried with its
backoff. Output: `{exportJobId, columns, rowCount, rows, csv}` (rows as objects).

**Outputs** are the parsed answers. Creates add `id`; detail changes always carry
`isApprovalRequired` (null when additiv said nothing); an empty answer (204) is `{}`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from engine.errors import PermanentStepError, TransientStepError
from engine.inspect import output_fields
from engine.operations import Operation, Output
from handlers.additiv.client import CONFIRMED, ROUTES, AdditivApi, as_record, connect, fields_of
from handlers.additiv.contacts import contacts_create, find_created
from schemas import additiv as m

# --- answers and exports ------------------------------------------------------------------------------------------


def legal_entity_created(body: Any) -> Output:
    record = as_record(body)
    if record.get("id") is None:
        raise PermanentStepError(
            f"additiv created the legal entity but answered without an id: {str(body)[:300]}", outcome_unknown=True
        )
    return record


def details_changed(body: Any) -> Output:
    record = as_record(body)
    return {**record, "isApprovalRequired": record.get("isApprovalRequired")}


def export_started(body: Any) -> Output:
    record = as_record(body)
    if not record.get("exportJobId"):
        raise PermanentStepError(f"additiv started no export (no exportJobId): {str(body)[:300]}")
    return record


def contacts_export(client: AdditivApi, inp: m.ContactsExport) -> Output:
    """No body: every contact; otherwise the GraphQL filter, as a JSON string or, with
    ADDITIV_EXPORT_QUERY_ENCODING=text, as text/plain."""
    method, path = client.routes["additiv.contacts.export"]
    if inp.query is not None and client.export_query_encoding == "text":
        return export_started(client.api.request(method, path, text=inp.query))
    return export_started(client.api.request(method, path, json_body=inp.query))


def contacts_export_get(client: AdditivApi, inp: m.ContactsExportGet) -> Output:
    job = str(inp.exportJobId)
    body = client.send("additiv.contacts.export.get", {"exportJobId": job})
    if body is None or isinstance(body, dict):
        raise TransientStepError(f"additiv export {job} is not ready yet; retrying with the step's backoff")
    if not isinstance(body, str):
        raise PermanentStepError(f"additiv answered export {job} with neither CSV nor a status: {str(body)[:300]}")
    reader = csv.DictReader(io.StringIO(body))
    rows = list(reader)
    return {"exportJobId": job, "columns": reader.fieldnames or [], "rowCount": len(rows), "rows": rows, "csv": body}


# --- the operation table -------------------------------------------------------------------------------

# Each answer's fields as the Redoc page shows them (creates and detail changes as the calls above shape them).
# Writes whose success answer the page does not show (external_connections.add, username.put,
# change_requests.review, legalentities.details.put) are absent: their output is not checked.
_SEARCH = ("results", "page", "pageSize", "pageCount", "totalCount")
_CHANGED = ("isApprovalRequired", "hasPendingEmail", "hasPendingMobile")
OUTPUTS = {
    "additiv.contacts.create": output_fields("id", "uId", "details", "created", "externalConnection"),
    "additiv.contacts.details.get": output_fields(
        "id", "hasPendingChangeRequest", "hasPendingEmail", "hasPendingMobile", "details"
    ),
    "additiv.contacts.details.patch": output_fields(*_CHANGED),
    "additiv.contacts.details.put": output_fields(*_CHANGED),
    "additiv.contacts.details.change_history.search": output_fields(*_SEARCH),
    "additiv.contacts.external_connections.list": output_fields("connections"),
    "additiv.contacts.external_connections.find": output_fields("id", "uid"),
    "additiv.contacts.username.get": output_fields("username"),
    "additiv.contacts.change_requests.search": output_fields(*_SEARCH),
    "additiv.contacts.change_requests.statuses": output_fields("changeRequestStatuses"),
    "additiv.contacts.change_requests.get": output_fields(
        "id",
        "uId",
        "contact",
        "status",
        "createDate",
        "initiatorMember",
        "initiatorComment",
        "reviewDate",
        "reviewMember",
        "reviewComment",
        "details",
    ),
    "additiv.contacts.pending_change_request.check": output_fields("hasPendingChangeRequest", "changeRequest"),
    "additiv.contacts.export": output_fields("exportJobId"),
    "additiv.contacts.export.get": output_fields("exportJobId", "columns", "rowCount", "rows", "csv"),
    "additiv.legalentities.create": output_fields("id", "details"),
    "additiv.legalentities.details.get": output_fields("contactGroupId", "details"),
}


def _op(
    name: str,
    model: type[BaseModel],
    call: Callable[[AdditivApi, Any], Output] | None = None,
    shape: Callable[[Any], Output] = as_record,
    *,
    in_body: bool | None = None,
    **extra: Any,
) -> Operation:
    """One operation; without `call`, the input's fields are sent along its route and `shape` reads the answer."""

    def send(client: AdditivApi, inp: BaseModel) -> Output:
        return shape(client.send(name, fields_of(inp), in_body=in_body))

    status = "confirmed" if name in CONFIRMED else "inferred"
    return Operation(
        name=name,
        input=model,
        call=call or send,
        connect=connect,
        summary=f"{ROUTES[name]} ({status})",
        outputs=OUTPUTS.get(name),
        **extra,
    )


OPERATIONS = [
    _op(
        "additiv.contacts.create",
        m.ContactCreate,
        contacts_create,
        find_existing=find_created,
        natural_key=("externalConnection",),
    ),
    _op("additiv.contacts.details.get", m.DetailsGet),
    _op("additiv.contacts.details.patch", m.DetailsPatch, shape=details_changed),
    _op("additiv.contacts.details.put", m.DetailsPut, shape=details_changed),
    _op("additiv.contacts.details.change_history.search", m.ChangeHistorySearch, in_body=True),
    _op("additiv.contacts.external_connections.list", m.ExternalConnectionsList),
    _op("additiv.contacts.external_connections.add", m.ExternalConnectionAdd),
    _op("additiv.contacts.external_connections.find", m.ExternalConnectionFind),
    _op("additiv.contacts.username.get", m.UsernameGet),
    _op("additiv.contacts.username.put", m.UsernamePut),
    _op("additiv.contacts.change_requests.search", m.ChangeRequestSearch),
    _op("additiv.contacts.change_requests.statuses", m.ChangeRequestStatuses),
    _op("additiv.contacts.change_requests.get", m.ChangeRequestGet),
    _op("additiv.contacts.change_requests.review", m.ChangeRequestReview),
    _op("additiv.contacts.pending_change_request.check", m.PendingChangeRequestCheck),
    _op("additiv.contacts.export", m.ContactsExport, contacts_export),
    _op("additiv.contacts.export.get", m.ContactsExportGet, contacts_export_get),
    _op("additiv.legalentities.create", m.LegalEntityCreate, shape=legal_entity_created),
    _op("additiv.legalentities.details.get", m.LegalEntityDetailsGet),
    _op("additiv.legalentities.details.put", m.LegalEntityDetailsPut),
]
