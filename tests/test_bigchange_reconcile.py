"""Natural keys end to end: a create whose outcome was lost is reconciled, never repeated;
`upsert: true` finds before it creates; and the legacy ContactSave, through the whole service.

Workflows here are test-only (a temporary WORKFLOWS_DIR), each selected by the form's `kind`.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from engine.models import StepAttempt
from engine.recovery import reconcile
from engine.services import Services
from tests.conftest import SANDBOX_KEY, SECRETS, SHIPPED_WORKFLOWS, Drain, Sandbox, claim, post_hook
from tests.test_pipeline import get_run, step

WORKFLOWS = {
    "groups": """
name: groups
on: {source: webform, if: "{{ event.data.kind == 'group' }}"}
steps:
  - id: group
    uses: bigchange.contact_groups.create
    with: {name: "{{ event.data.name }}"}
""",
    "stock": """
name: stock
on: {source: webform, if: "{{ event.data.kind == 'stock' }}"}
steps:
  - id: line
    uses: bigchange.jobs.stock.create
    with: {jobId: "{{ event.data.job }}", stockDetailsId: 10, quantityPlanned: 3}
""",
    "upsert": """
name: upsert
on: {source: webform, if: "{{ event.data.kind == 'upsert' }}"}
steps:
  - id: contact
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}", reference: "{{ event.data.ref }}", upsert: true}
""",
    "legacy": """
name: legacy
on: {source: webform, if: "{{ event.data.kind == 'legacy' }}"}
steps:
  - id: save
    uses: bigchange_webservice.contact_save
    with:
      ContactName: "{{ event.data.name }}"
      ContactReference: "WEB-{{ event.id }}"
      ContactStreet: "{{ event.data.street }}"
      ContactPhone: "{{ event.data.phone }}"
      ContactGroup: Web enquiries
      custom: {Source: website}
      ContactOnStop: "{{ event.data.on_stop | default(0) }}"
""",
}


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", tmp_path)
    for name, text in WORKFLOWS.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.fixture
def webservice(simulator: Any) -> Sandbox:
    return simulator("/bigchange-webservice")


def submit(client: FlaskClient, submission: str, **data: Any) -> dict[str, Any]:
    body = json.dumps({"submission_id": submission, **data}).encode()
    response = post_hook(client, "webform", body, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def lose_the_worker(services: Services, run_id: str, step_id: str, act: Any) -> None:
    """A worker claims the step, makes the call (`act`), and dies before recording anything."""
    services.redis.flushdb()
    assert claim(services, run_id, step_id) is not None
    act()
    with services.db.session() as session:
        attempt = session.scalars(sa.select(StepAttempt).filter_by(run_id=run_id, step_id=step_id)).one()
        attempt.started_at -= timedelta(hours=1)
        session.commit()
    report = reconcile(services)
    assert (report.lost_attempts, report.requeued) == (1, 1)


def bigchange(sandbox: Sandbox, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = sandbox.control.post(path, json=body, headers={"X-API-Key": SANDBOX_KEY})
    response.raise_for_status()
    return response.json()


def test_a_contact_group_made_by_a_lost_worker_is_found_by_name_not_made_again(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a worker created the group and died before recording it
    run_id = submit(client, "g-1", kind="group", name="Web enquiries")["runs"][0]
    made = {}
    lose_the_worker(
        services,
        run_id,
        "group",
        lambda: made.update(bigchange(sandbox, "/contact_groups/create", {"name": "Web enquiries"})),
    )
    # When the run is recovered
    drain()
    # Then it continues with that group: still one of that name
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    lost, recovered = step(run, "group")["attempts"]
    assert lost["outcome_unknown"] and recovered["reconciled"] is True
    assert step(run, "group")["output"] == {**step(run, "group")["output"], "id": made["id"], "created": True}
    assert [g["name"] for g in sandbox.state()["contactGroups"]] == ["Customers", "Web enquiries"]


def test_a_stock_line_whose_answer_was_lost_is_reconciled(
    client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given a job, and BigChange will add the line but the answer is lost
    contact = bigchange(sandbox, "/contacts/create", {"name": "Acme"})["id"]
    job = bigchange(sandbox, "/jobs/create", {"typeId": 42, "contactId": contact})["id"]
    sandbox.fault("/jobs/stock/create", status=500, when="after")
    # When the step runs and is retried
    run_id = submit(client, "s-1", kind="stock", job=job)["runs"][0]
    drain()
    # Then the retry found the line instead of adding a second
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    first, second = step(run, "line")["attempts"]
    assert first["outcome_unknown"] and second["reconciled"]
    (line,) = sandbox.state()["stock"]
    assert step(run, "line")["output"]["id"] == line["id"]


def test_upsert_finds_the_contact_by_reference_every_time(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    first = submit(client, "u-1", kind="upsert", name="Acme", ref="ACME-01")["runs"][0]
    drain()
    second = submit(client, "u-2", kind="upsert", name="Acme Ltd", ref="ACME-01")["runs"][0]
    drain()

    made, found = (step(get_run(client, admin, r), "contact")["output"] for r in (first, second))
    assert (made["created"], found["created"], found["id"]) == (True, False, made["id"])
    assert len(sandbox.state()["contacts"]) == 1
    assert [c["path"] for c in sandbox.calls()] == ["/contacts/list", "/contacts/create", "/contacts/list"]


# --- the legacy web service through the whole service -----------------------------------------


def test_contact_save_succeeds_with_the_id_and_no_credential_is_kept(
    client: FlaskClient, services: Services, drain: Drain, webservice: Sandbox, admin: dict[str, str]
) -> None:
    run_id = submit(client, "l-1", kind="legacy", name="Lucy Margetts", street="23 Maple Avenue", phone="07932 883112")[
        "runs"
    ][0]
    drain()

    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded", run.get("error")
    (contact,) = webservice.state()["contacts"]
    assert step(run, "save")["output"] == {"id": contact["Id"]}
    assert (contact["Phone"], contact["Group"], contact["Custom"]) == (
        "+447932883112",
        "Web enquiries",
        {"Source": "website"},
    )
    (call,) = step(run, "save")["attempts"][0]["calls"]
    assert call["params"]["ContactPhone"] == "+447932883112" and call["params"]["action"] == "ContactSave"
    assert SANDBOX_KEY not in json.dumps(run)


def test_contact_save_code_2_fails_the_run_with_the_message(
    client: FlaskClient, drain: Drain, webservice: Sandbox, admin: dict[str, str]
) -> None:
    # Given the web service refuses the save (here: an injected Code 2, as for an unknown group)
    message = "The specified contact group does not exist and cannot be created with the details passed"
    webservice.fault("/services.ashx", status=200, body={"Code": 2, "Result": message})

    run_id = submit(client, "l-2", kind="legacy", name="Lucy", street="1 St", phone="+447932883112")["runs"][0]
    drain()

    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert run["error"] == f"step save: ContactSave failed (Code 2): {message}"
    assert [a["error_class"] for a in step(run, "save")["attempts"]] == ["permanent"]


def test_a_contact_save_made_by_a_lost_worker_is_replaced_not_duplicated(
    client: FlaskClient, services: Services, drain: Drain, webservice: Sandbox, admin: dict[str, str]
) -> None:
    # Given a worker saved the contact and died before recording it
    accepted = submit(client, "l-3", kind="legacy", name="Lucy", street="1 St", phone="+447932883112")
    run_id = accepted["runs"][0]
    params = {"action": "ContactSave", "ContactName": "Lucy", "ContactStreet": "1 St"}
    params["ContactReference"] = f"WEB-{accepted['event_id']}"

    def saved_by_the_lost_worker() -> None:
        response = httpx.get(
            f"{webservice.url}/services.ashx",
            params=params,
            auth=("sandbox-user", SANDBOX_KEY),
            headers={"key": SANDBOX_KEY},
        )
        assert response.json()["Code"] == 0

    lose_the_worker(services, run_id, "save", saved_by_the_lost_worker)
    # When the run is recovered
    drain()
    # Then the retry replaced that contact (same reference) instead of adding one
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    recovered = step(run, "save")["attempts"][-1]
    assert recovered["reconciled"] is True
    assert recovered["calls"][0]["params"]["ContactReplaceSameRef"] == "1"
    (contact,) = webservice.state()["contacts"]
    assert step(run, "save")["output"] == {"id": contact["Id"]}
    assert contact["Phone"] == "+447932883112"  # the retry's full data replaced the lost worker's
