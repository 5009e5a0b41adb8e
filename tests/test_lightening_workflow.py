"""The shipped trade-enquiry workflow end to end: webhook -> ledger -> RQ -> Lightening and BigChange simulators.

Real Redis, real RQ workers (`drain`), real HTTP to the simulators, as in tests/test_pipeline.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import SECRETS, Drain, Sandbox, post_hook

EXAMPLE = Path(__file__).parents[1] / "examples" / "trade-enquiry.json"
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def enquiry(**changes: Any) -> bytes:
    return json.dumps(json.loads(EXAMPLE.read_text()) | changes).encode()


def submit(client: FlaskClient, body: bytes) -> dict[str, Any]:
    response = post_hook(client, "trade-enquiry", body, **TOKEN)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def run_of(client: FlaskClient, admin: dict[str, str], accepted: dict[str, Any]) -> dict[str, Any]:
    (run_id,) = accepted["runs"]
    return client.get(f"/api/runs/{run_id}", headers=admin).get_json()


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


def test_a_trade_enquiry_files_the_contact_in_lightening_and_raises_the_job(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, simulator: Any, admin: dict[str, str]
) -> None:
    lightening = simulator("/lightening")
    # Given the example trade enquiry
    accepted = submit(client, EXAMPLE.read_bytes())
    # When the workers have run
    drain()
    run = run_of(client, admin, accepted)
    # Then the person is a contact of customer 1 in Lightening, and the site has a BigChange job
    assert run["status"] == "succeeded", run
    (contact,) = lightening.state()["contacts"]
    assert (contact["customer_id"], contact["name"], contact["email"], contact["role"], contact["locale"]) == (
        1,
        "Priya Patel",
        "priya.patel@acme-property.example",
        "Site manager",
        "en_GB",
    )
    assert step(run, "filed")["output"] == {"id": int(contact["id"]), "msg": "Successfully created entity."}
    (site,) = sandbox.state()["contacts"]
    (job,) = sandbox.state()["jobs"]
    assert (
        site["extraInformation"] == f"Site contact: Priya Patel, +44 20 7946 0321 (Lightening contact {contact['id']})"
    )
    assert (job["contactId"], job["typeId"], job["reference"]) == (site["id"], 42, f"TRADE-{accepted['event_id']}")
    (call,) = lightening.calls("/contact")
    assert call["method"] == "POST" and "create_method" not in call["json"]


def test_the_enquiry_form_of_the_web_enquiry_workflow_does_not_reach_lightening(
    client: FlaskClient, drain: Drain, simulator: Any
) -> None:
    lightening = simulator("/lightening")
    web = (Path(__file__).parents[1] / "examples" / "web-enquiry.json").read_bytes()
    assert post_hook(client, "webform", web, **TOKEN).status_code == 202
    drain()
    assert lightening.calls() == []


def test_a_lightening_create_whose_answer_was_lost_is_reconciled_not_repeated(
    client: FlaskClient, drain: Drain, simulator: Any, admin: dict[str, str]
) -> None:
    lightening = simulator("/lightening")
    # Given Lightening files the contact but a 500 hides that from us
    lightening.fault("/contact", method="POST", status=500, when="after")
    accepted = submit(client, enquiry())
    drain()
    run = run_of(client, admin, accepted)
    # Then the retry lists the customer's contacts, finds it by email and name, and makes no second one
    assert run["status"] == "succeeded", run
    first, second = step(run, "filed")["attempts"]
    assert (first["outcome_unknown"], second["reconciled"]) == (True, True)
    (contact,) = lightening.state()["contacts"]
    assert step(run, "filed")["output"]["id"] == int(contact["id"])
    assert [(c["method"], c["query"]) for c in lightening.calls("/contact")][1] == ("GET", {"customer_id[]": "1"})


def test_a_contact_lightening_refuses_fails_the_run_naming_the_field(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, simulator: Any, admin: dict[str, str]
) -> None:
    lightening = simulator("/lightening")
    # Given an enquiry for a customer the account does not own (Lightening answers 200, result false)
    accepted = submit(client, enquiry(customer_id=9))
    drain()
    run = run_of(client, admin, accepted)
    # Then the run fails at once with Lightening's words for that field, and nothing reaches BigChange
    assert run["status"] == "failed"
    (attempt,) = step(run, "filed")["attempts"]
    assert attempt["error_class"] == "permanent"
    assert attempt["error"] == (
        "Lightening refused to create the contact: customer_id: Customer is not associated with your account."
    )
    assert lightening.state()["contacts"] == [] and sandbox.calls() == []


def test_the_body_can_go_as_a_form_for_a_deployment_that_wants_one(
    client: FlaskClient, services: Any, drain: Drain, sandbox: Sandbox, simulator: Any, admin: dict[str, str]
) -> None:
    # Given a deployment set to LIGHTENING_BODY_ENCODING=form (the encoding is unconfirmed upstream)
    services.settings = services.settings.model_copy(update={"lightening_body_encoding": "form"})
    lightening = simulator("/lightening")
    accepted = submit(client, EXAMPLE.read_bytes())
    drain()
    # Then the contact is created the same way, from form fields
    assert run_of(client, admin, accepted)["status"] == "succeeded"
    (contact,) = lightening.state()["contacts"]
    assert contact["name"] == "Priya Patel" and contact["customer_id"] == 1
    (call,) = [c for c in step(run_of(client, admin, accepted), "filed")["attempts"][0]["calls"]]
    assert call["body"]["name"] == "Priya Patel" and call["body"]["customer_id"] == "1"
