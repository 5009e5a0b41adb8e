"""The shipped new-client workflow end to end: webhook -> ledger -> RQ -> additiv and BigChange simulators.

Real Redis, real RQ workers (`drain`), real HTTP to the simulators, as in tests/test_pipeline.py.
Each test states what a business relies on: one additiv contact per CRM id, whatever fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import SANDBOX_KEY, SECRETS, Drain, Sandbox, post_hook

EXAMPLE = Path(__file__).parents[1] / "examples" / "new-client.json"
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}
CRM_LINK = {"externalId": "CRM-48213", "system": "CRM"}


def onboarding(**changes: Any) -> bytes:
    return json.dumps(json.loads(EXAMPLE.read_text()) | changes).encode()


def submit(client: FlaskClient, body: bytes) -> dict[str, Any]:
    response = post_hook(client, "onboarding", body, **TOKEN)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def run_of(client: FlaskClient, admin: dict[str, str], accepted: dict[str, Any]) -> dict[str, Any]:
    (run_id,) = accepted["runs"]
    return client.get(f"/api/runs/{run_id}", headers=admin).get_json()


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


def created_contacts(additiv: Sandbox) -> list[dict[str, Any]]:
    """Contacts beyond the simulator's seed (contact 1)."""
    return [c for c in additiv.state()["contacts"] if c["id"] != 1]


def test_a_new_client_becomes_a_linked_additiv_contact_with_a_booked_visit(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, simulator: Any, admin: dict[str, str]
) -> None:
    additiv = simulator("/additiv")
    # Given the example onboarding form
    accepted = submit(client, EXAMPLE.read_bytes())
    # When the workers have run
    drain()
    run = run_of(client, admin, accepted)
    # Then the client is one additiv contact, linked to its CRM id, and BigChange has the visit
    assert run["status"] == "succeeded", run
    (contact,) = created_contacts(additiv)
    assert contact["username"] == "tomas.keller@example.ch"
    assert contact["details"]["personalInformation"]["displayName"] == "Tomas Keller"
    assert contact["connections"] == [CRM_LINK]
    output = step(run, "client")["output"]
    assert (output["id"], output["created"], output["externalConnection"]) == (contact["id"], True, CRM_LINK)
    assert [f"{c['method']} {c['path']}" for c in additiv.calls()] == [
        "GET /v1.0/contacts/external-connections",
        "POST /v1.0/contacts",
        f"POST /v1.0/contacts/{contact['id']}/external-connections",
    ]
    (create,) = additiv.calls("/v1.0/contacts")
    assert "externalConnection" not in create["json"] and create["json"]["correlationId"] == accepted["event_id"]
    (visit,) = sandbox.state()["jobs"]
    assert (visit["typeId"], visit["reference"]) == (7, "CLIENT-CRM-48213")


def test_the_same_client_sent_again_finds_the_contact_and_books_nothing(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, simulator: Any, admin: dict[str, str]
) -> None:
    additiv = simulator("/additiv")
    submit(client, onboarding())
    drain()
    # When the adviser sends the form again for the same CRM id (a new submission)
    again = submit(client, onboarding(submission_id="onb-20261122-0043"))
    drain()
    run = run_of(client, admin, again)
    # Then additiv still has one contact for the client, and BigChange got nothing new
    assert run["status"] == "succeeded"
    assert step(run, "client")["output"]["created"] is False
    assert [step(run, s)["status"] for s in ("contact", "visit")] == ["skipped", "skipped"]
    assert len(created_contacts(additiv)) == 1 and len(sandbox.state()["jobs"]) == 1


def test_a_link_that_failed_after_the_create_is_retried_on_the_same_contact(
    client: FlaskClient, drain: Drain, simulator: Any, admin: dict[str, str]
) -> None:
    additiv = simulator("/additiv")
    # Given additiv creates the contact (1001) but is briefly unavailable for the link
    additiv.fault("/v1.0/contacts/1001/external-connections", status=503, times=1)
    accepted = submit(client, onboarding())
    drain()
    run = run_of(client, admin, accepted)
    # Then the retry links the contact it made instead of creating another
    assert run["status"] == "succeeded", run
    first, second = step(run, "client")["attempts"]
    assert first["error_class"] == "transient"
    assert first["error"].startswith("contact 1001 was created but not yet linked to CRM/CRM-48213: HTTP 503")
    assert second["reconciled"] is True
    assert [c["method"] for c in second["calls"]] == ["GET", "GET", "POST"]  # find, the noted contact, link
    (contact,) = created_contacts(additiv)
    assert contact["connections"] == [CRM_LINK]


def test_a_create_whose_answer_was_lost_never_makes_a_second_contact(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, simulator: Any, admin: dict[str, str]
) -> None:
    additiv = simulator("/additiv")
    # Given additiv creates the contact but a 500 hides its id from us
    additiv.fault("/v1.0/contacts", method="POST", status=500, when="after")
    accepted = submit(client, onboarding())
    drain()
    run = run_of(client, admin, accepted)
    # Then the retry's create is refused for the username, and the run stops saying the contact is probably ours
    assert run["status"] == "failed"
    attempts = step(run, "client")["attempts"]
    assert [a["error_class"] for a in attempts] == ["transient", "permanent"]
    error = attempts[1]["error"]
    assert error.startswith(
        "additiv refused the create because username 'tomas.keller@example.ch' is taken, probably by the contact "
        "an earlier attempt of this step created before its answer was lost"
    )
    assert "add the external connection CRM/CRM-48213 to it, and retry the run" in error
    assert "additiv correlationId" in error
    (contact,) = created_contacts(additiv)
    assert contact["connections"] == [] and sandbox.calls() == []
    # When the operator links that contact in additiv and retries the run
    link = client_link(additiv, contact["id"])
    assert link.status_code == 204
    retried = client.post(f"/api/runs/{run['id']}/retry", headers=admin)
    assert retried.status_code in (200, 202), retried.get_json()
    drain()
    run = run_of(client, admin, accepted)
    # Then the run finishes with that contact as its own creation, and BigChange books the visit once
    assert run["status"] == "succeeded", run
    output = step(run, "client")["output"]
    assert (output["id"], output["created"]) == (contact["id"], True)
    assert len(created_contacts(additiv)) == 1
    (visit,) = sandbox.state()["jobs"]
    assert visit["reference"] == "CLIENT-CRM-48213"


def client_link(additiv: Sandbox, contact_id: int) -> Any:
    """What an operator does in additiv: add the CRM connection to the contact."""
    return additiv.control.post(
        f"/v1.0/contacts/{contact_id}/external-connections",
        json=CRM_LINK,
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
    )
