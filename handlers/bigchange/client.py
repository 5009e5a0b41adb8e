"""The vh3 proxy's client and the tolerant reading of what it answers.

What the docs leave open (response bodies, error envelopes: reference notes §2.3,
§2.7) is read tolerantly here, once, so every operation behaves the same:

- success is decided on the status alone; creates unwrap `id` from `id`,
  `result.id`, `response.result.id` or `data.id`;
- list responses may be `{items}`, `{result: {items}}` or
  `{response: {result: {items}}}` (or a bare array); outputs are always `{items, pageItemCount}`;
- error text comes from `message`, then RFC 7807 `detail`/`title`, then the body;
  a 404 that does not say what was missing gets the ids the request asked for.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from engine.errors import PermanentStepError
from engine.http import ApiClient
from engine.operations import ConnectorContext, Output
from engine.ratelimit import RateLimit, RequestBudget

AUTH_HINT = "check BIGCHANGE_API_KEY"


def connect(ctx: ConnectorContext) -> ApiClient:
    """The attempt's client: base URL and key from settings, the shared request budget per key."""
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
        deadline=ctx.deadline,
    )


def send(api: ApiClient, method: str, path: str, payload: dict[str, Any]) -> Any:
    """GET sends the payload as query parameters, POST as a JSON body (the docs' two shapes)."""
    if method == "GET":
        return api.request("GET", path, params=payload)
    return api.request(method, path, json_body=payload)


def read_error(response: httpx.Response) -> str:
    """The most useful text in an error body, whichever envelope it came in."""
    message = _message(response)
    if response.status_code == 404:
        asked = _ids_asked_for(response)
        if asked and not any(str(value) in message for value in asked.values()):
            # "Not Found" alone does not tell the person on call which record is missing.
            message = f"{message} (looked up {', '.join(f'{name} {value}' for name, value in asked.items())})"
    return message


def _message(response: httpx.Response) -> str:
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


def _ids_asked_for(response: httpx.Response) -> dict[str, Any]:
    """The `…Id` fields of the request that got this response (query or JSON body)."""
    try:
        request = response.request
    except RuntimeError:  # a response built by hand, with no request attached
        return {}
    fields: dict[str, Any] = dict(request.url.params)
    try:
        body = json.loads(request.content) if request.content else {}
    except ValueError:
        body = {}
    if isinstance(body, dict):
        fields.update(body)
    return {
        name: value
        for name, value in fields.items()
        if name.endswith("Id") and isinstance(value, (int, str)) and not isinstance(value, bool)
    }


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
