"""additiv.contacts.create: find by external connection, else create, note, link; never two contacts.

The sequence and its one known gap are described in the package docstring; the note
that bridges a failed link is handlers.additiv.links.
"""

from __future__ import annotations

from typing import Any

from engine.errors import PermanentStepError, StepError, TransientStepError
from engine.operations import Output
from handlers.additiv.client import AdditivApi, as_record, fields_of
from schemas import additiv as m


def find_contact(client: AdditivApi, link: m.ExternalConnection) -> Output | None:
    """The contact linked to `link`, or None when additiv answers 404 (or names no id)."""
    try:
        body = client.send("additiv.contacts.external_connections.find", fields_of(link))
    except PermanentStepError as exc:
        if exc.status == 404:
            return None
        raise
    if not isinstance(body, dict) or body.get("id") is None:
        return None
    connection = fields_of(link)
    return {
        "id": body["id"],
        "uId": body.get("uid", body.get("uId")),
        "created": False,
        "externalConnection": connection,
    }


def find_created(client: AdditivApi, inp: m.ContactCreate) -> Output | None:
    """What an earlier attempt of this create made: the contact linked to its external connection,
    or the one it created and noted but could not link (linked now, finishing that attempt's work)."""
    link = inp.externalConnection
    if link is None:
        return None
    existing = find_contact(client, link)
    if existing is not None:
        return existing
    noted = _noted_contact(client, link)
    return None if noted is None else _linked(client, noted, link)


def contacts_create(client: AdditivApi, inp: m.ContactCreate) -> Output:
    """Create, or with an external connection: find, else create, note, link (see the module docs).

    A retry whose predecessor's outcome is unknown runs `find_created` first and, if that finds
    nothing, this again: one extra lookup, on a path that is rare.
    """
    payload = fields_of(inp)
    payload.pop("externalConnection", None)
    link = inp.externalConnection
    if link is None:
        return {**_created(client.send("additiv.contacts.create", payload)), "created": True}
    existing = find_created(client, inp)
    if existing is not None:
        return existing
    contact = _created(client.send("additiv.contacts.create", payload))
    client.links.note(link, {"id": contact["id"], "uId": contact.get("uId")})
    return _linked(client, contact, link)


def _created(body: Any) -> Output:
    record = as_record(body)
    if record.get("id") is None:
        raise PermanentStepError(
            f"additiv created the contact but answered without an id: {str(body)[:300]}", outcome_unknown=True
        )
    return record


def _noted_contact(client: AdditivApi, link: m.ExternalConnection) -> Output | None:
    """The contact an earlier attempt created but could not link, if it still exists."""
    noted = client.links.noted(link)
    if noted is None:
        return None
    try:
        client.send("additiv.contacts.details.get", {"contactId": noted["id"]})
    except PermanentStepError as exc:
        if exc.status == 404:
            client.links.forget(link)
            return None
        raise
    return noted


def _linked(client: AdditivApi, contact: Output, link: m.ExternalConnection) -> Output:
    """Add the external connection and drop the note; a failure says which contact waits to be linked."""
    fields = {"contactId": contact["id"], **fields_of(link)}
    try:
        client.send("additiv.contacts.external_connections.add", fields)
    except StepError as exc:
        context = f"contact {contact['id']} was created but not yet linked to {link.system}/{link.externalId}: "
        if isinstance(exc, TransientStepError):
            raise TransientStepError(
                context + exc.message, status=exc.status, retry_after=exc.retry_after, outcome_unknown=True
            ) from exc
        raise PermanentStepError(context + exc.message, status=exc.status) from exc
    client.links.forget(link)
    return {**contact, "created": True, "externalConnection": fields_of(link)}
