"""POST /hooks/<source> for each real sender, with requests built as that sender builds them."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.services import Services
from engine.verify import OUTSIDE_TOLERANCE, sign_basic, sign_body_base64, sign_hmac, sign_standard
from schemas.sources import HmacVerify
from tests.conftest import Drain
from tests.web.inbound_setup import (  # noqa: F401  (inbound_app, inbound_workflows_dir: fixtures)
    INBOUND_SECRETS,
    JOTFORM_CONTENT_TYPE,
    SOURCES,
    events,
    example_bytes,
    inbound_app,
    inbound_workflows_dir,
    reload,
    runs,
)

JSON = {"Content-Type": "application/json"}


def typeform_signature(body: bytes, secret: str = INBOUND_SECRETS["TYPEFORM_SECRET"]) -> str:
    """As Typeform documents it: sha256= + base64(HMAC-SHA256(secret, raw body))."""
    return "sha256=" + sign_body_base64(body, secret)


class TestTypeform:
    body = example_bytes("typeform.json")

    def test_a_signed_response_becomes_a_flat_event_with_the_original_kept(
        self, client: FlaskClient, services: Services, drain: Drain
    ) -> None:
        response = client.post(
            "/hooks/enquiries", data=self.body, headers={**JSON, "Typeform-Signature": typeform_signature(self.body)}
        )
        assert response.status_code == 202, response.get_json()
        (event,) = events(services)
        assert (event.type, event.dedupe_key) == ("form.submitted", "01HZX4P7Q8TYPEFORM0001")
        assert event.data["email"] == "jane.jones@example.com" and event.data["service"] == "Leak"
        assert event.raw_data == json.loads(self.body) and event.raw_body == self.body
        assert event.headers["typeform-signature"] == "[redacted]"
        (run,) = runs(services)
        assert response.get_json() == {"event_id": event.id, "runs": [run.id]}
        drain()
        (run,) = runs(services)
        assert run.status == "succeeded"

    def test_a_tampered_response_is_401_and_never_stored(self, client: FlaskClient, services: Services) -> None:
        signature = typeform_signature(self.body)
        response = client.post(
            "/hooks/enquiries",
            data=self.body.replace(b"Leak", b"Fire"),
            headers={**JSON, "Typeform-Signature": signature},
        )
        assert (response.status_code, response.get_json()) == (401, {"error": "signature does not match the body"})
        assert events(services) == []

    def test_a_signed_body_not_shaped_like_a_typeform_response_is_400_and_kept(
        self, client: FlaskClient, services: Services
    ) -> None:
        body = b'{"event_id": "e-1", "event_type": "form_response"}'
        response = client.post(
            "/hooks/enquiries", data=body, headers={**JSON, "Typeform-Signature": typeform_signature(body)}
        )
        assert response.status_code == 400 and "form_response is not a JSON object" in response.get_json()["error"]
        (event,) = events(services)
        assert (event.status, event.raw_body) == ("rejected", body)

    def test_the_wrong_secret_or_no_signature_is_401(self, client: FlaskClient, services: Services) -> None:
        wrong = typeform_signature(self.body, "not-the-secret")
        assert (
            client.post("/hooks/enquiries", data=self.body, headers={**JSON, "Typeform-Signature": wrong}).status_code
            == 401
        )
        missing = client.post("/hooks/enquiries", data=self.body, headers=JSON)
        assert "missing signature: the Typeform-Signature header" in missing.get_json()["error"]
        assert events(services) == []


class TestJotform:
    body = example_bytes("jotform.multipart")

    def post(self, client: FlaskClient, token: str = INBOUND_SECRETS["JOTFORM_TOKEN"]) -> TestResponse:
        # Jotform lets you configure only the URL, so the token travels as ?token=.
        return client.post(f"/hooks/jotform?token={token}", data=self.body, content_type=JOTFORM_CONTENT_TYPE)

    def test_a_submission_becomes_fields_by_name_and_is_answered_200(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = self.post(client)
        assert response.status_code == 200, response.get_json()
        (event,) = events(services)
        assert event.dedupe_key == "6012345678901234567"
        assert event.data["fullName"] == {"first": "Jane", "last": "Jones"}
        assert event.raw_data["rawRequest"]["q4_email"] == "jane.jones@example.com"
        assert event.query == {"token": "[redacted]"}
        assert len(runs(services, workflow="jotform-enquiry")) == 1

    def test_a_redelivery_is_a_duplicate(self, client: FlaskClient, services: Services) -> None:
        first = self.post(client).get_json()
        again = self.post(client)
        assert (again.status_code, again.get_json()) == (200, {"event_id": first["event_id"], "duplicate": True})
        assert len(events(services)) == 1

    def test_a_wrong_token_is_401(self, client: FlaskClient, services: Services) -> None:
        assert self.post(client, "guess").status_code == 401
        assert events(services) == []


class TestWebflow:
    body = example_bytes("webflow.json")

    def headers(self, services: Services, at: float, secret: str = INBOUND_SECRETS["WEBFLOW_CLIENT_SECRET"]) -> dict:
        verify = services.catalog.current().sources["webflow"].verify
        assert isinstance(verify, HmacVerify)
        stamp = str(int(at * 1000))  # Webflow sends milliseconds
        return {
            **JSON,
            "x-webflow-timestamp": stamp,
            "x-webflow-signature": sign_hmac(verify, self.body, secret, stamp),
        }

    def test_a_signed_form_submission_is_accepted_with_200(self, client: FlaskClient, services: Services) -> None:
        response = client.post("/hooks/webflow", data=self.body, headers=self.headers(services, time.time()))
        assert response.status_code == 200, response.get_json()
        (event,) = events(services)
        assert event.data["First Name"] == "Zaphod" and event.raw_data["payload"]["formId"]

    def test_a_stale_timestamp_is_401_outside_tolerance(self, client: FlaskClient, services: Services) -> None:
        response = client.post("/hooks/webflow", data=self.body, headers=self.headers(services, time.time() - 600))
        assert response.status_code == 401
        assert response.get_json()["error"].startswith(OUTSIDE_TOLERANCE)
        assert events(services) == []

    def test_a_wrong_secret_is_401(self, client: FlaskClient, services: Services) -> None:
        response = client.post("/hooks/webflow", data=self.body, headers=self.headers(services, time.time(), "x"))
        assert response.status_code == 401


class TestGravityForms:
    def test_a_json_entry_gets_field_names_from_the_source(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("gravityforms-entry.json")
        response = client.post("/hooks/gravity", data=body, headers={**JSON, "X-Hook-Token": "gf-feed-token"})
        assert response.status_code == 200, response.get_json()
        (event,) = events(services)
        assert event.dedupe_key == "3:1842"
        assert {k: event.data[k] for k in ("first_name", "last_name", "email", "postcode")} == {
            "first_name": "Mary",
            "last_name": "Smith",
            "email": "mary.smith@example.com",
            "postcode": "LS1 4AP",
        }
        assert "ip" not in event.data and event.raw_data["ip"] == "203.0.113.7"

    def test_form_format_sends_the_same_entry_urlencoded(self, client: FlaskClient, services: Services) -> None:
        entry = json.loads(example_bytes("gravityforms-entry.json"))
        form = {key: "" if value is None else str(value) for key, value in entry.items()}
        response = client.post("/hooks/gravity", data=form, headers={"X-Hook-Token": "gf-feed-token"})
        assert response.status_code == 200, response.get_json()
        assert events(services)[0].data["first_name"] == "Mary"


class TestZapier:
    def test_a_form_mode_request_is_flat_strings(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("zapier-form.txt")
        response = client.post(
            "/hooks/zapier",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Hook-Token": "zap-token"},
        )
        assert response.status_code == 202, response.get_json()
        (event,) = events(services)
        assert (event.type, event.dedupe_key, event.data["bedrooms"]) == ("zapier.request", "zap-7741", "4")
        assert event.raw_data is None

    def test_a_custom_request_with_json_under_the_form_label_is_read_as_json(
        self, client: FlaskClient, services: Services
    ) -> None:
        body = b'{"id": "zap-1", "name": "Ray", "bedrooms": 4}'
        response = client.post(
            "/hooks/zapier",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Hook-Token": "zap-token"},
        )
        assert response.status_code == 202
        assert events(services)[0].data == {"id": "zap-1", "name": "Ray", "bedrooms": 4}


class TestXero:
    key = INBOUND_SECRETS["XERO_WEBHOOK_KEY"]

    def post(self, client: FlaskClient, body: bytes, signature: str) -> TestResponse:
        return client.post("/hooks/xero", data=body, headers={**JSON, "x-xero-signature": signature})

    def test_intent_to_receive_correctly_signed_is_200_with_an_empty_body_and_stores_nothing(
        self, client: FlaskClient, services: Services
    ) -> None:
        body = example_bytes("xero-intent-to-receive.json")
        response = self.post(client, body, sign_body_base64(body, self.key))
        assert (response.status_code, response.data) == (200, b"")
        assert "Set-Cookie" not in response.headers
        assert events(services) == []

    def test_intent_to_receive_incorrectly_signed_is_401(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("xero-intent-to-receive.json")
        wrong = base64.b64encode(b"x" * 32).decode()
        assert self.post(client, body, wrong).status_code == 401
        assert self.post(client, body, sign_body_base64(body, "another key")).status_code == 401

    def test_a_batch_is_one_event_per_change_answered_with_an_empty_200(
        self, client: FlaskClient, services: Services, drain: Drain
    ) -> None:
        body = example_bytes("xero.json")
        response = self.post(client, body, sign_body_base64(body, self.key))
        assert (response.status_code, response.data) == (200, b"")
        stored = events(services)
        assert [e.type for e in stored] == ["xero.contact.update", "xero.invoice.create"]
        assert json.loads(stored[0].raw_body) == {"events": [json.loads(body)["events"][0]]}
        assert len(runs(services)) == 2
        drain()
        assert {run.status for run in runs(services)} == {"succeeded"}

    def test_a_redelivered_batch_creates_nothing(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("xero.json")
        self.post(client, body, sign_body_base64(body, self.key))
        again = self.post(client, body, sign_body_base64(body, self.key))
        assert (again.status_code, again.data) == (200, b"")
        assert len(events(services)) == 2 and len(runs(services)) == 2


class TestQuickBooks:
    token = INBOUND_SECRETS["INTUIT_VERIFIER_TOKEN"]

    def post(self, client: FlaskClient, body: bytes, signature: str | None = None) -> TestResponse:
        signature = signature or sign_body_base64(body, self.token)
        return client.post("/hooks/quickbooks", data=body, headers={**JSON, "intuit-signature": signature})

    def test_a_legacy_batch_is_split_into_one_event_per_entity_change(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = self.post(client, example_bytes("quickbooks-legacy.json"))
        assert response.status_code == 200
        stored = events(services)
        answer = response.get_json()["events"]
        assert [a["event_id"] for a in answer] == [e.id for e in stored]
        assert [e.type for e in stored] == [
            "qbo.customer.created",
            "qbo.customer.updated",
            "qbo.invoice.voided",
            "qbo.customer.merged",
        ]
        assert [len(a["runs"]) for a in answer] == [1, 1, 1, 1]

    def test_a_redelivered_batch_creates_nothing_new(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("quickbooks-legacy.json")
        first = self.post(client, body).get_json()["events"]
        again = self.post(client, body)
        assert again.status_code == 200
        assert again.get_json()["events"] == [{"event_id": e["event_id"], "duplicate": True} for e in first]
        assert len(events(services)) == 4 and len(runs(services)) == 4

    def test_a_batch_mixing_old_and_new_changes_stores_only_the_new(
        self, client: FlaskClient, services: Services
    ) -> None:
        legacy = json.loads(example_bytes("quickbooks-legacy.json"))
        self.post(client, json.dumps(legacy).encode())
        legacy["eventNotifications"][0]["dataChangeEvent"]["entities"].append(
            {"name": "Payment", "id": "77", "operation": "Create", "lastUpdated": "2026-11-22T15:00:00-0800"}
        )
        answer = self.post(client, json.dumps(legacy).encode()).get_json()["events"]
        assert [("duplicate" in a) for a in answer] == [True, True, True, False, True]
        assert len(events(services)) == 5

    def test_the_same_change_twice_in_one_batch_is_stored_once(self, client: FlaskClient, services: Services) -> None:
        cloud = json.loads(example_bytes("quickbooks-cloudevents.json"))
        answer = self.post(client, json.dumps([cloud[0], cloud[0], cloud[1]]).encode()).get_json()["events"]
        assert answer[1] == {"event_id": answer[0]["event_id"], "duplicate": True}
        assert len(events(services)) == 2

    def test_cloudevents_are_split_and_normalised_alike(self, client: FlaskClient, services: Services) -> None:
        assert self.post(client, example_bytes("quickbooks-cloudevents.json")).status_code == 200
        stored = events(services)
        assert [(e.type, e.dedupe_key) for e in stored] == [
            ("qbo.customer.updated", "88cd52a2-7ed9-4c4e-9d5f-d1ce1b5b1a2f"),
            ("qbo.invoice.created", "2c1f6a2e-37a4-4f7e-8d49-0f0a7a3a9b11"),
        ]
        assert stored[0].raw_data["type"] == "qbo.customer.updated.v1"

    def test_an_element_that_cannot_be_keyed_is_kept_rejected_and_the_rest_accepted(
        self, client: FlaskClient, services: Services
    ) -> None:
        cloud = json.loads(example_bytes("quickbooks-cloudevents.json"))
        broken = {k: v for k, v in cloud[1].items() if k != "id"}
        answer = self.post(client, json.dumps([cloud[0], broken]).encode())
        assert answer.status_code == 200  # Intuit must not resend the good change because of the bad one
        first, second = answer.get_json()["events"]
        assert "runs" in first and "quickbooks delivery has no id" in second["error"]
        (rejected,) = events(services, status="rejected")
        assert rejected.id == second["event_id"] and rejected.dedupe_key is None

    def test_a_body_that_is_not_an_intuit_delivery_is_400_and_kept(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = self.post(client, b'{"hello": "world"}')
        assert response.status_code == 400
        assert "neither a CloudEvents array nor has eventNotifications" in response.get_json()["error"]
        assert events(services)[0].status == "rejected"

    def test_a_wrong_signature_is_401(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("quickbooks-legacy.json")
        assert self.post(client, body, sign_body_base64(body, "client-secret-not-verifier")).status_code == 401
        assert events(services) == []


class TestStandardWebhooks:
    secret = INBOUND_SECRETS["PARTNER_WHSEC"]
    body = example_bytes("standard-webhooks.json")

    def headers(self, msg_id: str, at: float) -> dict[str, str]:
        stamp = int(at)
        signature = sign_standard(self.secret, msg_id, stamp, self.body)
        return {**JSON, "webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}

    def test_the_webhook_id_keys_the_event_and_the_body_type_types_it(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = client.post("/hooks/partner", data=self.body, headers=self.headers("msg_1", time.time()))
        assert response.status_code == 202
        (event,) = events(services)
        assert (event.dedupe_key, event.type) == ("msg_1", "customer.credit_limit.exceeded")
        assert len(runs(services, workflow="partner-alert")) == 1

    def test_a_retry_with_a_new_timestamp_is_a_duplicate(self, client: FlaskClient, services: Services) -> None:
        client.post("/hooks/partner", data=self.body, headers=self.headers("msg_1", time.time() - 10))
        retry = client.post("/hooks/partner", data=self.body, headers=self.headers("msg_1", time.time()))
        assert retry.status_code == 200 and retry.get_json()["duplicate"] is True

    def test_a_stale_delivery_is_401(self, client: FlaskClient, services: Services) -> None:
        response = client.post("/hooks/partner", data=self.body, headers=self.headers("msg_1", time.time() - 400))
        assert response.status_code == 401 and OUTSIDE_TOLERANCE in response.get_json()["error"]


class TestBasicAndLimits:
    def test_basic_auth_refusal_names_the_scheme(self, client: FlaskClient, services: Services) -> None:
        response = client.post("/hooks/legacy", data=b"{}", headers={**JSON, "Authorization": sign_basic("crm", "no")})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="hookflow legacy"'

    def test_a_source_over_its_rate_limit_gets_429_with_retry_after(
        self, client: FlaskClient, services: Services
    ) -> None:
        auth = {**JSON, "Authorization": sign_basic("crm", "legacy-pass")}
        # Given refused requests, which do not count against the limit
        for _ in range(3):
            client.post("/hooks/legacy", data=b"{}", headers={**JSON, "Authorization": sign_basic("crm", "no")})
        # When the source sends more than its burst of 2
        answers = [client.post("/hooks/legacy", data=json.dumps({"n": n}).encode(), headers=auth) for n in range(3)]
        # Then the third waits, told for how long, and is not stored
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        assert "over its limit" in answers[2].get_json()["error"]
        assert len(events(services, source="legacy")) == 2

    def test_a_source_can_switch_its_limit_off(
        self, client: FlaskClient, services: Services, workflows_dir: Path
    ) -> None:
        sources = SOURCES.replace("rate_limit: {per_second: 0.01, burst: 2}", "rate_limit: {per_second: 0}")
        (workflows_dir / "sources.yaml").write_text(sources)
        reload(services)
        auth = {**JSON, "Authorization": sign_basic("crm", "legacy-pass")}
        answers = [client.post("/hooks/legacy", data=json.dumps({"n": n}).encode(), headers=auth) for n in range(4)]
        assert [a.status_code for a in answers] == [202] * 4

    def test_the_settings_give_sources_without_a_limit_of_their_own_a_default(
        self, client: FlaskClient, services: Services
    ) -> None:
        services.settings = services.settings.model_copy(
            update={"inbound_rate_limit_per_second": 0.01, "inbound_rate_limit_burst": 1}
        )
        body = example_bytes("standard-webhooks.json")
        answers = []
        for msg_id in ("m1", "m2"):
            stamp = int(time.time())
            headers = {**JSON, "webhook-id": msg_id, "webhook-timestamp": str(stamp)}
            headers["webhook-signature"] = sign_standard(INBOUND_SECRETS["PARTNER_WHSEC"], msg_id, stamp, body)
            answers.append(client.post("/hooks/partner", data=body, headers=headers).status_code)
        assert answers == [202, 429]

    def test_one_sources_limit_does_not_starve_another(self, client: FlaskClient, services: Services) -> None:
        auth = {**JSON, "Authorization": sign_basic("crm", "legacy-pass")}
        for n in range(3):
            client.post("/hooks/legacy", data=json.dumps({"n": n}).encode(), headers=auth)
        body = example_bytes("standard-webhooks.json")
        stamp = int(time.time())
        headers = {**JSON, "webhook-id": "m", "webhook-timestamp": str(stamp)}
        headers["webhook-signature"] = sign_standard(INBOUND_SECRETS["PARTNER_WHSEC"], "m", stamp, body)
        assert client.post("/hooks/partner", data=body, headers=headers).status_code == 202

    def test_with_redis_down_the_limit_lets_requests_through(self, client: FlaskClient, services: Services) -> None:
        from redis import Redis

        services.redis = services.queue.redis = services.queue.queue.connection = Redis.from_url(
            "redis://127.0.0.1:1/0"
        )
        response = client.post(
            "/hooks/legacy", data=b"{}", headers={**JSON, "Authorization": sign_basic("crm", "legacy-pass")}
        )
        assert response.status_code == 202  # stored; the reconciler enqueues the run

    def test_a_per_source_body_limit(self, client: FlaskClient, services: Services) -> None:
        body = json.dumps({"submission_id": "s", "pad": "x" * 300}).encode()
        response = client.post("/hooks/forms", data=body, headers={**JSON, "X-Hook-Token": "webform-test-token"})
        assert response.status_code == 413 and "limit of 200 bytes" in response.get_json()["error"]

    def test_bad_utf8_is_400_with_the_byte_offset_and_kept(self, client: FlaskClient, services: Services) -> None:
        body = b'{"submission_id": "s-1", "name": "Zo\xeb"}'
        response = client.post("/hooks/forms", data=body, headers={**JSON, "X-Hook-Token": "webform-test-token"})
        assert response.status_code == 400
        offset = body.index(b"\xeb")
        assert response.get_json()["error"] == f"body is not valid utf-8: bad byte at offset {offset}"
        assert events(services)[0].status == "rejected"


@pytest.mark.parametrize("source", ["enquiries", "xero", "quickbooks", "partner"])
def test_malformed_signature_headers_are_401_never_500(client: FlaskClient, services: Services, source: str) -> None:
    headers = {
        **JSON,
        "Typeform-Signature": "sha256=%%%",
        "x-xero-signature": "%%%",
        "intuit-signature": "\u00e9t\u00e9",
        "webhook-id": "m",
        "webhook-timestamp": "soon",
        "webhook-signature": "v1,%%%",
    }
    assert client.post(f"/hooks/{source}", data=b"{}", headers=headers).status_code == 401
    assert events(services) == []
