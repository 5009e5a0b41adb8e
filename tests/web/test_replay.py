"""POST /api/events/<id>/replay: new runs for accepted events; re-ingestion of rejected ones once fixed."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.services import Services
from engine.verify import sign_body_base64
from tests.conftest import Drain
from tests.web.inbound_setup import (  # noqa: F401  (inbound_app, inbound_workflows_dir: fixtures)
    INBOUND_SECRETS,
    SOURCES,
    events,
    example_bytes,
    inbound_app,
    inbound_workflows_dir,
    reload,
    runs,
)

FORM = {"Content-Type": "application/json", "X-Hook-Token": "webform-test-token"}


def post_form(client: FlaskClient, body: dict) -> dict:
    return client.post("/hooks/forms", data=json.dumps(body).encode(), headers=FORM).get_json()


def replay(client: FlaskClient, admin: dict[str, str], event_id: str, **body: str) -> TestResponse:
    return client.post(f"/api/events/{event_id}/replay", json=body or None, headers=admin)


def fix_sources(workflows_dir: Path, services: Services, old: str, new: str) -> None:
    """An ops person edits sources.yaml; the app reloads it."""
    (workflows_dir / "sources.yaml").write_text(SOURCES.replace(old, new))
    reload(services)


class TestAcceptedEvents:
    def test_a_replay_starts_new_runs_on_the_same_event(
        self, client: FlaskClient, services: Services, admin: dict[str, str], drain: Drain
    ) -> None:
        first = post_form(client, {"submission_id": "s-1", "name": "Jane"})
        drain()
        response = replay(client, admin, first["event_id"])
        assert response.status_code == 202
        answer = response.get_json()
        assert answer["event_id"] == first["event_id"] and answer["runs"] != first["runs"]
        assert len(events(services)) == 1
        assert [r.event_id for r in runs(services)] == [first["event_id"]] * 2
        drain()
        assert {r.status for r in runs(services)} == {"succeeded"}

    def test_a_replay_can_name_the_one_workflow_to_run(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        first = post_form(client, {"submission_id": "s-1", "name": "Jane"})
        answer = replay(client, admin, first["event_id"], workflow="form-enquiry").get_json()
        assert len(answer["runs"]) == 1
        refused = replay(client, admin, first["event_id"], workflow="xero-change")
        assert refused.status_code == 409 and "does not match event" in refused.get_json()["error"]

    def test_each_event_of_a_batch_replays_on_its_own(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        body = example_bytes("xero.json")
        sig = sign_body_base64(body, INBOUND_SECRETS["XERO_WEBHOOK_KEY"])
        client.post("/hooks/xero", data=body, headers={"Content-Type": "application/json", "x-xero-signature": sig})
        first, _ = events(services)
        assert replay(client, admin, first.id).status_code == 202
        assert len(runs(services, event_id=first.id)) == 2 and len(events(services)) == 2


class TestRejectedEvents:
    def test_a_rejected_event_is_accepted_once_the_source_is_fixed(
        self, client: FlaskClient, services: Services, admin: dict[str, str], workflows_dir: Path, drain: Drain
    ) -> None:
        # Given a form whose dedupe field the source expects under another name
        rejected = post_form(client, {"id": "s-9", "name": "Jane"})
        assert "submission_id" in rejected["error"]
        # When the source is fixed and the event replayed
        fix_sources(workflows_dir, services, 'event_id: "{{ body.submission_id }}"', 'event_id: "{{ body.id }}"')
        response = replay(client, admin, rejected["event_id"])
        # Then it is a new accepted event, keyed as a delivery would be, pointing at the rejected one
        assert response.status_code == 202, response.get_json()
        answer = response.get_json()
        assert answer["replay_of"] == rejected["event_id"] and len(answer["runs"]) == 1
        (new,) = events(services, status="accepted")
        assert (new.id, new.dedupe_key, new.replay_of, new.data) == (
            answer["event_id"],
            "s-9",
            rejected["event_id"],
            {"id": "s-9", "name": "Jane"},
        )
        assert new.headers["x-hook-token"] == "[redacted]"
        assert events(services, status="rejected")[0].id == rejected["event_id"]  # the record stays
        drain()
        assert runs(services)[0].status == "succeeded"

    def test_replaying_it_again_is_a_duplicate_not_a_second_job(
        self, client: FlaskClient, services: Services, admin: dict[str, str], workflows_dir: Path
    ) -> None:
        rejected = post_form(client, {"id": "s-9", "name": "Jane"})
        fix_sources(workflows_dir, services, 'event_id: "{{ body.submission_id }}"', 'event_id: "{{ body.id }}"')
        first = replay(client, admin, rejected["event_id"]).get_json()
        again = replay(client, admin, rejected["event_id"])
        assert again.status_code == 200
        assert again.get_json() == {"replay_of": rejected["event_id"], "event_id": first["event_id"], "duplicate": True}
        assert len(runs(services)) == 1

    def test_a_sender_redelivery_after_the_fix_makes_the_replay_a_duplicate(
        self, client: FlaskClient, services: Services, admin: dict[str, str], workflows_dir: Path
    ) -> None:
        rejected = post_form(client, {"id": "s-9", "name": "Jane"})
        fix_sources(workflows_dir, services, 'event_id: "{{ body.submission_id }}"', 'event_id: "{{ body.id }}"')
        delivered = post_form(client, {"id": "s-9", "name": "Jane"})
        answer = replay(client, admin, rejected["event_id"]).get_json()
        assert (answer["event_id"], answer["duplicate"]) == (delivered["event_id"], True)

    def test_a_still_broken_event_is_422_and_nothing_is_stored(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        rejected = post_form(client, {"id": "s-9"})
        response = replay(client, admin, rejected["event_id"])
        assert response.status_code == 422
        assert "still cannot be accepted" in response.get_json()["error"]
        assert len(events(services)) == 1

    def test_an_unparseable_body_stays_unparseable(self, client: FlaskClient, services: Services, admin: dict) -> None:
        rejected = client.post("/hooks/forms", data=b'{"submission_id": ', headers=FORM).get_json()
        response = replay(client, admin, rejected["event_id"])
        assert response.status_code == 422 and "not valid JSON" in response.get_json()["error"]

    def test_a_rejected_batch_element_replays_as_its_own_delivery(
        self, client: FlaskClient, services: Services, admin: dict[str, str], workflows_dir: Path
    ) -> None:
        # Given a Xero batch in which one change lacks a field the preset keys on
        batch = json.loads(example_bytes("xero.json"))
        del batch["events"][1]["tenantId"]
        body = json.dumps(batch).encode()
        sig = sign_body_base64(body, INBOUND_SECRETS["XERO_WEBHOOK_KEY"])
        client.post("/hooks/xero", data=body, headers={"Content-Type": "application/json", "x-xero-signature": sig})
        (rejected,) = events(services, status="rejected")
        # When the source keys on what that change does have
        fix_sources(
            workflows_dir,
            services,
            'xero: {preset: xero, secret: "${XERO_WEBHOOK_KEY}"}',
            'xero: {preset: xero, secret: "${XERO_WEBHOOK_KEY}", event_id: "{{ body.resourceId }}"}',
        )
        answer = replay(client, admin, rejected.id).get_json()
        # Then exactly that change becomes an event, with a run
        new = events(services, replay_of=rejected.id)
        assert [e.type for e in new] == ["xero.invoice.create"] and len(answer["runs"]) == 1

    def test_a_rejected_batch_replays_into_many_events(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        # Given a QuickBooks batch stored rejected (as if the preset had not known this shape yet)
        rejected = _store_rejected(services, "quickbooks", example_bytes("quickbooks-cloudevents.json"))
        answer = replay(client, admin, rejected).get_json()
        assert answer["replay_of"] == rejected and [len(e["runs"]) for e in answer["events"]] == [1, 1]
        assert len(events(services, replay_of=rejected)) == 2


def _store_rejected(services: Services, source: str, body: bytes) -> str:
    from engine import store
    from engine.models import Event

    event = Event(
        id=store.new_id("evt"),
        source=source,
        status="rejected",
        reason="as received before the fix",
        received_at=store.utcnow(),
        content_type="application/json",
        raw_body=body,
        headers={},
        query={},
    )
    with services.db.session() as session:
        session.add(event)
        session.commit()
    return event.id


class TestOtherEvents:
    def test_a_direct_runs_event_replays_into_the_workflow_it_ran(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        started = client.post("/api/workflows/form-enquiry/run", json={"name": "Jane"}, headers=admin).get_json()
        answer = replay(client, admin, started["event_id"]).get_json()
        assert [r.workflow for r in runs(services, event_id=started["event_id"])] == ["form-enquiry"] * 2
        assert len(answer["runs"]) == 1

    def test_a_direct_runs_event_can_be_replayed_into_another_loaded_workflow_only(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        started = client.post("/api/workflows/form-enquiry/run", json={"name": "Jane"}, headers=admin).get_json()
        assert replay(client, admin, started["event_id"], workflow="log-anything").status_code == 202
        refused = replay(client, admin, started["event_id"], workflow="nosuch")
        assert refused.status_code == 409 and "'nosuch' is not loaded" in refused.get_json()["error"]

    def test_a_rejected_delivery_that_now_carries_no_event_stores_nothing(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        rejected = _store_rejected(services, "xero", example_bytes("xero-intent-to-receive.json"))
        response = replay(client, admin, rejected)
        assert response.status_code == 202
        assert response.get_json() == {"replay_of": rejected, "events": []}
        assert len(events(services)) == 1


class TestRefusals:
    def test_an_unknown_event_is_404(self, client: FlaskClient, admin: dict[str, str]) -> None:
        assert replay(client, admin, "evt_nope").status_code == 404

    def test_the_admin_token_is_required(self, client: FlaskClient) -> None:
        response = client.post("/api/events/evt_x/replay")
        assert response.status_code == 401 and "Bearer" in response.get_json()["error"]

    def test_a_source_that_is_gone_is_409(
        self, client: FlaskClient, services: Services, admin: dict[str, str], workflows_dir: Path
    ) -> None:
        rejected = post_form(client, {"id": "s-9"})
        fix_sources(workflows_dir, services, "  forms:", "  renamed-forms:")
        response = replay(client, admin, rejected["event_id"])
        assert response.status_code == 409 and "no longer defined" in response.get_json()["error"]

    def test_a_source_whose_secret_is_unset_is_409(
        self, client: FlaskClient, services: Services, admin: dict[str, str]
    ) -> None:
        rejected = post_form(client, {"id": "s-9"})
        services.catalog.environ = {}
        reload(services)
        response = replay(client, admin, rejected["event_id"])
        assert response.status_code == 409 and "not configured on this server" in response.get_json()["error"]

    def test_a_body_that_is_not_an_object_or_names_an_unknown_key_is_400(
        self, client: FlaskClient, admin: dict[str, str]
    ) -> None:
        bad = client.post(
            "/api/events/evt_x/replay", data=b"[1]", headers={**admin, "Content-Type": "application/json"}
        )
        assert bad.status_code == 400
        unknown = client.post("/api/events/evt_x/replay", json={"workflows": ["x"]}, headers=admin)
        assert unknown.status_code == 400 and "workflows" in unknown.get_json()["error"]
