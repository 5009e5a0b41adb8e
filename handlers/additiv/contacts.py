"""additiv.contacts.create: find by external connection, else create, note, link; never two contacts.

additiv has no idempotent create and finds a contact by nothing but an external
connection (no search by username or details), which can only be added after the
create. So, with `externalConnection` (which requires a `username`):

1. find the contact by its connection (a 404 means none): found, it is the output;
2. else a contact an earlier attempt created and noted but could not link: link it;
3. else note "creating" (handlers.additiv.links), create, note the new id, link it,
   drop the note.

If the create's own answer is lost (or the worker dies before noting the id), the
retry finds nothing and creates again. The username is unique in additiv, so that
second create is refused with UsernameNotUnique; when the "creating" note is still
there, or the engine says the earlier attempt's outcome is unknown, the step fails
saying the contact was probably created by an earlier attempt, and how to finish:
link it by hand and retry, and the retry finds it by its connection.

`created` is true when this step made the contact (in this attempt or an earlier
one, as its note shows), false when the connection already led to a contact.
"""

from __future__ import annotations

from typing import Any

from engine.errors import PermanentStepError, StepError, TransientStepError
from engine.operations import Output
from handlers.additiv.client import AdditivApi, as_record, fields_of, is_username_not_unique
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
    """The engine's reconcile hook, called when an earlier attempt's outcome is unknown: what that
    attempt made (see `_existing`). Remembers the engine's word for the create that may follow."""
    client.attempt.earlier_outcome_unknown = True
    return _existing(client, inp)


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
    existing = _existing(client, inp)
    if existing is not None:
        return existing
    contact = _create_once(client, payload, inp, link)
    client.links.note(link, {"id": contact["id"], "uId": contact.get("uId"), "owner": client.owner})
    return _linked(client, contact, link)


def _existing(client: AdditivApi, inp: m.ContactCreate) -> Output | None:
    """The contact linked to the input's connection, or the one an earlier attempt created and
    noted but could not link (linked now, finishing that attempt's work)."""
    link = inp.externalConnection
    if link is None:
        return None
    note = client.links.read(link)
    found = find_contact(client, link)
    if found is not None:
        if note is not None and _made_by_this_step(client, note, found):
            client.links.forget(link)
            return {**found, "created": True}
        return found
    noted = _noted_contact(client, link)
    return None if noted is None else _linked(client, noted, link)


def _made_by_this_step(client: AdditivApi, note: dict[str, Any], found: Output) -> bool:
    """The linked contact is the one this connection's create noted, or this step was creating it
    (its answer lost) when somebody linked it: either way the workflow's create made it."""
    if note.get("id") is not None:
        return note["id"] == found["id"]
    return bool(client.owner) and note.get("owner") == client.owner


def _create_once(
    client: AdditivApi, payload: dict[str, Any], inp: m.ContactCreate, link: m.ExternalConnection
) -> Output:
    """The create call, with a "creating" note that outlives a lost answer.

    An earlier "creating" note means an earlier create's outcome was never learnt: it stays (whatever
    this attempt learns, that contact may exist). A fresh note is dropped when additiv refuses the
    create, since then nothing was made.
    """
    earlier = client.links.pending(link)
    if earlier is None:
        client.links.creating(link, inp.username, client.owner)
    try:
        return _created(client.send("additiv.contacts.create", payload))
    except PermanentStepError as exc:
        if exc.outcome_unknown:
            raise
        if is_username_not_unique(exc) and (earlier is not None or client.attempt.earlier_outcome_unknown):
            raise PermanentStepError(_probably_ours(inp, link, exc), status=exc.status) from exc
        if earlier is None:
            client.links.forget(link)
        raise


def _probably_ours(inp: m.ContactCreate, link: m.ExternalConnection, exc: StepError) -> str:
    return (
        f"additiv refused the create because username {inp.username!r} is taken, probably by the contact an "
        f"earlier attempt of this step created before its answer was lost; nothing was created now. additiv "
        f"offers no look-up by username: find that contact in additiv, add the external connection "
        f"{link.system}/{link.externalId} to it, and retry the run (it will find the contact by that connection). "
        f"additiv said: {exc.message}"
    )


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
    return {"id": noted["id"], "uId": noted.get("uId")}


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
