"""BigChange through the vh3 connect REST proxy.

Auth: `X-API-Key: <tenant key>` on every request (BIGCHANGE_API_KEY), base URL
BIGCHANGE_BASE_URL; every call draws on one request budget per key shared by all
workers (BIGCHANGE_REQUESTS_PER_SECOND, BIGCHANGE_BURST). Docs:
shared/api-docs/bigchange-vh3-contacts.txt and bigchange-vh3-jobs.txt; what they
leave open is in shared/reference/bigchange-api.md and read tolerantly (see
`handlers.bigchange.client`): outputs are the record, `{items, pageItemCount}`
for lists, or the record with `id` for creates.

Hookflow options (never sent to BigChange; marked so in the field tables):

- lists take `paginate: all` to follow every page (pageSize defaults to 1000
  then) up to `max_items` (default 10000); the output adds `pages` and
  `truncated` (true when `max_items`, not the data, ended the list);
- contacts.list and jobs.list take `split_windows: true` to query a
  createdAtFrom-createdAtTo range longer than 12 months as consecutive
  12-month windows, each followed to its last page, merged and deduplicated by
  id; the output adds `windows`;
- contacts.create, contact_groups.create and job_groups.create take
  `upsert: true` to return the record with the same reference (contacts) or
  name (groups) instead of creating another; their output says `created`.

A create retried after an attempt whose outcome is unknown first looks for what
that attempt made, by the natural key in the "Reconciles by" column.

Each operation is one line in OPERATIONS; its name is derived from the path
(DESIGN.md: POST /jobs/constraints/create is bigchange.jobs.constraints.create).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from engine.http import ApiClient
from engine.inspect import output_fields
from engine.operations import Operation, Output
from handlers.bigchange.client import as_created, as_list, as_record, connect, read_error, send
from handlers.bigchange.lists import list_call
from handlers.bigchange.natural_keys import (
    CONSTRAINT_BY_TYPE,
    CONTACT_BY_REFERENCE,
    CONTACT_GROUP_BY_NAME,
    JOB_BY_REFERENCE,
    JOB_GROUP_BY_NAME,
    STOCK_BY_ITEM,
    NaturalKey,
    find_constraint,
    find_contact,
    find_job,
    find_stock,
)
from schemas import bigchange as m

__all__ = [
    "OPERATIONS",
    "as_list",
    "connect",
    "create",
    "find_constraint",
    "find_contact",
    "find_job",
    "find_stock",
    "listing",
    "read_error",
    "rest",
]


def _operation(
    method: str, path: str, model: type[BaseModel], call: Callable[[ApiClient, Any], Output], **extra: Any
) -> Operation:
    return Operation(
        name="bigchange" + path.replace("/", "."),
        input=model,
        call=call,
        connect=connect,
        summary=f"{method} {path}",
        **extra,
    )


def rest(method: str, path: str, model: type[BaseModel], shape: Callable[[Any], Output] = as_record) -> Operation:
    """One vh3 endpoint as an operation: GET sends the input as query, POST as JSON."""

    def call(api: ApiClient, inp: BaseModel) -> Output:
        return shape(send(api, method, path, m.api_payload(inp)))

    # What BigChange answers to a get or an update is not documented (reference notes §2.7, UNCONFIRMED):
    # the output is that answer as it comes, so `workflows check` cannot judge its fields.
    return _operation(method, path, model, call, outputs=None)


# Every list answers in this shape (pages/truncated when paginating, windows with split_windows), so
# `workflows check` can tell `steps.x.output.items` from a typo.
LIST_OUTPUT = output_fields("items", "pageItemCount", "pages", "truncated", "windows")
# A create's answer is documented upstream as `{id}` only; whatever else the proxy sends passes through, and a
# reconciled or upserted create outputs the whole record found. So `id` (and `created`) is all that is sure.
CREATE_OUTPUT = output_fields("id", others=True)


def listing(path: str, model: type[m.Paged]) -> Operation:
    """A POST …/list endpoint, with the `paginate` (and, for date windows, `split_windows`) options."""
    return _operation("POST", path, model, list_call("POST", path), outputs=LIST_OUTPUT)


def create(path: str, model: type[BaseModel], key: NaturalKey | None = None) -> Operation:
    """A POST …/create endpoint whose output has the new `id`, reconciled (and upserted) by `key`."""
    upserts = "upsert" in model.model_fields

    def call(api: ApiClient, inp: Any) -> Output:
        if upserts and inp.upsert and key is not None and key.upsert is not None:
            found = key.upsert(api, inp)
            if found is not None:
                return {**found, "created": False}
        made = as_created(send(api, "POST", path, m.api_payload(inp)))
        return {**made, "created": True} if upserts else made

    def find_existing(api: ApiClient, inp: Any) -> Output | None:
        if key is None or (upserts and inp.upsert):
            return None  # an upsert looks the record up in `call` anyway, on every attempt
        found = key.find(api, inp)
        # Found after a lost answer: this step's earlier attempt made it, so for the workflow it was created.
        return {**found, "created": True} if found is not None and upserts else found

    return _operation(
        "POST",
        path,
        model,
        call,
        find_existing=find_existing if key is not None else None,
        natural_key=key.fields if key is not None else (),
        outputs=CREATE_OUTPUT | ({"created"} if upserts else set()),
    )


OPERATIONS = [
    # Contacts
    rest("GET", "/contacts/contact", m.ContactGet),
    create("/contacts/create", m.ContactCreate, CONTACT_BY_REFERENCE),
    rest("POST", "/contacts/edit", m.ContactEdit),
    listing("/contacts/list", m.ContactList),
    rest("POST", "/contacts/on_stop", m.ContactOnStop),
    rest("POST", "/contacts/unstop", m.ContactUnstop),
    listing("/contacts/site_access_hours_list", m.SiteAccessHoursList),
    rest("POST", "/contacts/site_access_hours_update", m.SiteAccessHoursUpdate),
    # Contact groups
    rest("GET", "/contact_groups/contact_group", m.ContactGroupGet),
    create("/contact_groups/create", m.ContactGroupCreate, CONTACT_GROUP_BY_NAME),
    listing("/contact_groups/list", m.ContactGroupList),
    rest("POST", "/contact_groups/update", m.ContactGroupUpdate),
    # Jobs
    rest("GET", "/jobs/job", m.JobGet),
    create("/jobs/create", m.JobCreate, JOB_BY_REFERENCE),
    rest("POST", "/jobs/edit", m.JobEdit),
    listing("/jobs/list", m.JobList),
    rest("POST", "/jobs/cancel", m.JobCancel),
    rest("POST", "/jobs/start", m.JobStart),
    rest("POST", "/jobs/result", m.JobResult),
    rest("POST", "/jobs/scheduling", m.JobScheduling),
    listing("/jobs/status/history", m.JobStatusHistory),
    # Job constraints
    create("/jobs/constraints/create", m.ConstraintCreate, CONSTRAINT_BY_TYPE),
    rest("POST", "/jobs/constraints/delete", m.ConstraintDelete),
    listing("/jobs/constraints/list", m.ConstraintList),
    # Job stock
    create("/jobs/stock/create", m.StockCreate, STOCK_BY_ITEM),
    rest("POST", "/jobs/stock/delete", m.StockLine),
    rest("POST", "/jobs/stock/get", m.StockLine),
    listing("/jobs/stock/list", m.StockList),
    # Job groups
    create("/job_groups/create", m.JobGroupCreate, JOB_GROUP_BY_NAME),
    rest("POST", "/job_groups/edit", m.JobGroupEdit),
    rest("POST", "/job_groups/job_group", m.JobGroupRef),
    listing("/job_groups/list", m.JobGroupList),
    listing("/job_groups/status_history", m.JobGroupStatusHistory),
    rest("POST", "/job_groups/job_group_results_as_complete", m.JobGroupRef),
    rest("POST", "/job_groups/job_group_results_as_financially_complete", m.JobGroupRef),
    # Job types
    rest("POST", "/job_types/job_types", m.JobTypeGet),
    listing("/job_types/list", m.JobTypeList),
]
