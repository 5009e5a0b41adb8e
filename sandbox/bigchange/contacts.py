"""Handlers for contacts, their site access hours, and contact groups: `(sim, params) -> (status, body)`."""

from __future__ import annotations

from sandbox.bigchange.contracts import CONTACT_DETAILS, DAYS
from sandbox.bigchange.state import (
    BigChangeSandbox,
    Record,
    Reply,
    checked_window,
    created_within,
    find,
    page,
    problem,
)


def check_contact_refs(sim: BigChangeSandbox, p: Record) -> None:
    if "groupId" in p:
        find(sim.records.contact_groups, "Contact group", p["groupId"])
    if "parentId" in p:
        find(sim.records.contacts, "Contact", p["parentId"])


def stop_targets(sim: BigChangeSandbox, contact: Record, applies_to: str) -> list[Record]:
    children = [c for c in sim.records.contacts.values() if c["parentId"] == contact["id"]]
    return [contact, *children] if applies_to == "contactAndChildren" else [contact]


def contacts_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, find(sim.records.contacts, "Contact", p["contactId"])


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


def _listed(contact: Record, p: Record) -> bool:
    """Does `contact` pass every filter given in the list request?"""
    return (
        contact["name"].casefold().startswith(p.get("name", "").casefold())
        and all(key not in p or contact[key] in p[key] for key in ("reference", "id", "parentId", "groupId"))
        and ("status" not in p or contact["status"] == p["status"])
    )


def contacts_list(sim: BigChangeSandbox, p: Record) -> Reply:
    start, end = checked_window(p)
    items = [c for c in sim.records.contacts.values() if created_within(c, start, end) and _listed(c, p)]
    by_name = p["sortBy"] == "name"
    items.sort(
        key=lambda c: (c["name"].casefold() if by_name else c["createdAt"], c["id"]),
        reverse=p["direction"] == "descending",
    )
    return 200, page(items, p)


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


# --- site access hours ------------------------------------------------------------------------------


def access_hours_list(sim: BigChangeSandbox, p: Record) -> Reply:
    contact = find(sim.records.contacts, "Contact", p["contactId"])
    return 200, page(sim.records.access_hours.get(contact["id"], []), p)


def access_hours_update(sim: BigChangeSandbox, p: Record) -> Reply:
    """Replace the contact's hours; each period must end after it starts and not overlap another that day."""
    contact = find(sim.records.contacts, "Contact", p["contactId"])
    periods = sorted(p["body"], key=lambda h: (DAYS.index(h["dayOfWeek"]), h["startTime"]))
    for index, hours in enumerate(periods):
        if hours["endTime"] <= hours["startTime"]:
            raise problem(422, f"Access hours on {hours['dayOfWeek']} must end after they start")
        earlier = periods[index - 1] if index else None
        if earlier and earlier["dayOfWeek"] == hours["dayOfWeek"] and hours["startTime"] < earlier["endTime"]:
            raise problem(422, f"Access hours on {hours['dayOfWeek']} overlap")
    sim.records.access_hours[contact["id"]] = [{"contactId": contact["id"], **hours} for hours in periods]
    return 204, None


# --- contact groups ---------------------------------------------------------------------------------


def contact_groups_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, find(sim.records.contact_groups, "Contact group", p["contactGroupId"])


def contact_groups_create(sim: BigChangeSandbox, p: Record) -> Reply:
    # Names are not unique in BigChange (which is why the connector reconciles by name).
    ident = sim.records.new_id("contact_group")
    sim.records.contact_groups[ident] = {"id": ident, "name": p["name"], "createdAt": sim.now_text()}
    return 201, {"id": ident}


def contact_groups_list(sim: BigChangeSandbox, p: Record) -> Reply:
    items = sorted(sim.records.contact_groups.values(), key=lambda g: g["id"], reverse=p["direction"] == "descending")
    return 200, page(items, p)


def contact_groups_update(sim: BigChangeSandbox, p: Record) -> Reply:
    find(sim.records.contact_groups, "Contact group", p["contactGroupId"])["name"] = p["name"]
    return 204, None
