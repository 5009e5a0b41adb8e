"""Finding what a create may already have made: reconciliation and upsert.

Two situations look for an existing record before creating one:

- **reconcile**: an earlier attempt of this step ended with its outcome unknown
  (5xx, read timeout, lost worker), so BigChange may have created the record; the
  runner calls `find_existing` before `call`. Matching is strict (every field we
  sent that identifies the record), because a false match would silently chain a
  workflow onto somebody else's record.
- **upsert** (`upsert: true` on the step): the workflow wants "the contact with
  this reference", whether or not it exists yet. The look-up happens on every
  attempt and matches on the key alone; several matches resolve to the oldest.

BigChange enforces no uniqueness (two contacts may share a reference, two
groups a name), which is why these look-ups exist at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from engine.http import ApiClient
from engine.operations import Output
from handlers.bigchange.client import as_list
from handlers.bigchange.lists import Collected, follow_pages
from schemas import bigchange as m

Finder = Callable[[ApiClient, Any], Output | None]


@dataclass(frozen=True)
class NaturalKey:
    """How a create finds its record: `fields` (for the docs), `find` (reconcile) and `upsert`."""

    fields: tuple[str, ...]
    find: Finder
    upsert: Finder | None = None


def _matching(items: list[dict[str, Any]], **expected: Any) -> list[dict[str, Any]]:
    """Items whose fields equal every expected value that is set."""
    wanted = {key: value for key, value in expected.items() if value is not None}
    return [item for item in items if all(item.get(key) == value for key, value in wanted.items())]


def _first(items: list[dict[str, Any]], **expected: Any) -> Output | None:
    for item in _matching(items, **expected):
        return {**item, "id": item["id"]}
    return None


def _oldest(items: list[dict[str, Any]]) -> Output | None:
    """The match with the lowest id: the one made first, so repeated upserts agree on it."""
    with_ids = [item for item in items if item.get("id") is not None]
    if not with_ids:
        return None
    return dict(min(with_ids, key=lambda item: (str(type(item["id"])), item["id"])))


def _same_name(a: Any, b: Any) -> bool:
    """Names compared as people read them: ignoring case and surrounding spaces."""
    return isinstance(a, str) and isinstance(b, str) and a.strip().casefold() == b.strip().casefold()


def _contacts_with_reference(api: ApiClient, reference: str) -> list[dict[str, Any]]:
    found = as_list(api.request("POST", "/contacts/list", json_body={"reference": [reference], "pageSize": 100}))
    # The API's filter may be looser than ours (prefix, case): keep exact matches only.
    return [item for item in found["items"] if item.get("reference") == reference]


def find_contact(api: ApiClient, inp: m.ContactCreate) -> Output | None:
    """A contact with the same reference and name: what an earlier attempt may have created."""
    if not inp.reference:
        return None
    return _first(_contacts_with_reference(api, inp.reference), name=inp.name)


def upsert_contact(api: ApiClient, inp: m.ContactCreate) -> Output | None:
    """The contact that has this reference, whatever its name is now (the oldest if several do)."""
    return _oldest(_contacts_with_reference(api, inp.reference or ""))


def find_job(api: ApiClient, inp: m.JobCreate) -> Output | None:
    """A job with the same reference for the same contact, created within the last (almost) 12 months."""
    if not inp.reference:
        return None
    now = datetime.now(timezone.utc)
    window = m.JobList(
        createdAtFrom=now - timedelta(days=364),
        createdAtTo=now + timedelta(days=1),
        reference=[inp.reference],
        contactId=[inp.contactId],
        pageSize=100,
    )
    found = as_list(api.request("POST", "/jobs/list", json_body=m.api_payload(window)))
    return _first(found["items"], reference=inp.reference, contactId=inp.contactId, typeId=inp.typeId)


def find_constraint(api: ApiClient, inp: m.ConstraintCreate) -> Output | None:
    """The same constraint type (and instant/entity) already on the job.

    The instant is compared as a time, not as text: the API may echo it with
    milliseconds or +00:00.
    """
    found = as_list(api.request("POST", "/jobs/constraints/list", json_body={"jobId": inp.jobId, "pageSize": 1000}))
    for item in _matching(found["items"], type=inp.type, entityId=inp.entityId):
        if _same_instant(item.get("constraintAt"), inp.constraintAt):
            return {**item, "id": item["id"]}
    return None


def _same_instant(echoed: Any, wanted: datetime | None) -> bool:
    if wanted is None or echoed is None:
        return wanted is None and echoed is None
    try:
        return m.parse_utc(echoed) == wanted
    except ValueError:
        return False


def find_stock(api: ApiClient, inp: m.StockCreate) -> Output | None:
    """A line of the same stock item and planned quantity already on the job.

    A job that should carry two identical lines cannot be told apart from one
    whose second create was lost and retried; the duplicate part order is the
    costlier mistake, so an identical line counts as the one this step made.
    """
    collected = Collected(m.DEFAULT_MAX_ITEMS)
    follow_pages(api, "POST", "/jobs/stock/list", {"jobId": inp.jobId}, collected)
    for item in _matching(collected.items, stockDetailsId=inp.stockDetailsId):
        if _same_quantity(item.get("quantityPlanned"), inp.quantityPlanned):
            return {**item, "id": item["id"]}
    return None


def _same_quantity(echoed: Any, wanted: float) -> bool:
    return isinstance(echoed, (int, float)) and not isinstance(echoed, bool) and float(echoed) == wanted


def group_by_name(list_path: str) -> Finder:
    """A finder for groups, which have no name filter: read every page (bounded) and compare names."""

    def find(api: ApiClient, inp: m.ContactGroupCreate | m.JobGroupCreate) -> Output | None:
        collected = Collected(m.DEFAULT_MAX_ITEMS)
        follow_pages(api, "POST", list_path, {}, collected)
        return _oldest([item for item in collected.items if _same_name(item.get("name"), inp.name)])

    return find


CONTACT_BY_REFERENCE = NaturalKey(("reference",), find_contact, upsert_contact)
JOB_BY_REFERENCE = NaturalKey(("reference",), find_job)
CONSTRAINT_BY_TYPE = NaturalKey(("jobId", "type", "constraintAt", "entityId"), find_constraint)
STOCK_BY_ITEM = NaturalKey(("jobId", "stockDetailsId", "quantityPlanned"), find_stock)
CONTACT_GROUP_BY_NAME = NaturalKey(
    ("name",), group_by_name("/contact_groups/list"), group_by_name("/contact_groups/list")
)
JOB_GROUP_BY_NAME = NaturalKey(("name",), group_by_name("/job_groups/list"), group_by_name("/job_groups/list"))
