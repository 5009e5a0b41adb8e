"""BigChange through the vh3 connect REST proxy.

Auth: `X-API-Key: <tenant key>` on every request (BIGCHANGE_API_KEY), base URL
BIGCHANGE_BASE_URL. Docs: shared/api-docs/bigchange-vh3-contacts.txt and
bigchange-vh3-jobs.txt; what the docs leave open (response bodies, error
envelopes) is in shared/reference/bigchange-api.md §2.3 and §2.7, and is read
tolerantly here:

- success is decided on the status alone; creates unwrap `id` from `id`,
  `result.id`, `response.result.id` or `data.id`;
- list responses may be `{items}`, `{result: {items}}` or
  `{response: {result: {items}}}`; outputs are always `{items, pageItemCount}`;
- error text comes from `message`, then RFC 7807 `detail`/`title`, then the body.

Each operation is one line in OPERATIONS; its name is derived from the path
(DESIGN.md: POST /jobs/constraints/create is bigchange.jobs.constraints.create).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from pydantic import BaseModel

from engine.errors import PermanentStepError
from engine.http import ApiClient
from engine.operations import ConnectorContext, Operation, Output
from engine.ratelimit import RateLimit, RequestBudget
from schemas import bigchange as m

AUTH_HINT = "check BIGCHANGE_API_KEY"


def connect(ctx: ConnectorContext) -> ApiClient:
    settings = ctx.settings
    if settings.bigchange_api_key is None or not settings.bigchange_api_key.get_secret_value():
        raise PermanentStepError(
            "BIGCHANGE_API_KEY is not set; set it (and BIGCHANGE_BASE_URL if not the vh3 default), "
            "or start with `make run` without it to use the sandbox"
        )
    key = settings.bigchange_api_key.get_secret_value()
    budget = None
    if settings.bigchange_requests_per_second > 0:
        limit = RateLimit(
            settings.bigchange_requests_per_second, settings.bigchange_burst, settings.rate_limit_max_wait_seconds
        )
        budget = RequestBudget(ctx.redis, "bigchange", key, limit)
    return ApiClient(
        ctx.http,
        settings.bigchange_base_url,
        {"X-API-Key": key},
        ctx.calls,
        read_error=read_error,
        auth_hint=AUTH_HINT,
        budget=budget,
    )


def read_error(response: httpx.Response) -> str:
    """The most useful text in an error body, whichever envelope it came in."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "detail", "title", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    if isinstance(body, str) and body:
        return body[:500]
    return response.text[:500]


def _unwrap(body: Any) -> Any:
    """Strip the `response`/`result` wrappers the proxy may add.

    Only a wrapper that is the sole key is stripped, so a record that merely has
    a field called `result` (a job's outcome, say) is kept whole.
    """
    for key in ("response", "result"):
        if isinstance(body, dict) and set(body) == {key} and isinstance(body[key], dict):
            body = body[key]
    return body


def created_id(body: Any) -> Any:
    for candidate in (body, _unwrap(body), body.get("data") if isinstance(body, dict) else None):
        if isinstance(candidate, dict) and candidate.get("id") is not None:
            return candidate["id"]
    return None


def as_list(body: Any) -> Output:
    inner = _unwrap(body)
    if isinstance(inner, list):
        return {"items": inner, "pageItemCount": len(inner)}
    items = inner.get("items") if isinstance(inner, dict) else None
    items = items if isinstance(items, list) else []
    count = inner.get("pageItemCount") if isinstance(inner, dict) else None
    return {"items": items, "pageItemCount": count if isinstance(count, int) else len(items)}


def as_record(body: Any) -> Output:
    inner = _unwrap(body)
    if inner is None:
        return {}
    return inner if isinstance(inner, dict) else {"result": inner}


def as_created(body: Any) -> Output:
    new_id = created_id(body)
    if new_id is None:
        # The create succeeded but we cannot chain from it; a retry must reconcile, not re-create.
        raise PermanentStepError(
            f"BigChange answered the create without an id: {str(body)[:300]}", outcome_unknown=True
        )
    return {**as_record(body), "id": new_id}


def _payload(inp: BaseModel) -> dict[str, Any]:
    return inp.model_dump(mode="json", exclude_none=True)


def rest(
    method: str,
    path: str,
    model: type[BaseModel],
    shape: Callable[[Any], Output] = as_record,
    *,
    find_existing: Callable[[ApiClient, Any], Output | None] | None = None,
    natural_key: tuple[str, ...] = (),
) -> Operation:
    """Declare one vh3 endpoint as an operation: GET sends the input as query, POST as JSON."""

    def call(api: ApiClient, inp: BaseModel) -> Output:
        if method == "GET":
            return shape(api.request("GET", path, params=_payload(inp)))
        return shape(api.request("POST", path, json_body=_payload(inp)))

    return Operation(
        name="bigchange" + path.replace("/", "."),
        input=model,
        call=call,
        connect=connect,
        find_existing=find_existing,
        natural_key=natural_key,
        summary=f"{method} {path}",
    )


def _matching(items: list[dict[str, Any]], **expected: Any) -> list[dict[str, Any]]:
    """Items whose fields equal every expected value that is set."""
    wanted = {key: value for key, value in expected.items() if value is not None}
    return [item for item in items if all(item.get(key) == value for key, value in wanted.items())]


def _first(items: list[dict[str, Any]], **expected: Any) -> Output | None:
    for item in _matching(items, **expected):
        return {**item, "id": item["id"]}
    return None


def find_contact(api: ApiClient, inp: m.ContactCreate) -> Output | None:
    """A contact with the same reference (and name): what an earlier attempt may have created."""
    if not inp.reference:
        return None
    found = as_list(api.request("POST", "/contacts/list", json_body={"reference": [inp.reference], "pageSize": 100}))
    return _first(found["items"], reference=inp.reference, name=inp.name)


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
    found = as_list(api.request("POST", "/jobs/list", json_body=_payload(window)))
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


OPERATIONS = [
    rest("GET", "/contacts/contact", m.ContactGet),
    rest(
        "POST", "/contacts/create", m.ContactCreate, as_created, find_existing=find_contact, natural_key=("reference",)
    ),
    rest("POST", "/contacts/edit", m.ContactEdit),
    rest("POST", "/contacts/list", m.ContactList, as_list),
    rest("POST", "/contacts/on_stop", m.ContactOnStop),
    rest("POST", "/contacts/unstop", m.ContactUnstop),
    rest("GET", "/jobs/job", m.JobGet),
    rest("POST", "/jobs/create", m.JobCreate, as_created, find_existing=find_job, natural_key=("reference",)),
    rest("POST", "/jobs/list", m.JobList, as_list),
    rest("POST", "/jobs/scheduling", m.JobScheduling),
    rest(
        "POST",
        "/jobs/constraints/create",
        m.ConstraintCreate,
        as_created,
        find_existing=find_constraint,
        natural_key=("jobId", "type", "constraintAt", "entityId"),
    ),
    rest("POST", "/jobs/constraints/list", m.ConstraintList, as_list),
]
