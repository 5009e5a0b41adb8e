"""How the simulator shows its records: the documented response shapes, paging and date windows."""

from __future__ import annotations

import copy
import math
from typing import Any

from sandbox.additiv.state import STATUSES, AdditivSandbox, Record, flatten


def contact_ref(sim: AdditivSandbox, contact_id: int) -> Record:
    contact = sim.tenant.contacts.get(contact_id) or {"id": contact_id, "uId": None, "details": {}}
    name = flatten(contact["details"]).get("personalInformation.displayName") or contact.get("username")
    return {"id": contact["id"], "uId": contact["uId"], "name": name}


def status(status_id: int, language: str) -> Record:
    english, german = STATUSES[status_id]
    return {"id": status_id, "name": german if language == "de" else english}


def member(person: Record | None, uid_key: str) -> Record | None:
    return None if person is None else {uid_key: person["uid"], "name": person["name"]}


def change_request_view(sim: AdditivSandbox, request: Record, language: str, *, full: bool) -> Record:
    """v1.1 get (`full`: members as {uId, name}, with details) or a search row (members as {uid, name})."""
    key = "uId" if full else "uid"
    view = {
        "id": request["id"],
        "contact": contact_ref(sim, request["contactId"]),
        "status": status(request["statusId"], language),
        "createDate": request["createDate"],
        "initiatorMember": member(request["initiatorMember"], key),
        "reviewDate": request["reviewDate"],
        "reviewMember": member(request["reviewMember"], key),
    }
    if full:
        view = {"id": request["id"], "uId": request["uId"], **view}
        view.update(initiatorComment=request["initiatorComment"], reviewComment=request["reviewComment"])
        view["details"] = copy.deepcopy(request["details"])
    return view


def paged(rows: list[Record], params: Record) -> Record:
    size = params["pageSize"]
    start = (params["page"] - 1) * size
    return {
        "results": rows[start : start + size],
        "page": params["page"],
        "pageSize": size,
        "pageCount": math.ceil(len(rows) / size),
        "totalCount": len(rows),
    }


def within(text: str | None, params: Record, start: str, end: str) -> bool:
    if params.get(start) is None and params.get(end) is None:
        return True
    if text is None:
        return False
    return (start not in params or text >= utc(params[start])) and (end not in params or text <= utc(params[end]))


def utc(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sortable(value: Any) -> tuple[int, str]:
    """Nulls first, then by text (ids zero-padded); members by uid."""
    if isinstance(value, dict):
        value = value.get("uid")
    return (0, "") if value is None else (1, f"{value:012d}" if isinstance(value, int) else str(value))
