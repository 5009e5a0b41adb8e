"""/api/openapi.json, generated from the pydantic models the API itself validates and answers with.

The route table below is the only hand-written part; a test checks that it
names every /api route Flask serves, and schemathesis checks the running API
against the document (tests/web/test_openapi.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas import api

REF = "#/components/schemas/{model}"
ERRORS = {400: "Invalid input", 401: "Missing or wrong admin token", 503: "ADMIN_TOKEN is not set on the server"}


@dataclass(frozen=True)
class Route:
    method: Literal["get", "post"]
    path: str
    summary: str
    ok: tuple[int, type[BaseModel]]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: dict[int, str] = field(default_factory=dict)
    also: tuple[int, str] | None = None  # a second success status, same body (e.g. 200 for a dry run)
    body_required: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # optional request headers: name -> description
    description: str = ""
    # None: the document's Bearer ADMIN_TOKEN. A route that also takes other credentials lists `{}` (none) too.
    security: tuple[dict[str, list[str]], ...] | None = None


ROUTES: tuple[Route, ...] = (
    Route("get", "/api/runs", "Runs, newest first: filters, search, keyset pages", (200, api.RunList), api.RunQuery),
    Route("get", "/api/runs/{run_id}", "A run with its steps and attempts", (200, api.RunOut), errors={404: "No run"}),
    Route(
        "post",
        "/api/runs/{run_id}/retry",
        "Resume a failed run at its failed step (same id)",
        (202, api.RunOut),
        errors={404: "No run", 409: "The run is not failed"},
    ),
    Route(
        "post",
        "/api/runs/{run_id}/cancel",
        "Cancel a queued or running run",
        (200, api.RunOut),
        errors={404: "No run", 409: "The run has finished"},
    ),
    Route(
        "post",
        "/api/runs/retry",
        "Retry every failed run matching a filter (202; 200 for a dry run)",
        (202, api.BulkRetryOut),
        body=api.BulkRetryIn,
        also=(200, "A dry run: nothing was retried"),
    ),
    Route("get", "/api/events", "Events (accepted and rejected), newest first", (200, api.EventList), api.EventQuery),
    Route(
        "get", "/api/events/{event_id}", "An event as received, with its runs", (200, api.EventOut), errors={404: "No"}
    ),
    Route("get", "/api/workflows", "Loaded workflows and load problems", (200, api.WorkflowList)),
    Route(
        "get",
        "/api/workflows/{name}",
        "A workflow, its definition and record",
        (200, api.WorkflowOut),
        errors={404: "No"},
    ),
    Route(
        "post",
        "/api/workflows/validate",
        "Check a workflow file (JSON here, or the file itself as text/yaml)",
        (200, api.ValidateOut),
        body=api.ValidateIn,
        body_required=True,
    ),
    Route(
        "post",
        "/api/events/{event_id}/replay",
        "Start the event's workflows again (new runs), or read a rejected event again",
        (202, api.ReplayOut),
        body=api.ReplayIn,
        also=(200, "The rejected event, read again, is an event already stored: nothing started"),
        errors={
            404: "No event",
            409: "Its source is gone, or the named workflow does not match it",
            422: "A rejected event that still cannot be accepted",
        },
    ),
    Route(
        "post",
        "/api/workflows/{name}/run",
        "Run one workflow with this JSON body as event.data (202; 200 once finished within ?wait)",
        (202, api.RunOut),
        api.RunWorkflowQuery,
        body=api.RunWorkflowIn,
        also=(200, "The run finished within ?wait"),
        errors={
            401: "Not ADMIN_TOKEN or DIRECT_RUN_TOKEN, nor the credentials of a source listing the workflow",
            404: "No such workflow is loaded",
            413: "The body is over MAX_BODY_BYTES",
            415: "A body type that cannot be read",
            422: "The Idempotency-Key was used before with another body",
            429: "The caller's source is over its rate limit",
            503: "Direct runs are not enabled (no DIRECT_RUN_TOKEN, ADMIN_TOKEN or run_workflows)",
        },
        headers={"Idempotency-Key": "The same key and body again answer with the first run instead of a new one."},
        description="Callers: Bearer ADMIN_TOKEN or DIRECT_RUN_TOKEN (any workflow), or the credentials of a "
        "source whose run_workflows lists it, checked by that source's verify (e.g. its X-Hook-Token or ?token=). "
        "Steps show status and output; attempts are left out.",
        security=({"bearerAuth": []}, {}),
    ),
)


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema["properties"].items():
        options = [option for option in prop.get("anyOf", [prop]) if option.get("type") != "null"]
        value_schema = (
            {k: v for k, v in options[0].items() if k != "title"} if len(options) == 1 else {"anyOf": options}
        )
        if "default" in prop and prop["default"] is not None:
            value_schema["default"] = prop["default"]
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "description": prop.get("description", ""),
                "schema": value_schema,
            }
        )
    return parameters


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _operation(route: Route) -> dict[str, Any]:
    code, model = route.ok
    responses: dict[str, Any] = {str(code): {"description": "OK", "content": _content(model)}}
    if route.also is not None:
        responses[str(route.also[0])] = {"description": route.also[1], "content": _content(model)}
    for status, description in {**ERRORS, **route.errors}.items():
        responses[str(status)] = {"description": description, "content": _content(api.ErrorOut)}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.method + "_" + "_".join(p.strip("{}") for p in route.path.split("/")[2:]),
        "responses": responses,
    }
    if route.description:
        operation["description"] = route.description
    if route.security is not None:
        operation["security"] = list(route.security)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in _path_names(route.path)
    ]
    if route.query is not None:
        parameters += _query_parameters(route.query)
    parameters += [
        {"name": name, "in": "header", "required": False, "description": text, "schema": {"type": "string"}}
        for name, text in route.headers.items()
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": route.body_required, "content": _content(route.body)}
    return operation


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process: it only changes with the code)."""
    models: list[type[BaseModel]] = [api.ErrorOut]
    for route in ROUTES:
        models += [route.ok[1], *(m for m in (route.body,) if m is not None)]
    unique = list(dict.fromkeys(models))
    bodies = {route.body for route in ROUTES}  # what callers send is described as it is validated
    _, definitions = models_json_schema(
        [(model, "validation" if model in bodies else "serialization") for model in unique],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hookflow operators' API",
            "version": "1",
            "description": "Runs, events and workflows; everything the ops console does. Bearer ADMIN_TOKEN.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }
