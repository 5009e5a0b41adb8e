"""/api/openapi.json: generated from the pydantic models, covering every route, and held to by the API.

The schemathesis run generates valid and invalid inputs for every operation
and checks that none answers 500 and every answer matches the document.
It is kept small (a few dozen examples per operation) so it stays a test, not a soak.
"""

from __future__ import annotations

import json

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
from tests.conftest import ADMIN_TOKEN, SECRETS, post_hook


def test_the_document_is_public_and_names_every_api_route(client: FlaskClient, app: Flask) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = {
        (method, rule.rule.replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented
    assert {route.path for route in ROUTES} == set(document["paths"])


def test_query_parameters_come_from_the_same_models_the_api_validates(client: FlaskClient) -> None:
    operation = client.get("/api/openapi.json").get_json()["paths"]["/api/runs"]["get"]
    names = [parameter["name"] for parameter in operation["parameters"]]
    assert names == ["status", "workflow", "source", "event_id", "since", "until", "q", "limit", "before"]
    status = next(p for p in operation["parameters"] if p["name"] == "status")
    assert status["schema"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]


OPERATIONS = [(route.method.upper(), route.path) for route in ROUTES]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


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
    api_schema.app = app  # calls go to this test's app in-process (WSGI), not over the network
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def holds(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        case.validate_response(response, checks=CHECKS)

    holds()
