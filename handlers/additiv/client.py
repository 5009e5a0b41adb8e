"""The additiv client for one attempt: auth, routes (with ADDITIV_ROUTES), and errors read once.

See the package docstring for what is confirmed and what is configurable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from engine.errors import PermanentStepError, StepError
from engine.http import ApiClient
from engine.operations import ConnectorContext, Output
from handlers.additiv.links import LinkNotes

AUTH_HINT = "check ADDITIV_TOKEN (a DFS access token; they expire)"
USERNAME_NOT_UNIQUE = "UsernameNotUnique"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ROUTE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*)$")

# Operation -> "METHOD /path"; CONFIRMED are quoted verbatim by the docs, the rest inferred.
ROUTES: dict[str, str] = {
    "additiv.contacts.create": "POST /v1.0/contacts",
    "additiv.contacts.details.get": "GET /v1.0/contacts/{contactId}/details",
    "additiv.contacts.details.patch": "PATCH /v1.0/contacts/{contactId}/details",
    "additiv.contacts.details.put": "PUT /v1.0/contacts/{contactId}/details",
    "additiv.contacts.details.change_history.search": "GET /v1.1/contacts/{contactId}/details/change-history/search",
    "additiv.contacts.external_connections.list": "GET /v1.0/contacts/{contactId}/external-connections",
    "additiv.contacts.external_connections.add": "POST /v1.0/contacts/{contactId}/external-connections",
    "additiv.contacts.external_connections.find": "GET /v1.0/contacts/external-connections",
    "additiv.contacts.username.get": "GET /v1.0/contacts/{contactId}/username",
    "additiv.contacts.username.put": "PUT /v1.0/contacts/{contactId}/username",
    "additiv.contacts.change_requests.search": "POST /v1.0/contacts/change-requests/search",
    "additiv.contacts.change_requests.statuses": "GET /v1.0/contacts/change-requests/statuses",
    "additiv.contacts.change_requests.get": "GET /v1.1/contacts/{contactId}/change-requests/{changeRequestId}",
    "additiv.contacts.change_requests.review": (
        "POST /v1.0/contacts/{contactId}/change-requests/{changeRequestId}/review"
    ),
    "additiv.contacts.pending_change_request.check": "GET /v1.1/contacts/{contactId}/pending-change-request/check",
    "additiv.contacts.export": "POST /v1.0/contacts/export",
    "additiv.contacts.export.get": "GET /v1.0/contacts/export/{exportJobId}",
    "additiv.legalentities.create": "POST /v1.1/legalentities",
    "additiv.legalentities.details.get": "GET /v1.0/legalentities/{legalEntityId}/details",
    "additiv.legalentities.details.put": "PUT /v1.0/legalentities/{legalEntityId}/details",
}
CONFIRMED = frozenset(
    {
        "additiv.contacts.details.change_history.search",
        "additiv.contacts.change_requests.search",
        "additiv.contacts.change_requests.get",
        "additiv.contacts.pending_change_request.check",
        "additiv.contacts.export",
        "additiv.legalentities.create",
        "additiv.legalentities.details.get",
    }
)
Route = tuple[str, str]
# Fields an ADDITIV_ROUTES override may move into the path: the docs mark the look-up's system and
# externalId required without saying query or path (reference notes §3.2, UNCONFIRMED).
PATH_PARAMETERS: dict[str, frozenset[str]] = {
    "additiv.contacts.external_connections.find": frozenset({"system", "externalId"}),
}


@dataclass
class AttemptState:
    """What the engine told this attempt: `earlier_outcome_unknown` is set when it asked to reconcile
    (it calls the operation's find_existing only when an earlier attempt may have been carried out)."""

    earlier_outcome_unknown: bool = False


@dataclass(frozen=True)
class AdditivApi:
    """The attempt's ApiClient, the routes in force, and the notes that keep creates single.

    `owner` ("run:step") marks the notes this step writes, so a later attempt knows its own;
    `export_query_encoding` is ADDITIV_EXPORT_QUERY_ENCODING (json or text).
    """

    api: ApiClient
    routes: Mapping[str, Route]
    links: LinkNotes
    owner: str = ""
    attempt: AttemptState = field(default_factory=AttemptState)
    export_query_encoding: str = "json"

    def send(self, name: str, fields: dict[str, Any], *, in_body: bool | None = None) -> Any:
        """Call operation `name`: path parameters filled from `fields`, the rest as query or JSON body.

        Args:
            in_body: where the remaining fields go; default: the query for GET/DELETE, else the body
                (change-history search is documented as a GET with a JSON body).
        """
        method, template = self.routes[name]
        rest = dict(fields)
        # Percent-encoded, "/" too: an externalId moved into the path (ADDITIV_ROUTES) stays one segment.
        path = _PLACEHOLDER.sub(lambda match: quote(str(rest.pop(match.group(1))), safe=""), template)
        if in_body is None:
            in_body = method not in ("GET", "DELETE")
        if in_body:
            return self.api.request(method, path, json_body=rest)
        return self.api.request(method, path, params=rest)


def connect(ctx: ConnectorContext) -> AdditivApi:
    settings = ctx.settings
    if not settings.additiv_base_url:
        raise PermanentStepError(
            "ADDITIV_BASE_URL is not set; set it to your DFS host (with any API-gateway prefix), "
            "or start with `make run` without ADDITIV_TOKEN to use the sandbox"
        )
    token = settings.additiv_token.get_secret_value() if settings.additiv_token else ""
    if not token:
        raise PermanentStepError("ADDITIV_TOKEN is not set; set it to a DFS access token for your client app")
    headers = {"Authorization": f"Bearer {token}"}
    if settings.additiv_accept_language:
        headers["Accept-Language"] = settings.additiv_accept_language
    api = ApiClient(
        ctx.http,
        settings.additiv_base_url,
        headers,
        ctx.calls,
        read_error=read_error,
        auth_hint=AUTH_HINT,
        deadline=ctx.deadline,
        secrets=(token,),  # an echo of the bare token is caught too, not only "Bearer <token>"
    )
    links = LinkNotes(ctx.redis, settings.additiv_base_url)
    owner = f"{ctx.run_id}:{ctx.step_id}" if ctx.run_id else ""
    routes = resolve_routes(settings.additiv_routes)
    return AdditivApi(api, routes, links, owner, export_query_encoding=settings.additiv_export_query_encoding)


def resolve_routes(overrides: Mapping[str, str]) -> dict[str, Route]:
    """The default routes with ADDITIV_ROUTES applied; a bad override is refused, naming it.

    An override must use every placeholder of the default route, and may add only those in
    PATH_PARAMETERS (fields the docs leave between query and path); the rest go as before.
    """
    routes = {name: _split(route) for name, route in ROUTES.items()}
    for name, route in overrides.items():
        if name not in ROUTES:
            raise PermanentStepError(f"ADDITIV_ROUTES names {name!r}, which is not an additiv operation")
        match = _ROUTE.fullmatch(route.strip())
        if match is None:
            raise PermanentStepError(f'ADDITIV_ROUTES[{name!r}] must look like "PUT /v1.0/..." (got {route!r})')
        required = set(_PLACEHOLDER.findall(ROUTES[name]))
        optional = PATH_PARAMETERS.get(name, frozenset())
        used = set(_PLACEHOLDER.findall(match.group(2)))
        if not required <= used <= required | optional:
            raise PermanentStepError(
                f"ADDITIV_ROUTES[{name!r}] {_placeholder_rule(required, optional)} (got {route!r})"
            )
        routes[name] = (match.group(1), match.group(2))
    return routes


def _placeholder_rule(required: set[str], optional: frozenset[str]) -> str:
    def braces(names: Iterable[str]) -> str:
        return ", ".join(f"{{{p}}}" for p in sorted(names))

    if not optional:
        return f"must use exactly {braces(required) or 'no placeholders'}"
    rule = f"must use {braces(required)} and may use " if required else "may use "
    return rule + f"{braces(optional)}, and no other placeholder"


def _split(route: str) -> Route:
    method, _, path = route.partition(" ")
    return method, path


def read_error(response: httpx.Response) -> str:
    """additiv's ApiError in words, with its correlationId; otherwise the body's text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and (body.get("message") or body.get("code")):
        return describe_api_error(body)
    return response.text[:500] or response.reason_phrase


def describe_api_error(body: Mapping[str, Any]) -> str:
    code, sub_code, message = body.get("code"), body.get("subCode"), body.get("message") or ""
    if sub_code == USERNAME_NOT_UNIQUE:
        text = (
            f"{USERNAME_NOT_UNIQUE}: the username (or the email, where they are coupled) is already used by "
            f"another contact; choose another ({message})"
        )
    else:
        label = ": ".join(str(part) for part in (code, sub_code) if part and part != "NA")
        text = f"{label}: {message}" if label else message
    if body.get("properties"):
        text += f" {body['properties']}"
    if body.get("correlationId"):
        text += f" (additiv correlationId {body['correlationId']})"
    return text


def is_username_not_unique(exc: StepError) -> bool:
    """additiv refused the request because the username (or the email coupled with it) is taken."""
    return isinstance(exc, PermanentStepError) and f"{USERNAME_NOT_UNIQUE}:" in exc.message


def as_record(body: Any) -> Output:
    if body is None:
        return {}
    return body if isinstance(body, dict) else {"result": body}


def fields_of(inp: BaseModel) -> dict[str, Any]:
    return inp.model_dump(mode="json", exclude_none=True)
