"""The operators' JSON API: bearer auth, runs, events, retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from engine.services import Services
from tests.conftest import SECRETS, Drain, Sandbox, post_hook

EXAMPLE = (Path(__file__).parents[2] / "examples" / "web-enquiry.json").read_bytes()
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def submit(client: FlaskClient, submission_id: str = "sub-1") -> dict:
    body = json.loads(EXAMPLE)
    body["submission_id"] = submission_id
    return post_hook(client, "webform", json.dumps(body).encode(), **TOKEN).get_json()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "send Authorization: Bearer <ADMIN_TOKEN>"),
        ({"Authorization": "Basic dGVzdA=="}, "send Authorization: Bearer <ADMIN_TOKEN>"),
        ({"Authorization": "Bearer wrong"}, "invalid admin token"),
    ],
)
def test_every_api_route_needs_the_admin_token(client: FlaskClient, headers: dict, message: str) -> None:
    for method, path in [
        ("get", "/api/runs"),
        ("get", "/api/runs/x"),
        ("post", "/api/runs/x/retry"),
        ("get", "/api/events/x"),
    ]:
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401, path
        assert response.get_json() == {"error": message}


def test_the_api_stays_closed_when_no_admin_token_is_configured(client: FlaskClient, services: Services) -> None:
    services.settings = services.settings.model_copy(update={"admin_token": None})
    response = client.get("/api/runs", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503
    assert "ADMIN_TOKEN is not set" in response.get_json()["error"]


def test_unknown_routes_and_wrong_methods_answer_json(client: FlaskClient, admin: dict) -> None:
    response = client.get("/api/nothing-here", headers=admin)
    assert response.status_code == 404 and "not found" in response.get_json()["error"].lower()
    response = client.get("/hooks/webform")
    assert response.status_code == 405
    assert response.get_json() == {"error": "method not allowed here; use OPTIONS, POST"}


def test_runs_list_newest_first_with_filters_and_pages(client: FlaskClient, admin: dict, drain: Drain) -> None:
    ids = [submit(client, f"sub-{i}")["runs"][0] for i in range(3)]
    listed = client.get("/api/runs", headers=admin).get_json()
    assert [r["id"] for r in listed["runs"]] == ids[::-1]
    assert listed["runs"][0]["workflow"] == "web-enquiry" and listed["runs"][0]["status"] == "queued"

    page = client.get("/api/runs?limit=2", headers=admin).get_json()
    assert [r["id"] for r in page["runs"]] == ids[:0:-1] and page["next_before"] == ids[1]
    rest = client.get(f"/api/runs?limit=2&before={page['next_before']}", headers=admin).get_json()
    assert [r["id"] for r in rest["runs"]] == [ids[0]] and rest["next_before"] is None

    drain()
    assert len(client.get("/api/runs?status=succeeded", headers=admin).get_json()["runs"]) == 3
    assert client.get("/api/runs?status=failed", headers=admin).get_json()["runs"] == []
    assert client.get("/api/runs?workflow=credit-hold", headers=admin).get_json()["runs"] == []


@pytest.mark.parametrize("limit", ["abc", "0", "-1"])
def test_a_bad_limit_is_400(client: FlaskClient, admin: dict, limit: str) -> None:
    response = client.get(f"/api/runs?limit={limit}", headers=admin)
    assert response.status_code == 400 and "limit" in response.get_json()["error"]


def test_unknown_run_and_event_are_404(client: FlaskClient, admin: dict) -> None:
    assert client.get("/api/runs/run_nope", headers=admin).get_json() == {"error": "no run run_nope"}
    assert client.get("/api/events/evt_nope", headers=admin).status_code == 404
    assert client.post("/api/runs/run_nope/retry", headers=admin).status_code == 404


def test_an_event_shows_what_was_received_and_its_runs(client: FlaskClient, admin: dict) -> None:
    accepted = submit(client)
    event = client.get(f"/api/events/{accepted['event_id']}", headers=admin).get_json()
    assert event["runs"] == accepted["runs"]
    assert (event["source"], event["type"], event["key"], event["status"]) == (
        "webform",
        "form.submitted",
        "sub-1",
        "accepted",
    )
    assert json.loads(event["body"])["name"] == "Mrs Jane Jones"
    assert event["headers"]["x-hook-token"] == "[redacted]"


def test_a_rejected_event_is_visible_with_its_reason(client: FlaskClient, admin: dict) -> None:
    rejected = post_hook(client, "webform", b"{not json", **TOKEN).get_json()
    event = client.get(f"/api/events/{rejected['event_id']}", headers=admin).get_json()
    assert event["status"] == "rejected" and "not valid JSON" in event["reason"] and event["body"] == "{not json"


@pytest.mark.parametrize("state", ["queued", "succeeded"])
def test_only_failed_runs_can_be_retried(
    client: FlaskClient, admin: dict, drain: Drain, sandbox: Sandbox, state: str
) -> None:
    run_id = submit(client)["runs"][0]
    if state == "succeeded":
        drain()
    response = client.post(f"/api/runs/{run_id}/retry", headers=admin)
    assert response.status_code == 409
    assert response.get_json() == {"error": f"run {run_id} is {state}; only failed runs can be retried"}


def test_secrets_never_appear_in_api_output(
    client: FlaskClient, admin: dict, drain: Drain, services: Services, sandbox: Sandbox
) -> None:
    accepted = submit(client)
    drain()
    everything = json.dumps(
        [
            client.get(f"/api/runs/{accepted['runs'][0]}", headers=admin).get_json(),
            client.get(f"/api/events/{accepted['event_id']}", headers=admin).get_json(),
        ]
    )
    assert services.settings.bigchange_api_key.get_secret_value() not in everything
    assert SECRETS["WEBFORM_TOKEN"] not in everything


def test_settings_never_render_secrets() -> None:
    from schemas.settings import Settings

    rendered = repr(Settings(admin_token=SecretStr("adm-s3cret"), bigchange_api_key=SecretStr("bc-s3cret")))
    assert "s3cret" not in rendered
