"""The console, page by page, through Flask's test client: login, CSRF, lists, detail, actions, no secrets."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from engine.models import Run
from engine.services import Services
from schemas.settings import PROJECT_ROOT
from tests.conftest import ADMIN_TOKEN, SECRETS, Drain, Sandbox, post_hook
from tests.ui.conftest import csrf_of, log_in

EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "web-enquiry.json").read_text())
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def submit(client: FlaskClient, submission: str = "s-1", **fields: str) -> dict:
    body = json.dumps({**EXAMPLE, "submission_id": submission, **fields}).encode()
    return post_hook(client, "webform", body, **TOKEN).get_json()


def html(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


# --- Login and CSRF ---------------------------------------------------------------------------


def test_pages_need_a_login_and_come_back_after_it(client: FlaskClient) -> None:
    response = client.get("/runs?status=failed")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/runs?status%3Dfailed"
    response = log_in(client, next_path="/runs?status=failed")
    assert response.status_code == 302 and response.headers["Location"] == "/runs?status=failed"
    assert client.get("/runs").status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and ADMIN_TOKEN not in cookie


def test_a_wrong_token_is_refused(client: FlaskClient) -> None:
    response = log_in(client, token="wrong")
    assert response.status_code == 401 and "That is not the admin token." in html(response)
    assert client.get("/runs").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    assert log_in(client, next_path=target).headers["Location"] == "/runs"


def test_posts_without_the_csrf_token_are_refused(console: FlaskClient, client: FlaskClient) -> None:
    run_id = submit(client)["runs"][0]
    response = console.post(f"/runs/{run_id}/cancel", data={})
    assert response.status_code == 400 and "did not come from the console" in html(response)
    response = console.post(f"/runs/{run_id}/cancel", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert console.post("/login", data={"token": ADMIN_TOKEN}).status_code == 400


def test_logout_ends_the_session(console: FlaskClient) -> None:
    page = html(console.get("/runs"))
    assert console.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert console.get("/runs").status_code == 302


def test_changing_the_admin_token_logs_everyone_out(console: FlaskClient, services: Services) -> None:
    services.settings = services.settings.model_copy(update={"admin_token": SecretStr("a-new-token")})
    assert console.get("/runs").status_code == 302


def test_the_console_is_closed_without_an_admin_token(client: FlaskClient, services: Services) -> None:
    services.settings = services.settings.model_copy(update={"admin_token": None})
    for path in ("/runs", "/login"):
        response = client.get(path)
        assert response.status_code == 503 and "ADMIN_TOKEN" in html(response)


# --- Pages ------------------------------------------------------------------------------------


def test_runs_list_filters_and_searches(console: FlaskClient, client: FlaskClient) -> None:
    jane = submit(client, "s-1", email="jane@example.com")["runs"][0]
    bob = submit(client, "s-2", email="bob@example.com")["runs"][0]
    page = html(console.get("/runs"))
    assert jane in page and bob in page and "web-enquiry" in page and 'data-refresh="' in page
    page = html(console.get("/runs?q=jane%40example.com&status=&workflow="))
    assert jane in page and bob not in page
    page = html(console.get("/runs?status=bogus"))
    assert "status: Input should be" in page  # a bad filter is explained, not a 500
    page = html(console.get("/runs?status=succeeded"))
    assert "No runs match." in page and "data-refresh" not in page


def test_runs_and_events_filter_by_source(console: FlaskClient, client: FlaskClient) -> None:
    # Given an enquiry from the web form and one from the trade portal (its own source)
    web = submit(client, "s-1")
    trade_body = json.loads((PROJECT_ROOT / "examples" / "trade-enquiry.json").read_text())
    trade = post_hook(client, "trade-enquiry", json.dumps(trade_body).encode(), **TOKEN).get_json()

    # Then each list shows only the source asked for
    page = html(console.get("/runs?source=trade-enquiry"))
    assert trade["runs"][0] in page and web["runs"][0] not in page
    page = html(console.get("/runs?source=webform"))
    assert web["runs"][0] in page and trade["runs"][0] not in page
    page = html(console.get("/events?source=trade-enquiry"))
    assert trade["event_id"] in page and web["event_id"] not in page
    assert "<option selected>trade-enquiry</option>" in page


def created_day(services: Services, run_id: str) -> date:
    with services.db.session() as session:
        return session.get(Run, run_id).created_at.date()  # UTC, as the filters read dates


def test_a_date_range_includes_the_whole_of_its_last_day(
    console: FlaskClient, client: FlaskClient, services: Services
) -> None:
    # Given a run and its event, created on some day (the date pickers send bare dates)
    accepted = submit(client)
    run_id, event_id = accepted["runs"][0], accepted["event_id"]
    day = created_day(services, run_id)
    before, after = day - timedelta(days=1), day + timedelta(days=1)

    # Then From = To = that day finds it, and "To" that day still shows that day
    page = html(console.get(f"/runs?since={day}&until={day}"))
    assert run_id in page and f'name="until" value="{day}"' in page and f'name="since" value="{day}"' in page
    assert event_id in html(console.get(f"/events?since={day}&until={day}"))
    assert run_id in html(console.get(f"/runs?until={day}"))
    # And a range that ends the day before, or starts the day after, does not
    assert run_id not in html(console.get(f"/runs?until={before}"))
    assert run_id not in html(console.get(f"/runs?since={after}"))
    assert event_id not in html(console.get(f"/events?until={before}"))


def test_the_started_column_shows_when_a_run_started(
    console: FlaskClient, client: FlaskClient, drain: Drain, services: Services
) -> None:
    # Given a run still queued and one that ran
    ran = submit(client, "s-1")["runs"][0]
    drain()
    queued = submit(client, "s-2")["runs"][0]
    with services.db.session() as session:
        started_at = session.get(Run, ran).started_at
    rows = {
        row.split('class="mono">')[1].split("<")[0]: row
        for row in html(console.get("/runs")).split('<tr class="run"')[1:]
    }

    assert started_at is not None and started_at.strftime("%Y-%m-%d %H:%M:%S") in rows[ran]
    assert "created " not in rows[ran]
    assert '<span class="dim">created <time' in rows[queued]  # not started yet: labelled, never passed off as a start


def test_runs_list_pages_backwards(console: FlaskClient, client: FlaskClient) -> None:
    ids = [submit(client, f"s-{i}")["runs"][0] for i in range(3)]
    page = html(console.get("/runs?limit=2"))
    assert ids[2] in page and ids[1] in page and ids[0] not in page
    assert f"before={ids[1]}" in page
    assert ids[0] in html(console.get(f"/runs?limit=2&before={ids[1]}"))


def test_a_failed_run_shows_each_attempt_and_can_be_retried(
    console: FlaskClient, client: FlaskClient, drain: Drain, sandbox: Sandbox, services: Services
) -> None:
    # Given a run that failed at its first step
    sandbox.fault("/contacts/create", status=400, times=1)
    run_id = submit(client)["runs"][0]
    drain()
    page = html(console.get(f"/runs/{run_id}"))
    assert "Retry from failed step" in page and "Cancel run" not in page
    assert "/contacts/create" in page and "Injected fault" in page and "Rendered input" in page
    assert services.settings.bigchange_api_key.get_secret_value() not in page  # type: ignore[union-attr]

    # When it is retried from the console
    response = console.post(f"/runs/{run_id}/retry", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert "Retrying from the failed step." in html(console.get(f"/runs/{run_id}"))
    drain()

    # Then it succeeded; retrying again is refused with the reason
    page = html(console.get(f"/runs/{run_id}"))
    assert 'class="badge succeeded">succeeded' in page and "Retry from failed step" not in page
    console.post(f"/runs/{run_id}/retry", data={"csrf_token": csrf_of(page)})
    assert "only failed runs can be retried" in html(console.get(f"/runs/{run_id}"))


def test_a_queued_run_can_be_cancelled(console: FlaskClient, client: FlaskClient) -> None:
    run_id = submit(client)["runs"][0]
    page = html(console.get(f"/runs/{run_id}"))
    assert 'data-refresh="' in page  # active: the page keeps itself fresh
    console.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(page)})
    page = html(console.get(f"/runs/{run_id}"))
    assert "Cancelled." in page and "cancelled by an operator" in page and "data-refresh" not in page


def test_bulk_retry_from_the_failed_list(
    console: FlaskClient, client: FlaskClient, drain: Drain, sandbox: Sandbox
) -> None:
    sandbox.fault("/contacts/create", status=400, times=2)
    runs = [submit(client, f"s-{i}")["runs"][0] for i in range(2)]
    drain()
    page = html(console.get("/runs?status=failed&workflow=web-enquiry"))
    assert "Retry every failed run matching these filters" in page
    response = console.post(
        "/runs/retry-failed", data={"csrf_token": csrf_of(page), "workflow": "web-enquiry", "status": "failed"}
    )
    assert response.status_code == 302
    assert "Retrying 2 failed run(s); 0 could not be retried." in html(console.get("/runs"))
    drain()
    page = html(console.get("/runs?status=succeeded"))
    assert all(run in page for run in runs)
    response = console.post("/runs/retry-failed", data={"csrf_token": csrf_of(page), "since": "not a date"})
    assert "since: Input should be a valid datetime" in html(console.get(response.headers["Location"]))


def test_unknown_things_are_404_pages(console: FlaskClient) -> None:
    paths = ("/runs/run_nope", "/events/evt_nope", "/events/evt_nope/raw", "/workflows/nope", "/runs/a%00b")
    for path in (*paths, "/events/a%00b", "/events/x%20y/raw"):  # ids that cannot be ours never reach the database
        response = console.get(path)
        assert response.status_code == 404 and "<h1>404 Not Found</h1>" in html(response), path
    page = html(console.get("/runs"))
    assert console.post("/runs/run_nope/retry", data={"csrf_token": csrf_of(page)}).status_code == 404
    assert console.post("/events/a%00b/replay", data={"csrf_token": csrf_of(page)}).status_code == 404


def test_events_list_shows_rejected_and_duplicates_and_the_raw_body(console: FlaskClient, client: FlaskClient) -> None:
    accepted = submit(client)
    submit(client)  # a duplicate delivery
    rejected = post_hook(client, "webform", b"<script>alert(1)</script>", **TOKEN).get_json()

    page = html(console.get("/events"))
    assert accepted["event_id"] in page and rejected["event_id"] in page
    assert "1 duplicate" in page and "not valid JSON" in page
    # Deliveries refused before storing are not listed; the page says where they are
    assert "hookflow_webhooks_rejected_total" in page and "hookflow.inbound" in page
    assert rejected["event_id"] in html(console.get("/events?status=rejected"))
    assert accepted["event_id"] not in html(console.get("/events?status=rejected"))
    assert accepted["event_id"] in html(console.get("/events?duplicates=true"))

    detail = html(console.get(f"/events/{rejected['event_id']}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail and "<script>alert" not in detail
    raw = console.get(f"/events/{rejected['event_id']}/raw")
    assert raw.mimetype == "text/plain" and raw.get_data() == b"<script>alert(1)</script>"
    assert raw.headers["Content-Security-Policy"].startswith("sandbox") and raw.headers["X-Content-Type-Options"]


def test_no_secret_is_rendered_anywhere(console: FlaskClient, client: FlaskClient, drain: Drain) -> None:
    # Given an event whose body carries the source's own token, and a data field named like a credential
    accepted = submit(client, note=f"token is {SECRETS['WEBFORM_TOKEN']}", api_key="sk-live-abcdef")
    drain()
    pages = [
        html(console.get(path))
        for path in (
            "/runs",
            f"/runs/{accepted['runs'][0]}",
            "/events",
            f"/events/{accepted['event_id']}",
            f"/events/{accepted['event_id']}/raw",
            "/workflows",
            "/workflows/web-enquiry",
        )
    ]
    everything = "\n".join(pages)
    assert SECRETS["WEBFORM_TOKEN"] not in everything and ADMIN_TOKEN not in everything
    # A field named like a credential is masked in the data view; the body is shown as the sender sent it
    data_view = pages[3].split("<h2>Data</h2>")[1].split("</pre>")[0]
    assert "sk-live-abcdef" not in data_view and "&#34;api_key&#34;: &#34;[redacted]&#34;" in data_view


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


@pytest.mark.parametrize(
    "settings_overrides", [{"core_http_secrets": {"CRM_KEY": SecretStr("crm-key-98765")}}], indirect=True
)
def test_every_configured_secret_is_masked_in_pages(console: FlaskClient, client: FlaskClient) -> None:
    # Given an event whose data quotes the accounts HMAC secret and a CORE_HTTP_SECRETS value
    accepted = submit(client, note=f"sig {SECRETS['ACCOUNTS_SECRET']} / crm crm-key-98765")
    pages = "\n".join(
        html(console.get(path))
        for path in (f"/events/{accepted['event_id']}", f"/events/{accepted['event_id']}/raw", "/events?q=crm")
    )
    # Then the console masks both, as the logs do (engine.logs.configured_secrets)
    assert SECRETS["ACCOUNTS_SECRET"] not in pages and "crm-key-98765" not in pages
    assert "sig [redacted] / crm [redacted]" in pages


def test_workflows_page_shows_triggers_record_and_load_problems(
    console: FlaskClient, client: FlaskClient, drain: Drain, workflows_dir: object
) -> None:
    submit(client)
    drain()
    page = html(console.get("/workflows"))
    assert "web-enquiry" in page and "form.submitted" in page and "web-enquiry.yaml" in page and "100%" in page
    detail = html(console.get("/workflows/web-enquiry"))
    assert "contact → job → constraint → schedule" in detail and "bigchange.contacts.create" in detail


def test_security_headers_on_console_pages(console: FlaskClient) -> None:
    response = console.get("/runs")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
    assert console.get("/console-static/console.js").status_code == 200


def test_an_event_is_replayed_from_the_console(
    console: FlaskClient, client: FlaskClient, drain: Drain, sandbox: Sandbox
) -> None:
    accepted = submit(client)
    drain()
    page = html(console.get(f"/events/{accepted['event_id']}"))
    response = console.post(f"/events/{accepted['event_id']}/replay", data={"csrf_token": csrf_of(page)})
    # One new run of the same event: the console opens it
    assert response.status_code == 302 and response.headers["Location"].startswith("/runs/run_")
    new_run = response.headers["Location"].removeprefix("/runs/")
    assert new_run != accepted["runs"][0]
    assert "Replayed: 1 new run(s)." in html(console.get(response.headers["Location"]))
    assert console.post("/events/evt_nope/replay", data={"csrf_token": csrf_of(page)}).status_code == 404


def test_a_rejected_event_that_still_fails_is_explained(console: FlaskClient, client: FlaskClient) -> None:
    rejected = post_hook(client, "webform", b"{still broken", **TOKEN).get_json()
    page = html(console.get(f"/events/{rejected['event_id']}"))
    response = console.post(f"/events/{rejected['event_id']}/replay", data={"csrf_token": csrf_of(page)})
    assert response.headers["Location"] == f"/events/{rejected['event_id']}"
    assert "Not replayed: " in html(console.get(response.headers["Location"]))
