"""The rest of the operators' API: run filters and search, cancel, bulk retry, events, workflows."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_app
from engine.models import Event
from engine.services import EXTENSION, Services
from schemas.settings import Settings
from tests.conftest import SECRETS, Drain, Sandbox, post_hook

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "web-enquiry.json").read_bytes())
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def submit(client: FlaskClient, submission_id: str, **fields: str) -> dict:
    body = {**EXAMPLE, "submission_id": submission_id, **fields}
    response = post_hook(client, "webform", json.dumps(body).encode(), **TOKEN)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def run_ids(client: FlaskClient, admin: dict, query: str) -> list[str]:
    response = client.get(f"/api/runs?{query}", headers=admin)
    assert response.status_code == 200, response.get_json()
    return [run["id"] for run in response.get_json()["runs"]]


# --- Runs: filters and search -----------------------------------------------------------------


def test_runs_are_found_by_text_in_their_event_data(client: FlaskClient, admin: dict) -> None:
    jane = submit(client, "s-1", email="jane.jones@example.com")["runs"][0]
    bob = submit(client, "s-2", email="bob@example.org", name="Bob Ünal")["runs"][0]
    assert run_ids(client, admin, "q=JANE.JONES@example") == [jane]
    assert run_ids(client, admin, "q=Ünal") == [bob]  # non-ASCII, however the database keeps JSON text
    assert run_ids(client, admin, "q=example") == [bob, jane]
    assert run_ids(client, admin, "q=100%25") == []  # % and _ are text, not wildcards
    assert run_ids(client, admin, "q=b_b") == []


def test_runs_filter_by_source_and_date_range(client: FlaskClient, admin: dict) -> None:
    run = submit(client, "s-1")["runs"][0]
    now = datetime.now(timezone.utc)
    assert run_ids(client, admin, "source=webform") == [run]
    assert run_ids(client, admin, "source=accounts") == []
    since, until = (now - timedelta(minutes=5)).isoformat(), (now + timedelta(minutes=5)).isoformat()
    assert run_ids(client, admin, f"since={since}&until={until}".replace("+", "%2B")) == [run]
    assert run_ids(client, admin, f"until={since}".replace("+", "%2B")) == []
    assert run_ids(client, admin, "since=2999-01-01") == []  # naive dates mean UTC
    listed = client.get("/api/runs", headers=admin).get_json()["runs"][0]
    assert listed["source"] == "webform" and listed["duration_ms"] is None and listed["started_at"] is None


def test_a_date_alone_as_until_includes_that_whole_day(client: FlaskClient, admin: dict) -> None:
    # Given a run created on some day (UTC)
    accepted = submit(client, "s-1")
    run = client.get(f"/api/runs/{accepted['runs'][0]}", headers=admin).get_json()
    day = date.fromisoformat(run["created_at"][:10])

    # Then "until that day" and "from that day to that day" include it; "until the day before" does not
    assert run_ids(client, admin, f"until={day}") == [run["id"]]
    assert run_ids(client, admin, f"since={day}&until={day}") == [run["id"]]
    assert run_ids(client, admin, f"until={day - timedelta(days=1)}") == []
    events = client.get(f"/api/events?since={day}&until={day}", headers=admin).get_json()["events"]
    assert [e["id"] for e in events] == [accepted["event_id"]]
    # A time of day stays exact (exclusive): midnight at the start of the day excludes the day
    assert run_ids(client, admin, f"until={day}T00:00:00") == []


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("status=nope", "status"),
        ("limit=201", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-02-30", "until"),
        ("until=9999-12-31", "until"),
        ("statu=failed", "statu"),  # a typo is an error, not a filter silently ignored
        ("q=", "q"),
        ("q=a%00b", "q"),
        ("before=" + "x" * 41, "before"),
    ],
)
def test_bad_run_filters_are_400_naming_the_parameter(client: FlaskClient, admin: dict, query: str, names: str) -> None:
    response = client.get(f"/api/runs?{query}", headers=admin)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(names)


def test_ids_that_cannot_exist_are_404_without_a_query(client: FlaskClient, admin: dict) -> None:
    for path in ("/api/runs/a%00b", "/api/runs/..%2F..", "/api/events/x%20y"):
        assert client.get(path, headers=admin).status_code == 404
    assert client.post("/api/runs/a%00b/cancel", headers=admin).status_code == 404


# --- Cancel -----------------------------------------------------------------------------------


def test_a_queued_run_is_cancelled_and_never_runs(
    client: FlaskClient, admin: dict, drain: Drain, sandbox: Sandbox
) -> None:
    run_id = submit(client, "s-1")["runs"][0]
    response = client.post(f"/api/runs/{run_id}/cancel", headers=admin)
    assert response.status_code == 200
    cancelled = response.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled by an operator"
    assert cancelled["finished_at"] is not None
    drain()
    assert sandbox.calls("/contacts/create") == []
    assert client.get(f"/api/runs/{run_id}", headers=admin).get_json()["status"] == "cancelled"


def test_a_finished_run_cannot_be_cancelled(client: FlaskClient, admin: dict, drain: Drain, sandbox: Sandbox) -> None:
    run_id = submit(client, "s-1")["runs"][0]
    drain()
    response = client.post(f"/api/runs/{run_id}/cancel", headers=admin)
    assert response.status_code == 409
    assert response.get_json() == {"error": f"run {run_id} is succeeded; only queued or running runs can be cancelled"}
    assert client.post("/api/runs/run_nope/cancel", headers=admin).get_json() == {"error": "no run run_nope"}


# --- Bulk retry -------------------------------------------------------------------------------


def test_failed_runs_matching_a_filter_are_retried_together(
    client: FlaskClient, admin: dict, drain: Drain, sandbox: Sandbox
) -> None:
    # Given three runs that failed on a permanent error, and one that succeeded
    sandbox.fault("/contacts/create", status=400, times=3)
    failed = [submit(client, f"s-{i}", email=f"p{i}@example.com")["runs"][0] for i in range(3)]
    drain()
    ok = submit(client, "s-ok")["runs"][0]
    drain()
    assert sorted(run_ids(client, admin, "status=failed")) == sorted(failed)

    # When a dry run asks which failed runs mention p1 or p2 ... then all of them are retried
    dry = client.post("/api/runs/retry", json={"q": "p1@example.com", "dry_run": True}, headers=admin)
    assert dry.status_code == 200
    assert dry.get_json() == {"dry_run": True, "matched": 1, "retried": [failed[1]], "skipped": []}
    assert sorted(run_ids(client, admin, "status=failed")) == sorted(failed)  # a dry run changes nothing

    response = client.post("/api/runs/retry", json={"workflow": "web-enquiry", "limit": 2}, headers=admin)
    assert response.status_code == 202
    assert response.get_json()["retried"] == failed[:2]  # oldest first, up to the limit
    response = client.post("/api/runs/retry", headers=admin)  # no body: every failed run (up to 100)
    assert response.get_json()["retried"] == failed[2:]
    drain()

    # Then every one of them succeeded, resumed in place
    assert run_ids(client, admin, "status=failed") == []
    assert sorted(run_ids(client, admin, "status=succeeded")) == sorted([*failed, ok])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1]", "send a JSON object"),
        ('{"status": "succeeded"}', "status"),
        ('{"limit": 0}', "limit"),
        ('{"dry_run": "maybe"}', "dry_run"),
    ],
)
def test_bad_bulk_retry_bodies_are_400(client: FlaskClient, admin: dict, body: str, message: str) -> None:
    response = client.post("/api/runs/retry", data=body, content_type="application/json", headers=admin)
    assert response.status_code == 400 and message in response.get_json()["error"]


# --- Events -----------------------------------------------------------------------------------


def test_events_list_shows_rejected_and_duplicate_deliveries(
    client: FlaskClient, admin: dict, services: Services
) -> None:
    accepted = submit(client, "s-1")
    rejected = post_hook(client, "webform", b"{not json", **TOKEN).get_json()
    for _ in range(2):  # the same event delivered twice more
        body = json.dumps({**EXAMPLE, "submission_id": "s-1"}).encode()
        assert post_hook(client, "webform", body, **TOKEN).status_code == 200

    listed = client.get("/api/events", headers=admin).get_json()["events"]
    assert [e["id"] for e in listed] == [rejected["event_id"], accepted["event_id"]]
    assert listed[0]["status"] == "rejected" and "not valid JSON" in listed[0]["reason"]
    assert listed[1]["duplicates"] == 2 and listed[1]["last_duplicate_at"] is not None

    only = client.get("/api/events?duplicates=true", headers=admin).get_json()["events"]
    assert [e["id"] for e in only] == [accepted["event_id"]]
    assert [e["id"] for e in client.get("/api/events?status=rejected", headers=admin).get_json()["events"]] == [
        rejected["event_id"]
    ]
    assert client.get("/api/events?q=Jones&source=accounts", headers=admin).get_json()["events"] == []
    page = client.get("/api/events?limit=1", headers=admin).get_json()
    assert page["next_before"] == rejected["event_id"]
    rest = client.get(f"/api/events?limit=1&before={page['next_before']}", headers=admin).get_json()
    assert [e["id"] for e in rest["events"]] == [accepted["event_id"]] and rest["next_before"] is None

    event = client.get(f"/api/events/{accepted['event_id']}", headers=admin).get_json()
    assert event["duplicates"] == 2
    assert event["links"] == {
        "self": f"/api/events/{accepted['event_id']}",
        "runs": f"/api/runs?event_id={accepted['event_id']}",
        "replay": f"/api/events/{accepted['event_id']}/replay",
    }
    with services.db.session() as session:
        assert session.get(Event, accepted["event_id"]).duplicates == 2


def test_events_are_found_by_text_in_their_data(client: FlaskClient, admin: dict) -> None:
    # Given two enquiries, and a delivery that could not be read
    jane = submit(client, "s-1", email="jane.jones@example.com")["event_id"]
    bob = submit(client, "s-2", email="bob@example.org", name="Bob Ünal")["event_id"]
    post_hook(client, "webform", b"{not json jane.jones", **TOKEN)

    def found(query: str) -> list[str]:
        response = client.get(f"/api/events?{query}", headers=admin)
        assert response.status_code == 200, response.get_json()
        return [event["id"] for event in response.get_json()["events"]]

    # Then a search finds the event whose data holds the text, case-insensitively, with the other filters
    assert found("q=JANE.JONES@example") == [jane]
    assert found("q=Ünal") == [bob]
    assert found("q=example&status=accepted&source=webform") == [bob, jane]
    assert found("q=jane.jones&source=accounts") == []


def test_event_data_fields_named_like_credentials_are_masked(client: FlaskClient, admin: dict) -> None:
    accepted = submit(client, "s-1", password="hunter2-secret")
    event = client.get(f"/api/events/{accepted['event_id']}", headers=admin).get_json()
    assert event["data"]["password"] == "[redacted]"


# --- Workflows --------------------------------------------------------------------------------


def test_workflows_list_with_their_record(client: FlaskClient, admin: dict, drain: Drain, sandbox: Sandbox) -> None:
    run_id = submit(client, "s-1")["runs"][0]
    drain()
    listed = client.get("/api/workflows", headers=admin).get_json()
    web = next(w for w in listed["workflows"] if w["name"] == "web-enquiry")
    assert web["source"] == "webform" and web["events"] == ["form.submitted"]
    assert web["file"].endswith("web-enquiry.yaml") and web["steps"][0] == "contact"
    assert web["stats"] == {
        "window_days": 7,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
        "active": 0,
        "success_rate": 1.0,
    }
    assert [r["id"] for r in web["last_runs"]] == [run_id]

    one = client.get("/api/workflows/web-enquiry", headers=admin).get_json()
    assert one["definition"]["name"] == "web-enquiry" and len(one["hash"]) == 64 and one["issues"] == []
    missing = client.get("/api/workflows/nope", headers=admin)
    assert missing.status_code == 404 and "loaded: " in missing.get_json()["error"]


GOOD = "name: w\non: {source: webform}\nsteps:\n  - id: a\n    uses: core.log\n    with: {message: hi}\n"
BAD = "name: w\non: {source: webform}\nsteps:\n  - id: a\n    uses: core.log\n    wiht: {message: hi}\n"


def test_a_workflow_file_is_validated_before_it_is_deployed(client: FlaskClient, admin: dict) -> None:
    ok = client.post("/api/workflows/validate", json={"yaml": GOOD}, headers=admin).get_json()
    assert ok == {"valid": True, "name": "w", "issues": []}

    bad = client.post("/api/workflows/validate", data=BAD, content_type="text/yaml", headers=admin).get_json()
    assert bad["valid"] is False and bad["name"] is None
    (issue,) = bad["issues"]
    assert (issue["file"], issue["line"], issue["path"]) == ("workflow.yaml", 6, "steps[0].wiht")
    assert "with" in issue["hint"]


def test_validate_says_a_source_whose_entry_has_errors_is_broken_not_undefined(
    settings: Settings, admin: dict, tmp_path: Path
) -> None:
    # Given sources.yaml defines `partner` with a secret written literally (refused, so the source is broken)
    (tmp_path / "sources.yaml").write_text(
        "sources:\n"
        "  webform: {verify: {type: token, header: X-Hook-Token, secret: '${WEBFORM_TOKEN}'}}\n"
        "  partner: {verify: {type: token, header: X-Key, secret: 'literal-secret-value'}}\n"
    )
    app = create_app(settings.model_copy(update={"workflows_dir": tmp_path}), environ=SECRETS)
    assert "partner" in app.extensions[EXTENSION].catalog.current().broken_sources
    text = GOOD.replace("source: webform", "source: partner")
    answer = app.test_client().post("/api/workflows/validate", json={"yaml": text}, headers=admin).get_json()
    (issue,) = answer["issues"]
    assert answer["valid"] is True and issue["severity"] == "warning"
    assert "defined in sources.yaml, but its entry has errors" in issue["message"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": [1]}, "send the file as text/yaml"),
        ({"json": {"yaml": GOOD, "filename": "../x.yaml"}}, "filename"),
        ({"json": {"yml": GOOD}}, "yaml"),
        ({"data": "x" * (256 * 1024 + 1), "content_type": "text/yaml"}, "256 KiB"),
    ],
)
def test_bad_validate_requests_are_400(client: FlaskClient, admin: dict, kwargs: dict, message: str) -> None:
    response = client.post("/api/workflows/validate", headers=admin, **kwargs)
    assert response.status_code == 400 and message in response.get_json()["error"]
