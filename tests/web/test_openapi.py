"""/api/openapi.json: generated from the pydantic models, covering every route, and held to by the API.

The schemathesis run generates valid and invalid inputs for every operation
and checks that none answers 500 and every answer matches the document.
It is kept small (a few dozen examples per operation) so it stays a test, not a soak.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.openapi import ROUTES, document
from schemas.settings import PROJECT_ROOT
from tests.conftest import ADMIN_TOKEN, SECRETS, Drain, post_hook


def test_the_document_is_public_and_names_every_api_route(client: FlaskClient, app: Flask) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    # Every URL under /api/, whichever blueprint serves it (replay and direct runs live in web.triggers)
    served = {
        (method, rule.rule.replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.rule != "/api/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert ("POST", "/api/events/{event_id}/replay") in served and ("POST", "/api/workflows/{name}/run") in served
    assert served == documented
    assert {route.path for route in ROUTES} == set(document["paths"])


def test_replay_and_direct_runs_are_described_by_their_models(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    replay = paths["/api/events/{event_id}/replay"]["post"]
    assert replay["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReplayIn"}
    assert set(replay["responses"]) >= {"200", "202", "404", "409", "422"}
    run = paths["/api/workflows/{name}/run"]["post"]
    assert run["responses"]["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RunOut"}
    assert [(p["name"], p["in"]) for p in run["parameters"]] == [
        ("name", "path"),
        ("wait", "query"),
        ("Idempotency-Key", "header"),
    ]
    assert {"bearerAuth": []} in run["security"] and {} in run["security"]  # a source's own credentials also do


def test_an_id_that_cannot_exist_is_404_without_a_query(client: FlaskClient, admin: dict[str, str]) -> None:
    # PostgreSQL refuses NUL in text: reaching the database with it would be a 500
    for event_id in ("a%00b", "x%20y", "e" * 41):
        response = client.post(f"/api/events/{event_id}/replay", headers=admin)
        assert response.status_code == 404 and response.get_json()["error"].startswith("no event")


def test_query_parameters_come_from_the_same_models_the_api_validates(client: FlaskClient) -> None:
    operation = client.get("/api/openapi.json").get_json()["paths"]["/api/runs"]["get"]
    names = [parameter["name"] for parameter in operation["parameters"]]
    assert names == ["status", "workflow", "source", "event_id", "since", "until", "q", "limit", "before"]
    status = next(p for p in operation["parameters"] if p["name"] == "status")
    assert status["schema"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]


OPERATIONS = [(route.method.upper(), route.path) for route in ROUTES]
JSON = "application/json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # A generated ?wait=N must not hold a call for N seconds: no worker runs here, so no run ever finishes
    return {"direct_run_max_wait_seconds": 0.01}


@pytest.fixture(scope="module")
def api_schema() -> schemathesis.BaseSchema:
    """Loaded (and checked against the OpenAPI spec) once: that is the slow part."""
    return schemathesis.openapi.from_dict(document())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_input_makes_the_api_fail(
    api_schema: schemathesis.BaseSchema, app: Flask, client: FlaskClient, method: str, path: str, mode: GenerationMode
) -> None:
    # Given some data, so that lists have rows and ids have something to miss
    body = json.dumps({"submission_id": "s-1", "name": "Jane", "email": "j@example.com"}).encode()
    post_hook(client, "webform", body, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]})
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def holds(case: schemathesis.Case) -> None:
        # In-process (WSGI) calls to this test's app: an operation looked up once keeps the app it was found with
        response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, app=app)
        case.validate_response(response, checks=CHECKS)

    holds()


def test_real_replay_and_direct_run_answers_match_the_document(
    api_schema: schemathesis.BaseSchema, app: Flask, client: FlaskClient, drain: Drain
) -> None:
    # Given a stored event (random inputs above almost never name a real event or workflow)
    example = json.loads((PROJECT_ROOT / "examples" / "web-enquiry.json").read_text())
    body = json.dumps(example).encode()
    event_id = post_hook(client, "webform", body, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}).get_json()["event_id"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    # When it is replayed, and a workflow is run directly, then asked for again once a worker has finished it
    replay = api_schema["/api/events/{event_id}/replay"]["POST"]
    run = api_schema["/api/workflows/{name}/run"]["POST"]
    body = {**example, "submission_id": "d-1"}
    direct = {"path_parameters": {"name": "web-enquiry"}, "body": body, "media_type": JSON}
    again = {**admin, "Idempotency-Key": "zap-1"}
    cases = [
        (replay.Case(path_parameters={"event_id": event_id}, body={"workflow": "web-enquiry"}, media_type=JSON), admin),
        (run.Case(**direct), again),
    ]
    answers = [(case, case.call(headers=headers, app=app)) for case, headers in cases]
    drain()
    answers.append((run.Case(**direct), run.Case(**direct).call(headers=again, app=app)))

    # Then every answer is the documented one
    for case, response in answers:
        case.validate_response(response, checks=CHECKS)
    assert [response.status_code for _, response in answers] == [202, 202, 200]
    replayed, queued, finished = (response.json() for _, response in answers)
    assert replayed["event_id"] == event_id and len(replayed["runs"]) == 1 and set(replayed) == {"event_id", "runs"}
    assert queued["status"] == "queued" and finished["id"] == queued["id"] and finished["status"] == "succeeded"
